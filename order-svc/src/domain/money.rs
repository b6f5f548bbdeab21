//! An order's money: totals, what each shipment charges when it leaves, what a return refunds.
//! All amounts are in the order's currency, exact, rounded to its minor units.
//!
//! Tax and duty come per shipment from fulfillment's landed cost. When units of a shipment are
//! cancelled, its tax and duty shrink in proportion to its goods value.

use std::collections::BTreeMap;

use oms_platform::money::{Currency, Money, MoneyError};
use oms_proto::{
    common::v1 as common,
    fulfillment::v1::ShipmentStatus,
    order::v1::{Order, OrderShipment, OrderTotals},
};
/// Reads an optional wire amount; absent means zero.
pub fn amount_or_zero(
    money: Option<&common::Money>,
    currency: Currency,
) -> Result<Money, MoneyError> {
    match money {
        Some(money) if !money.amount.is_empty() => {
            let parsed = Money::parse(money)?;
            Money::zero(currency).plus(&parsed)
        }
        _ => Ok(Money::zero(currency)),
    }
}

/// Unit prices by SKU.
fn unit_prices(order: &Order, currency: Currency) -> Result<BTreeMap<&str, Money>, MoneyError> {
    order
        .lines
        .iter()
        .map(|line| {
            Ok((
                line.sku.as_str(),
                amount_or_zero(line.unit_price.as_ref(), currency)?,
            ))
        })
        .collect()
}

/// The goods value of a shipment's current items.
fn goods_of(
    shipment: &OrderShipment,
    prices: &BTreeMap<&str, Money>,
    currency: Currency,
) -> Result<Money, MoneyError> {
    let mut goods = Money::zero(currency);
    for item in &shipment.items {
        let unit = prices
            .get(item.sku.as_str())
            .copied()
            .unwrap_or(Money::zero(currency));
        goods = goods.plus(&unit.times(item.quantity)?)?;
    }
    Ok(goods)
}

/// Tax and duty of a shipment, scaled to the goods it still carries.
fn levies_of(
    shipment: &OrderShipment,
    goods_now: &Money,
    currency: Currency,
) -> Result<(Money, Money), MoneyError> {
    let Some(landed) = &shipment.landed_cost else {
        return Ok((Money::zero(currency), Money::zero(currency)));
    };
    let tax = amount_or_zero(landed.tax.as_ref(), currency)?;
    let duty = amount_or_zero(landed.duty.as_ref(), currency)?;
    let planned_goods = amount_or_zero(landed.goods.as_ref(), currency)?;
    if planned_goods.amount().is_zero() || planned_goods.amount() == goods_now.amount() {
        return Ok((tax, duty));
    }
    let share = goods_now.amount() / planned_goods.amount();
    Ok((tax.scaled(share)?, duty.scaled(share)?))
}

/// What a shipment charges when it leaves: its goods, its shipping, its tax and duty.
pub fn shipment_charge(order: &Order, shipment: &OrderShipment) -> Result<Money, MoneyError> {
    let currency = currency_of(order)?;
    let prices = unit_prices(order, currency)?;
    let goods = goods_of(shipment, &prices, currency)?;
    let shipping = amount_or_zero(shipment.shipping_price.as_ref(), currency)?;
    let (tax, duty) = levies_of(shipment, &goods, currency)?;
    goods.plus(&shipping)?.plus(&tax)?.plus(&duty)
}

/// The order's currency.
pub fn currency_of(order: &Order) -> Result<Currency, MoneyError> {
    Currency::parse(&order.currency_code)
        .ok_or_else(|| MoneyError::UnknownCurrency(order.currency_code.clone()))
}

/// Totals over what is still bought (cancelled units and shipments excluded); `refunded` is
/// carried over.
pub fn totals(order: &Order) -> Result<OrderTotals, MoneyError> {
    let currency = currency_of(order)?;
    let mut subtotal = Money::zero(currency);
    for line in &order.lines {
        let unit = amount_or_zero(line.unit_price.as_ref(), currency)?;
        subtotal =
            subtotal.plus(&unit.times(line.quantity.saturating_sub(line.cancelled_quantity))?)?;
    }
    let prices = unit_prices(order, currency)?;
    let (mut shipping, mut tax, mut duty) = (
        Money::zero(currency),
        Money::zero(currency),
        Money::zero(currency),
    );
    for shipment in order
        .shipments
        .iter()
        .filter(|s| s.status != ShipmentStatus::Cancelled as i32)
    {
        let goods = goods_of(shipment, &prices, currency)?;
        let (shipment_tax, shipment_duty) = levies_of(shipment, &goods, currency)?;
        shipping = shipping.plus(&amount_or_zero(shipment.shipping_price.as_ref(), currency)?)?;
        tax = tax.plus(&shipment_tax)?;
        duty = duty.plus(&shipment_duty)?;
    }
    let total = subtotal.plus(&shipping)?.plus(&tax)?.plus(&duty)?;
    let refunded = amount_or_zero(
        order.totals.as_ref().and_then(|t| t.refunded.as_ref()),
        currency,
    )?;
    Ok(OrderTotals {
        subtotal: Some(subtotal.to_proto()),
        shipping: Some(shipping.to_proto()),
        tax: Some(tax.to_proto()),
        duty: Some(duty.to_proto()),
        total: Some(total.to_proto()),
        refunded: Some(refunded.to_proto()),
    })
}

/// The refund for returning `units` of each line (by line id): the goods with their share of
/// tax and duty, plus all shipping when the return makes the order fully returned and the
/// policy refunds shipping then.
pub fn refund_for(
    order: &Order,
    units: &BTreeMap<String, u32>,
    refund_shipping_on_full_return: bool,
) -> Result<Money, MoneyError> {
    let currency = currency_of(order)?;
    let totals = totals(order)?;
    let subtotal = amount_or_zero(totals.subtotal.as_ref(), currency)?;
    let levies = amount_or_zero(totals.tax.as_ref(), currency)?
        .plus(&amount_or_zero(totals.duty.as_ref(), currency)?)?;
    let mut goods = Money::zero(currency);
    let mut fully_returned = true;
    for line in &order.lines {
        let returning = units.get(&line.line_id).copied().unwrap_or(0);
        let unit = amount_or_zero(line.unit_price.as_ref(), currency)?;
        goods = goods.plus(&unit.times(returning)?)?;
        let kept = line
            .quantity
            .saturating_sub(line.cancelled_quantity + line.returned_quantity + returning);
        fully_returned &= kept == 0;
    }
    let levy_share = if subtotal.amount().is_zero() {
        Money::zero(currency)
    } else {
        levies.scaled(goods.amount() / subtotal.amount())?
    };
    let mut refund = goods.plus(&levy_share)?;
    if fully_returned && refund_shipping_on_full_return {
        refund = refund.plus(&amount_or_zero(totals.shipping.as_ref(), currency)?)?;
    }
    Ok(refund)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oms_proto::{common::v1::ItemQuantity, fulfillment::v1::LandedCost, order::v1::OrderLine};

    fn eur(amount: &str) -> Option<common::Money> {
        Some(common::Money {
            currency_code: "EUR".into(),
            amount: amount.into(),
        })
    }

    fn line(id: &str, sku: &str, quantity: u32, unit: &str) -> OrderLine {
        OrderLine {
            line_id: id.into(),
            sku: sku.into(),
            quantity,
            unit_price: eur(unit),
            ..Default::default()
        }
    }

    fn shipment(sku: &str, quantity: u32, shipping: &str, goods: &str, tax: &str) -> OrderShipment {
        OrderShipment {
            items: vec![ItemQuantity {
                sku: sku.into(),
                quantity,
            }],
            shipping_price: eur(shipping),
            landed_cost: Some(LandedCost {
                goods: eur(goods),
                tax: eur(tax),
                duty: eur("0.00"),
                ..Default::default()
            }),
            status: ShipmentStatus::HandedToCarrier.into(),
            ..Default::default()
        }
    }

    fn order() -> Order {
        Order {
            currency_code: "EUR".into(),
            lines: vec![
                line("l1", "SHOE", 2, "50.00"),
                line("l2", "TEE", 1, "20.00"),
            ],
            shipments: vec![
                shipment("SHOE", 2, "5.00", "100.00", "19.00"),
                shipment("TEE", 1, "4.00", "20.00", "3.80"),
            ],
            ..Default::default()
        }
    }

    fn amount(money: Option<common::Money>) -> String {
        money.unwrap().amount
    }

    #[test]
    fn totals_add_goods_shipping_and_levies() {
        let totals = totals(&order()).unwrap();
        assert_eq!(amount(totals.subtotal), "120.00");
        assert_eq!(amount(totals.shipping), "9.00");
        assert_eq!(amount(totals.tax), "22.80");
        assert_eq!(amount(totals.total), "151.80");
    }

    #[test]
    fn cancelled_units_shrink_goods_and_tax_in_proportion() {
        let mut order = order();
        order.lines[0].cancelled_quantity = 1;
        order.shipments[0].items[0].quantity = 1;
        let totals = totals(&order).unwrap();
        assert_eq!(amount(totals.subtotal), "70.00");
        assert_eq!(amount(totals.tax), "13.30", "19.00 / 2 + 3.80");
        order.shipments[1].status = ShipmentStatus::Cancelled.into();
        order.lines[1].cancelled_quantity = 1;
        assert_eq!(
            amount(super::totals(&order).unwrap().total),
            "64.50",
            "50 + 5 + 9.50"
        );
    }

    #[test]
    fn a_shipment_charges_its_goods_shipping_and_tax() {
        let order = order();
        assert_eq!(
            shipment_charge(&order, &order.shipments[0])
                .unwrap()
                .to_proto()
                .amount,
            "124.00"
        );
        assert_eq!(
            shipment_charge(&order, &order.shipments[1])
                .unwrap()
                .to_proto()
                .amount,
            "27.80"
        );
    }

    #[test]
    fn refunds_return_goods_with_their_tax_and_shipping_only_when_everything_comes_back() {
        let order = order();
        let one_shoe = BTreeMap::from([("l1".to_owned(), 1)]);
        // 50 + 22.80 × 50/120 = 50 + 9.50.
        assert_eq!(
            refund_for(&order, &one_shoe, true)
                .unwrap()
                .to_proto()
                .amount,
            "59.50"
        );
        let everything = BTreeMap::from([("l1".to_owned(), 2), ("l2".to_owned(), 1)]);
        assert_eq!(
            refund_for(&order, &everything, true)
                .unwrap()
                .to_proto()
                .amount,
            "151.80"
        );
        assert_eq!(
            refund_for(&order, &everything, false)
                .unwrap()
                .to_proto()
                .amount,
            "142.80"
        );
    }

    #[test]
    fn yen_orders_stay_whole() {
        let mut order = order();
        order.currency_code = "JPY".into();
        for line in &mut order.lines {
            line.unit_price = Some(common::Money {
                currency_code: "JPY".into(),
                amount: "333".into(),
            });
        }
        order.shipments.clear();
        let third = BTreeMap::from([("l2".to_owned(), 1)]);
        assert_eq!(
            refund_for(&order, &third, false).unwrap().to_proto().amount,
            "333"
        );
    }
}
