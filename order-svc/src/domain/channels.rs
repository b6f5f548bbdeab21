//! Channel adapters: every sales channel's native order payload becomes one canonical
//! [`Intake`], so that one validation stage and one order pipeline serve all channels.
//!
//! Adapters map shapes and refuse what cannot be mapped: missing or ill-typed fields,
//! quantities that are not whole numbers in `1..=u32::MAX`, amounts that are not decimal
//! strings (non-negative, at most the currency's minor-unit digits), currency codes that are
//! not three upper-case letters, a line currency other than the order's, no lines or more
//! than [`MAX_LINES`], payloads over [`MAX_PAYLOAD_BYTES`], bytes that are not UTF-8 JSON
//! (for mobile: not a `PlaceOrderRequest`), user ids that cannot be formed. They check no
//! business rule — that a SKU exists, is in stock, or costs what the channel collected is the
//! validation stage's job.
//!
//! A refusal is one [`Unmappable`]: the first problem found, with its path in the channel's
//! own field names (`OrderItems[0].ItemPrice.Amount: 39.985 has more than the 2 decimals of
//! EUR`). Fields are checked in a fixed order: order id, currency, customer, lines, shipping
//! address, delivery. Unknown fields are ignored (real webhooks keep growing new ones) and a
//! JSON `null` counts as absent; JSON text is trimmed.
//!
//! Every channel but mobile gets `idempotency_key = "<channel>-<external_ref>"` (`web-…`,
//! `marketplace-…`, `pos-…`), so a redelivered webhook is one order. Unit prices are scaled
//! to the currency's minor units (`"20"` USD becomes `20.00`).
//!
//! # Mobile
//!
//! Protobuf bytes of `oms.order.v1.PlaceOrderRequest`, mapped as given: `external_ref` is
//! empty, unit prices are `None` (the price list applies), `user_id` and `idempotency_key`
//! are required. Its `channel` field must be unset or `CHANNEL_MOBILE`.
//!
//! ```text
//! PlaceOrderRequest { user_id: "u-42", idempotency_key: "3f2b9c", currency_code: "USD",
//!                     lines: [{ sku: "TEE-1", quantity: 2 }], shipping_address, preference }
//! ```
//!
//! # Web storefront (Shopify `orders/create` webhook)
//!
//! ```json
//! { "id": 820982911946154508, "name": "#1001", "currency": "USD",
//!   "customer": { "id": 115310627314723954, "email": "jon@example.com" },
//!   "line_items": [{ "sku": "TEE-1", "quantity": 2, "price": "19.99",
//!                    "price_set": { "shop_money": { "amount": "19.99", "currency_code": "USD" } } }],
//!   "shipping_address": { "first_name": "Jon", "last_name": "Snow", "address1": "1 Market St",
//!                         "address2": "Suite 300", "city": "San Francisco", "province_code": "CA",
//!                         "zip": "94105", "country_code": "US", "phone": "+1 415 555 0100",
//!                         "latitude": 37.7936, "longitude": -122.3958 },
//!   "shipping_lines": [{ "code": "express" }] }
//! ```
//!
//! `external_ref` is `id`; `user_id` is `web-<customer.id>`, or `web-guest-<id>` for a guest
//! checkout. `price` is the unit price in the shop currency `currency`; a line's optional
//! `price_set.shop_money.currency_code` must agree. `shipping_lines[0].code` `standard`,
//! `express` or `same_day` (any case) sets the method, any other code leaves it unspecified,
//! no shipping line means no preference.
//!
//! # Marketplace (Amazon SP-API order with its items)
//!
//! ```json
//! { "AmazonOrderId": "902-3159896-1390916", "PurchaseDate": "2026-11-25T10:00:00Z",
//!   "OrderTotal": { "CurrencyCode": "EUR", "Amount": "59.97" },
//!   "ShipmentServiceLevelCategory": "Expedited",
//!   "ShippingAddress": { "Name": "Erika Mustermann", "AddressLine1": "Hauptstr. 5",
//!                        "City": "München", "StateOrRegion": "Bayern", "PostalCode": "80331",
//!                        "CountryCode": "DE" },
//!   "OrderItems": [{ "SellerSKU": "SHOE-1", "QuantityOrdered": 2,
//!                    "ItemPrice": { "CurrencyCode": "EUR", "Amount": "39.98" } }] }
//! ```
//!
//! `ItemPrice` is the price of the whole quantity, so the unit price is `Amount /
//! QuantityOrdered` and must come out exact at the currency's minor units. `external_ref` is
//! `AmazonOrderId`, `user_id` is `mkt-<AmazonOrderId>` (buyers are anonymous to us).
//! `StateOrRegion` becomes the region when it is an ISO 3166-2 code or a bare subdivision code
//! ("CA" in the US), never when it is a name ("Bayern"). `Expedited`, `NextDay`, `SecondDay`
//! mean express, `SameDay` same day, `Standard` and `Scheduled` standard.
//!
//! # Point of sale ("endless aisle": bought in the store, shipped home)
//!
//! ```json
//! { "receipt_number": "R-0042-000123", "store_id": "store-berlin-1", "currency": "EUR",
//!   "customer": { "loyalty_id": "L-778899" },
//!   "items": [{ "sku": "A", "qty": 1, "unit_price_minor": 1999 }],
//!   "ship_to": { "name": "Max Muster", "street": "Unter den Linden 1", "city": "Berlin",
//!                "region": "BE", "postal_code": "10117", "country": "DE",
//!                "lat": 52.517, "lng": 13.389, "phone": "+49 30 1234567" },
//!   "service": "same_day" }
//! ```
//!
//! Money is in minor units (`1999` EUR is 19.99). `external_ref` is `receipt_number`,
//! `user_id` is `pos-<loyalty_id>`, or `pos-<store_id>` without a loyalty id (`store_id` is
//! required either way). `ship_to` is required; `service` is optional but, when given, one of
//! `standard`, `express`, `same_day`. An item may carry its own `currency`, which must be the
//! receipt's.

use std::fmt::Display;

use oms_platform::{bus::is_subject_token, error::MAX_ID_LEN, money::Currency};
use oms_proto::common::v1::{Address, Channel, DeliveryPreference, GeoPoint, ShippingMethod};
use rust_decimal::Decimal;

use super::{Intake, IntakeLine};

/// The largest payload an adapter reads (256 KiB): far above any real order, small enough
/// that a hostile payload cannot make parsing expensive.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// The most lines one order may have.
pub use super::validate::MAX_LINES;

/// Why a payload cannot become an order: one precise reason naming the field path,
/// e.g. `line_items[2].price: "19,99" is not a decimal amount`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unmappable(pub String);

impl Unmappable {
    fn at(path: &str, reason: impl Display) -> Self {
        Self(format!("{path}: {reason}"))
    }
}

/// Maps a channel's payload (JSON for web, marketplace and POS; protobuf
/// `oms.order.v1.PlaceOrderRequest` bytes for mobile).
pub fn adapt(channel: Channel, payload: &[u8]) -> Result<Intake, Unmappable> {
    let adapter: fn(&[u8]) -> Result<Intake, Unmappable> = match channel {
        Channel::Unspecified => return Err(Unmappable::at("channel", "required")),
        Channel::Mobile => mobile::adapt,
        Channel::Web => web::adapt,
        Channel::Marketplace => marketplace::adapt,
        Channel::Pos => pos::adapt,
    };
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(Unmappable::at(
            "payload",
            format!("{} bytes, at most {MAX_PAYLOAD_BYTES}", payload.len()),
        ));
    }
    adapter(payload)
}

/// The mobile app's `PlaceOrderRequest`, already in our own shape.
mod mobile {
    use oms_proto::order::v1::{OrderLineInput, PlaceOrderRequest};
    use prost::Message;

    use super::{
        Channel, Intake, IntakeLine, Unmappable, check_currency_code, check_line_count,
        given_user_id,
    };

    pub(super) fn adapt(payload: &[u8]) -> Result<Intake, Unmappable> {
        let request = PlaceOrderRequest::decode(payload).map_err(|error| {
            Unmappable::at("payload", format!("not a PlaceOrderRequest ({error})"))
        })?;
        let user_id = given_user_id("user_id", &request.user_id)?;
        if request.idempotency_key.trim().is_empty() {
            return Err(Unmappable::at("idempotency_key", "required"));
        }
        let lines = lines(&request.lines)?;
        check_currency_code("currency_code", &request.currency_code)?;
        check_channel(request.channel)?;
        Ok(Intake {
            channel: Channel::Mobile,
            external_ref: String::new(),
            user_id,
            idempotency_key: request.idempotency_key,
            currency_code: request.currency_code,
            lines,
            shipping_address: request.shipping_address,
            preference: request.preference,
            quote_id: request.quote_id,
        })
    }

    fn lines(inputs: &[OrderLineInput]) -> Result<Vec<IntakeLine>, Unmappable> {
        check_line_count("lines", inputs.len())?;
        inputs
            .iter()
            .enumerate()
            .map(|(index, input)| line(&format!("lines[{index}]"), input))
            .collect()
    }

    fn line(path: &str, input: &OrderLineInput) -> Result<IntakeLine, Unmappable> {
        if input.sku.trim().is_empty() {
            return Err(Unmappable::at(&format!("{path}.sku"), "required"));
        }
        if input.quantity == 0 {
            return Err(Unmappable::at(
                &format!("{path}.quantity"),
                "must be at least 1, got 0",
            ));
        }
        Ok(IntakeLine {
            sku: input.sku.clone(),
            quantity: input.quantity,
            unit_price: None,
        })
    }

    /// A request that says it came from another channel was routed here by mistake.
    fn check_channel(channel: i32) -> Result<(), Unmappable> {
        match Channel::try_from(channel) {
            Ok(Channel::Unspecified | Channel::Mobile) => Ok(()),
            Ok(other) => Err(Unmappable::at(
                "channel",
                format!("{} in a mobile payload", other.as_str_name()),
            )),
            Err(_) => Err(Unmappable::at(
                "channel",
                format!("unknown value {channel}"),
            )),
        }
    }
}

/// The web storefront's Shopify `orders/create` webhook.
mod web {
    use serde::Deserialize;
    use serde_json::Value;

    use super::{
        Address, Channel, Currency, DeliveryPreference, Intake, IntakeLine, Unmappable,
        accepted_currency, at_minor_units, check_line_count, check_line_currency, iso_region, json,
        location, method_from_code, preference,
    };

    /// The fields of the webhook we map; the many others are ignored.
    #[derive(Deserialize)]
    struct Order {
        id: Option<Value>,
        currency: Option<Value>,
        customer: Option<Value>,
        line_items: Option<Value>,
        shipping_address: Option<Value>,
        shipping_lines: Option<Value>,
    }

    #[derive(Deserialize)]
    struct Customer {
        id: Option<Value>,
    }

    #[derive(Deserialize)]
    struct LineItem {
        sku: Option<Value>,
        quantity: Option<Value>,
        price: Option<Value>,
        price_set: Option<Value>,
    }

    #[derive(Deserialize)]
    struct PriceSet {
        shop_money: Option<Value>,
    }

    #[derive(Deserialize)]
    struct ShopMoney {
        currency_code: Option<Value>,
    }

    #[derive(Deserialize)]
    struct ShippingAddress {
        first_name: Option<Value>,
        last_name: Option<Value>,
        name: Option<Value>,
        address1: Option<Value>,
        address2: Option<Value>,
        city: Option<Value>,
        province_code: Option<Value>,
        zip: Option<Value>,
        country_code: Option<Value>,
        phone: Option<Value>,
        latitude: Option<Value>,
        longitude: Option<Value>,
    }

    #[derive(Deserialize)]
    struct ShippingLine {
        code: Option<Value>,
    }

    pub(super) fn adapt(payload: &[u8]) -> Result<Intake, Unmappable> {
        let order: Order = json::payload(payload)?;
        let order_id = json::positive_integer("id", &order.id)?;
        let currency = accepted_currency("currency", &json::text("currency", &order.currency)?)?;
        let user_id = user_id(order_id, &order.customer)?;
        let lines = lines(&order.line_items, currency)?;
        let shipping_address = json::object("shipping_address", &order.shipping_address)?
            .map(address)
            .transpose()?;
        let preference = delivery(&order.shipping_lines)?;
        let external_ref = order_id.to_string();
        Ok(Intake {
            channel: Channel::Web,
            idempotency_key: format!("web-{external_ref}"),
            external_ref,
            user_id,
            currency_code: currency.code().to_owned(),
            lines,
            shipping_address,
            preference,
            quote_id: String::new(),
        })
    }

    /// Shopify customer ids are integers, so the user id is always usable; a guest checkout
    /// has no customer and gets a user of its own per order.
    fn user_id(order_id: u64, customer: &Option<Value>) -> Result<String, Unmappable> {
        match json::object::<Customer>("customer", customer)? {
            Some(customer) => {
                let customer_id = json::positive_integer("customer.id", &customer.id)?;
                Ok(format!("web-{customer_id}"))
            }
            None => Ok(format!("web-guest-{order_id}")),
        }
    }

    fn lines(items: &Option<Value>, currency: Currency) -> Result<Vec<IntakeLine>, Unmappable> {
        let items = json::list("line_items", items)?;
        check_line_count("line_items", items.len())?;
        items
            .iter()
            .enumerate()
            .map(|(index, item)| line(&format!("line_items[{index}]"), item, currency))
            .collect()
    }

    fn line(path: &str, item: &Value, currency: Currency) -> Result<IntakeLine, Unmappable> {
        let item: LineItem = json::record(path, item)?;
        let field = |name: &str| format!("{path}.{name}");
        let sku = json::required_text(&field("sku"), &item.sku)?;
        let quantity = json::quantity(&field("quantity"), &item.quantity)?;
        check_shop_currency(&field("price_set"), &item.price_set, currency)?;
        let unit_price = json::amount(&field("price"), &item.price, currency)?;
        Ok(IntakeLine {
            sku,
            quantity,
            unit_price: Some(at_minor_units(unit_price, currency)),
        })
    }

    /// `price` is in the shop currency; the optional `price_set.shop_money` says which that
    /// is, and a payload where it disagrees with `currency` cannot be priced.
    fn check_shop_currency(
        path: &str,
        price_set: &Option<Value>,
        currency: Currency,
    ) -> Result<(), Unmappable> {
        let Some(price_set) = json::object::<PriceSet>(path, price_set)? else {
            return Ok(());
        };
        let money_path = format!("{path}.shop_money");
        let Some(money) = json::object::<ShopMoney>(&money_path, &price_set.shop_money)? else {
            return Ok(());
        };
        let code_path = format!("{money_path}.currency_code");
        match json::text(&code_path, &money.currency_code)?.as_str() {
            "" => Ok(()),
            code => check_line_currency(&code_path, code, currency),
        }
    }

    fn address(raw: ShippingAddress) -> Result<Address, Unmappable> {
        let text = |name: &str, value: &Option<Value>| {
            json::text(&format!("shipping_address.{name}"), value)
        };
        let recipient = [
            text("first_name", &raw.first_name)?,
            text("last_name", &raw.last_name)?,
        ]
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
        // Some apps fill only the combined `name`.
        let recipient = if recipient.is_empty() {
            text("name", &raw.name)?
        } else {
            recipient
        };
        let lines = [
            text("address1", &raw.address1)?,
            text("address2", &raw.address2)?,
        ]
        .into_iter()
        .filter(|line| !line.is_empty())
        .collect();
        let country_code = text("country_code", &raw.country_code)?.to_ascii_uppercase();
        let province_code = text("province_code", &raw.province_code)?;
        let latitude = json::number("shipping_address.latitude", &raw.latitude)?;
        let longitude = json::number("shipping_address.longitude", &raw.longitude)?;
        Ok(Address {
            recipient,
            lines,
            city: text("city", &raw.city)?,
            region: iso_region(&country_code, &province_code),
            postal_code: text("zip", &raw.zip)?,
            location: location(latitude, longitude),
            phone: text("phone", &raw.phone)?,
            country_code,
        })
    }

    fn delivery(shipping_lines: &Option<Value>) -> Result<Option<DeliveryPreference>, Unmappable> {
        let Some(first) = json::optional_list("shipping_lines", shipping_lines)?.first() else {
            return Ok(None);
        };
        let first: ShippingLine = json::record("shipping_lines[0]", first)?;
        let code = json::text("shipping_lines[0].code", &first.code)?;
        Ok(Some(preference(method_from_code(&code))))
    }
}

/// Amazon SP-API orders (the order with its `OrderItems`).
mod marketplace {
    use serde::Deserialize;
    use serde_json::Value;

    use super::{
        Address, Channel, Currency, DeliveryPreference, Intake, IntakeLine, ShippingMethod,
        Unmappable, accepted_currency, check_line_count, check_line_currency, derived_user_id,
        iso_region, json, preference, unit_price_of_total,
    };

    /// The fields of the order we map; the many others are ignored.
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Order {
        amazon_order_id: Option<Value>,
        order_total: Option<Value>,
        shipment_service_level_category: Option<Value>,
        shipping_address: Option<Value>,
        order_items: Option<Value>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Money {
        currency_code: Option<Value>,
        amount: Option<Value>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct OrderItem {
        #[serde(rename = "SellerSKU")]
        seller_sku: Option<Value>,
        quantity_ordered: Option<Value>,
        item_price: Option<Value>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct ShippingAddress {
        name: Option<Value>,
        address_line1: Option<Value>,
        address_line2: Option<Value>,
        address_line3: Option<Value>,
        city: Option<Value>,
        state_or_region: Option<Value>,
        postal_code: Option<Value>,
        country_code: Option<Value>,
        phone: Option<Value>,
    }

    pub(super) fn adapt(payload: &[u8]) -> Result<Intake, Unmappable> {
        let order: Order = json::payload(payload)?;
        let order_id = json::required_text("AmazonOrderId", &order.amazon_order_id)?;
        let user_id = derived_user_id("AmazonOrderId", "mkt-", &order_id)?;
        let currency = order_currency(&order.order_total)?;
        let lines = lines(&order.order_items, currency)?;
        let shipping_address = json::object("ShippingAddress", &order.shipping_address)?
            .map(address)
            .transpose()?;
        let preference = delivery(&order.shipment_service_level_category)?;
        Ok(Intake {
            channel: Channel::Marketplace,
            idempotency_key: format!("marketplace-{order_id}"),
            external_ref: order_id,
            user_id,
            currency_code: currency.code().to_owned(),
            lines,
            shipping_address,
            preference,
            quote_id: String::new(),
        })
    }

    /// The order's currency is `OrderTotal.CurrencyCode`; the total itself is only checked to
    /// be an amount (it includes shipping and tax, which are not ours to reconcile here).
    fn order_currency(order_total: &Option<Value>) -> Result<Currency, Unmappable> {
        let total: Money = json::required_object("OrderTotal", order_total)?;
        let code = json::text("OrderTotal.CurrencyCode", &total.currency_code)?;
        let currency = accepted_currency("OrderTotal.CurrencyCode", &code)?;
        json::amount("OrderTotal.Amount", &total.amount, currency)?;
        Ok(currency)
    }

    fn lines(items: &Option<Value>, currency: Currency) -> Result<Vec<IntakeLine>, Unmappable> {
        let items = json::list("OrderItems", items)?;
        check_line_count("OrderItems", items.len())?;
        items
            .iter()
            .enumerate()
            .map(|(index, item)| line(&format!("OrderItems[{index}]"), item, currency))
            .collect()
    }

    fn line(path: &str, item: &Value, currency: Currency) -> Result<IntakeLine, Unmappable> {
        let item: OrderItem = json::record(path, item)?;
        let field = |name: &str| format!("{path}.{name}");
        let sku = json::required_text(&field("SellerSKU"), &item.seller_sku)?;
        let quantity = json::quantity(&field("QuantityOrdered"), &item.quantity_ordered)?;
        let price: Money = json::required_object(&field("ItemPrice"), &item.item_price)?;
        let code_path = field("ItemPrice.CurrencyCode");
        let code = json::text(&code_path, &price.currency_code)?;
        check_line_currency(&code_path, &code, currency)?;
        let amount_path = field("ItemPrice.Amount");
        let total = json::amount(&amount_path, &price.amount, currency)?;
        let unit_price = unit_price_of_total(&amount_path, total, quantity, currency)?;
        Ok(IntakeLine {
            sku,
            quantity,
            unit_price: Some(unit_price),
        })
    }

    fn address(raw: ShippingAddress) -> Result<Address, Unmappable> {
        let text = |name: &str, value: &Option<Value>| {
            json::text(&format!("ShippingAddress.{name}"), value)
        };
        let lines = [
            text("AddressLine1", &raw.address_line1)?,
            text("AddressLine2", &raw.address_line2)?,
            text("AddressLine3", &raw.address_line3)?,
        ]
        .into_iter()
        .filter(|line| !line.is_empty())
        .collect();
        let country_code = text("CountryCode", &raw.country_code)?.to_ascii_uppercase();
        let state = text("StateOrRegion", &raw.state_or_region)?;
        Ok(Address {
            recipient: text("Name", &raw.name)?,
            lines,
            city: text("City", &raw.city)?,
            region: iso_region(&country_code, &state),
            postal_code: text("PostalCode", &raw.postal_code)?,
            // SP-API addresses carry no coordinates; routing geocodes when it needs them.
            location: None,
            phone: text("Phone", &raw.phone)?,
            country_code,
        })
    }

    fn delivery(category: &Option<Value>) -> Result<Option<DeliveryPreference>, Unmappable> {
        let category = json::text("ShipmentServiceLevelCategory", category)?;
        if category.is_empty() {
            return Ok(None);
        }
        let method = match category.to_ascii_lowercase().as_str() {
            "expedited" | "nextday" | "secondday" => ShippingMethod::Express,
            "sameday" => ShippingMethod::SameDay,
            "standard" | "scheduled" => ShippingMethod::Standard,
            // A category Amazon adds later should not stop orders: the planner picks.
            _ => ShippingMethod::Unspecified,
        };
        Ok(Some(preference(method)))
    }
}

/// Store tills selling from the online assortment and shipping home.
mod pos {
    use serde::Deserialize;
    use serde_json::Value;

    use super::{
        Address, Channel, Currency, DeliveryPreference, Intake, IntakeLine, ShippingMethod,
        Unmappable, accepted_currency, check_line_count, check_line_currency, derived_user_id,
        iso_region, json, location, method_from_code, preference, quoted,
    };

    /// The fields of the receipt we map; till and cashier data are ignored.
    #[derive(Deserialize)]
    struct Receipt {
        receipt_number: Option<Value>,
        store_id: Option<Value>,
        currency: Option<Value>,
        customer: Option<Value>,
        items: Option<Value>,
        ship_to: Option<Value>,
        service: Option<Value>,
    }

    #[derive(Deserialize)]
    struct Customer {
        loyalty_id: Option<Value>,
    }

    #[derive(Deserialize)]
    struct Item {
        sku: Option<Value>,
        qty: Option<Value>,
        unit_price_minor: Option<Value>,
        currency: Option<Value>,
    }

    #[derive(Deserialize)]
    struct ShipTo {
        name: Option<Value>,
        street: Option<Value>,
        city: Option<Value>,
        region: Option<Value>,
        postal_code: Option<Value>,
        country: Option<Value>,
        lat: Option<Value>,
        lng: Option<Value>,
        phone: Option<Value>,
    }

    pub(super) fn adapt(payload: &[u8]) -> Result<Intake, Unmappable> {
        let receipt: Receipt = json::payload(payload)?;
        let receipt_number = json::external_ref("receipt_number", &receipt.receipt_number)?;
        let store_id = json::required_text("store_id", &receipt.store_id)?;
        let currency = accepted_currency("currency", &json::text("currency", &receipt.currency)?)?;
        let user_id = user_id(&receipt.customer, &store_id)?;
        let lines = lines(&receipt.items, currency)?;
        let Some(ship_to) = json::object::<ShipTo>("ship_to", &receipt.ship_to)? else {
            return Err(Unmappable::at(
                "ship_to",
                "required (the POS hands in ship-to-home orders only)",
            ));
        };
        let shipping_address = address(ship_to)?;
        let preference = delivery(&receipt.service)?;
        Ok(Intake {
            channel: Channel::Pos,
            idempotency_key: format!("pos-{receipt_number}"),
            external_ref: receipt_number,
            user_id,
            currency_code: currency.code().to_owned(),
            lines,
            shipping_address: Some(shipping_address),
            preference,
            quote_id: String::new(),
        })
    }

    /// A loyalty member is a customer of ours; anyone else is the store's walk-in customer.
    fn user_id(customer: &Option<Value>, store_id: &str) -> Result<String, Unmappable> {
        let loyalty_id = match json::object::<Customer>("customer", customer)? {
            Some(customer) => json::text("customer.loyalty_id", &customer.loyalty_id)?,
            None => String::new(),
        };
        if loyalty_id.is_empty() {
            derived_user_id("store_id", "pos-", store_id)
        } else {
            derived_user_id("customer.loyalty_id", "pos-", &loyalty_id)
        }
    }

    fn lines(items: &Option<Value>, currency: Currency) -> Result<Vec<IntakeLine>, Unmappable> {
        let items = json::list("items", items)?;
        check_line_count("items", items.len())?;
        items
            .iter()
            .enumerate()
            .map(|(index, item)| line(&format!("items[{index}]"), item, currency))
            .collect()
    }

    fn line(path: &str, item: &Value, currency: Currency) -> Result<IntakeLine, Unmappable> {
        let item: Item = json::record(path, item)?;
        let field = |name: &str| format!("{path}.{name}");
        let sku = json::required_text(&field("sku"), &item.sku)?;
        let quantity = json::quantity(&field("qty"), &item.qty)?;
        let code = json::text(&field("currency"), &item.currency)?;
        if !code.is_empty() {
            check_line_currency(&field("currency"), &code, currency)?;
        }
        let unit_price =
            json::minor_amount(&field("unit_price_minor"), &item.unit_price_minor, currency)?;
        Ok(IntakeLine {
            sku,
            quantity,
            unit_price: Some(unit_price),
        })
    }

    fn address(raw: ShipTo) -> Result<Address, Unmappable> {
        let text =
            |name: &str, value: &Option<Value>| json::text(&format!("ship_to.{name}"), value);
        let street = text("street", &raw.street)?;
        let country_code = text("country", &raw.country)?.to_ascii_uppercase();
        let region = text("region", &raw.region)?;
        let lat = json::number("ship_to.lat", &raw.lat)?;
        let lng = json::number("ship_to.lng", &raw.lng)?;
        Ok(Address {
            recipient: text("name", &raw.name)?,
            lines: [street]
                .into_iter()
                .filter(|line| !line.is_empty())
                .collect(),
            city: text("city", &raw.city)?,
            region: iso_region(&country_code, &region),
            postal_code: text("postal_code", &raw.postal_code)?,
            location: location(lat, lng),
            phone: text("phone", &raw.phone)?,
            country_code,
        })
    }

    /// `service` is our own contract with the tills, so an unknown value is a bug there,
    /// not a new method to tolerate.
    fn delivery(service: &Option<Value>) -> Result<Option<DeliveryPreference>, Unmappable> {
        let service = json::text("service", service)?;
        if service.is_empty() {
            return Ok(None);
        }
        match method_from_code(&service) {
            ShippingMethod::Unspecified => Err(Unmappable::at(
                "service",
                format!(
                    "{} is not one of standard, express, same_day",
                    quoted(&service)
                ),
            )),
            method => Ok(Some(preference(method))),
        }
    }
}

/// Reading JSON fields with their paths. Payload structs hold every field as an
/// `Option<Value>` so that serde never fails on a field's type with a message of its own:
/// these functions check each one and say which field is wrong.
mod json {
    use rust_decimal::Decimal;
    use serde::de::DeserializeOwned;
    use serde_json::Value;

    use super::{Currency, MAX_ID_LEN, Unmappable, parse_amount};

    /// The payload as the record `T`, or why it is not UTF-8 JSON holding an object.
    pub(super) fn payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, Unmappable> {
        let text = std::str::from_utf8(payload)
            .map_err(|error| Unmappable::at("payload", format!("not UTF-8 ({error})")))?;
        let value: Value = serde_json::from_str(text)
            .map_err(|error| Unmappable::at("payload", format!("not JSON ({error})")))?;
        if !value.is_object() {
            return Err(wrong_type("payload", "an object", &value));
        }
        T::deserialize(value).map_err(|error| Unmappable::at("payload", error))
    }

    /// `value` as the record `T`. It must be an object: serde would fill a struct from an
    /// array too, by position.
    pub(super) fn record<T: DeserializeOwned>(path: &str, value: &Value) -> Result<T, Unmappable> {
        if !value.is_object() {
            return Err(wrong_type(path, "an object", value));
        }
        // Cannot fail for records of optional values; mapped rather than unwrapped anyway.
        T::deserialize(value).map_err(|error| Unmappable::at(path, error))
    }

    /// An optional nested record.
    pub(super) fn object<T: DeserializeOwned>(
        path: &str,
        field: &Option<Value>,
    ) -> Result<Option<T>, Unmappable> {
        field.as_ref().map(|value| record(path, value)).transpose()
    }

    pub(super) fn required_object<T: DeserializeOwned>(
        path: &str,
        field: &Option<Value>,
    ) -> Result<T, Unmappable> {
        record(path, required(path, field)?)
    }

    pub(super) fn list<'v>(
        path: &str,
        field: &'v Option<Value>,
    ) -> Result<&'v [Value], Unmappable> {
        match required(path, field)? {
            Value::Array(values) => Ok(values),
            other => Err(wrong_type(path, "an array", other)),
        }
    }

    /// An optional list; absent is empty.
    pub(super) fn optional_list<'v>(
        path: &str,
        field: &'v Option<Value>,
    ) -> Result<&'v [Value], Unmappable> {
        match field {
            None => Ok(&[]),
            Some(_) => list(path, field),
        }
    }

    /// Optional text, trimmed; absent is "".
    pub(super) fn text(path: &str, field: &Option<Value>) -> Result<String, Unmappable> {
        match field {
            None => Ok(String::new()),
            Some(Value::String(text)) => Ok(text.trim().to_owned()),
            Some(other) => Err(wrong_type(path, "a string", other)),
        }
    }

    pub(super) fn required_text(path: &str, field: &Option<Value>) -> Result<String, Unmappable> {
        let text = text(path, field)?;
        if text.is_empty() {
            return Err(Unmappable::at(path, "required"));
        }
        Ok(text)
    }

    /// The channel's order id; bounded like our ids because it becomes part of keys.
    pub(super) fn external_ref(path: &str, field: &Option<Value>) -> Result<String, Unmappable> {
        let text = required_text(path, field)?;
        if text.len() > MAX_ID_LEN {
            return Err(Unmappable::at(path, format!("at most {MAX_ID_LEN} bytes")));
        }
        Ok(text)
    }

    /// A line quantity: a whole number in `1..=u32::MAX`.
    pub(super) fn quantity(path: &str, field: &Option<Value>) -> Result<u32, Unmappable> {
        let quantity = integer(path, required(path, field)?)?;
        if quantity < 1 {
            return Err(Unmappable::at(
                path,
                format!("must be at least 1, got {quantity}"),
            ));
        }
        u32::try_from(quantity).map_err(|_| {
            Unmappable::at(
                path,
                format!("{quantity} is over the maximum of {}", u32::MAX),
            )
        })
    }

    /// A numeric id such as Shopify's: a whole number from 1.
    pub(super) fn positive_integer(path: &str, field: &Option<Value>) -> Result<u64, Unmappable> {
        let id = integer(path, required(path, field)?)?;
        u64::try_from(id)
            .ok()
            .filter(|id| *id >= 1)
            .ok_or_else(|| Unmappable::at(path, format!("must be at least 1, got {id}")))
    }

    /// An optional coordinate; ranges are the validation stage's to check.
    pub(super) fn number(path: &str, field: &Option<Value>) -> Result<Option<f64>, Unmappable> {
        match field {
            None => Ok(None),
            Some(Value::Number(number)) => Ok(number.as_f64()),
            Some(other) => Err(wrong_type(path, "a number", other)),
        }
    }

    /// A required decimal-string amount (see [`parse_amount`]). JSON numbers are refused:
    /// as floats they cannot hold cents exactly.
    pub(super) fn amount(
        path: &str,
        field: &Option<Value>,
        currency: Currency,
    ) -> Result<Decimal, Unmappable> {
        match required(path, field)? {
            Value::String(text) => parse_amount(path, text, currency),
            other => Err(wrong_type(
                path,
                "a decimal string such as \"19.99\"",
                other,
            )),
        }
    }

    /// A required amount in minor units (`1999` is 19.99 EUR), scaled to the currency.
    pub(super) fn minor_amount(
        path: &str,
        field: &Option<Value>,
        currency: Currency,
    ) -> Result<Decimal, Unmappable> {
        let minor = integer(path, required(path, field)?)?;
        if minor < 0 {
            return Err(Unmappable::at(path, format!("{minor} is negative")));
        }
        i64::try_from(minor)
            .ok()
            .and_then(|minor| Decimal::try_new(minor, currency.minor_units()).ok())
            .ok_or_else(|| Unmappable::at(path, format!("{minor} is out of range")))
    }

    fn required<'v>(path: &str, field: &'v Option<Value>) -> Result<&'v Value, Unmappable> {
        field
            .as_ref()
            .ok_or_else(|| Unmappable::at(path, "required"))
    }

    /// A JSON integer, exactly (serde_json keeps integers that fit 64 bits exact; anything
    /// else, `2.0` included, arrives as a float and is refused).
    fn integer(path: &str, value: &Value) -> Result<i128, Unmappable> {
        let Value::Number(number) = value else {
            return Err(wrong_type(path, "a whole number", value));
        };
        number
            .as_i64()
            .map(i128::from)
            .or_else(|| number.as_u64().map(i128::from))
            .ok_or_else(|| Unmappable::at(path, format!("expected a whole number, got {number}")))
    }

    fn wrong_type(path: &str, expected: &str, value: &Value) -> Unmappable {
        Unmappable::at(
            path,
            format!("expected {expected}, got {}", describe(value)),
        )
    }

    fn describe(value: &Value) -> &'static str {
        match value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        }
    }
}

/// Longest amount string read; longer ones are not amounts anyone charges.
const MAX_AMOUNT_CHARS: usize = 32;

/// A decimal amount as channels send money (`"19.99"`): digits with an optional fraction, no
/// sign, exponent or separators, not negative, at most the currency's minor-unit digits —
/// trailing zeros aside, as the platform's `Money` reads amounts (`"19.990"` is 19.99 USD).
fn parse_amount(path: &str, text: &str, currency: Currency) -> Result<Decimal, Unmappable> {
    let unsigned = text.strip_prefix('-');
    let digits = unsigned.unwrap_or(text);
    let (whole, fraction) = match digits.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (digits, None),
    };
    let well_formed =
        text.len() <= MAX_AMOUNT_CHARS && is_digits(whole) && fraction.is_none_or(is_digits);
    if !well_formed {
        return Err(Unmappable::at(
            path,
            format!("{} is not a decimal amount", quoted(text)),
        ));
    }
    if unsigned.is_some() {
        return Err(Unmappable::at(path, format!("{text} is negative")));
    }
    let decimals = fraction.unwrap_or("").trim_end_matches('0').len();
    if decimals > currency.minor_units() as usize {
        return Err(Unmappable::at(
            path,
            format!(
                "{text} has more than the {} decimals of {currency}",
                currency.minor_units()
            ),
        ));
    }
    text.parse()
        .map_err(|_| Unmappable::at(path, format!("{text} is out of range")))
}

fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit())
}

/// `amount` with exactly the currency's minor-unit digits, as prices are stored.
fn at_minor_units(amount: Decimal, currency: Currency) -> Decimal {
    let mut scaled = amount;
    scaled.rescale(currency.minor_units());
    scaled
}

/// The unit price inside a price for `quantity` units. It must be exact at the currency's
/// minor units: a remainder would mean the units were not sold at one price, and picking one
/// would misstate what the buyer paid for each.
fn unit_price_of_total(
    path: &str,
    total: Decimal,
    quantity: u32,
    currency: Currency,
) -> Result<Decimal, Unmappable> {
    let count = Decimal::from(quantity);
    total
        .checked_div(count)
        .map(|unit| currency.round(unit))
        .filter(|unit| unit.checked_mul(count) == Some(total))
        .map(|unit| at_minor_units(unit, currency))
        .ok_or_else(|| {
            Unmappable::at(
                path,
                format!("{total} does not divide into {quantity} equal unit prices"),
            )
        })
}

/// Checks a currency code's shape: three upper-case letters.
fn check_currency_code(path: &str, code: &str) -> Result<(), Unmappable> {
    if code.is_empty() {
        return Err(Unmappable::at(path, "required"));
    }
    if code.len() != 3 || !code.bytes().all(|byte| byte.is_ascii_uppercase()) {
        return Err(Unmappable::at(
            path,
            format!(
                "{} is not a currency code (3 upper-case letters, e.g. USD)",
                quoted(code)
            ),
        ));
    }
    Ok(())
}

/// An order currency whose amounts we can read: its minor units decide what is an amount.
fn accepted_currency(path: &str, code: &str) -> Result<Currency, Unmappable> {
    check_currency_code(path, code)?;
    Currency::parse(code).ok_or_else(|| {
        Unmappable::at(
            path,
            format!("{code} is not a currency this system accepts"),
        )
    })
}

/// A line priced in another currency than the order cannot be mapped without a rate.
fn check_line_currency(path: &str, code: &str, order: Currency) -> Result<(), Unmappable> {
    check_currency_code(path, code)?;
    if code != order.code() {
        return Err(Unmappable::at(
            path,
            format!("{code} differs from the order currency {order}"),
        ));
    }
    Ok(())
}

fn check_line_count(path: &str, count: usize) -> Result<(), Unmappable> {
    match count {
        0 => Err(Unmappable::at(path, "at least one line required")),
        count if count > MAX_LINES => Err(Unmappable::at(
            path,
            format!("{count} lines, at most {MAX_LINES}"),
        )),
        _ => Ok(()),
    }
}

/// What every service accepts as an id (and as a bus subject token).
fn is_usable_id(id: &str) -> bool {
    id.len() <= MAX_ID_LEN && is_subject_token(id)
}

const USABLE_ID: &str = "letters, digits, '-', '_' and ':'";

/// A user id as the mobile app hands it in.
fn given_user_id(path: &str, user_id: &str) -> Result<String, Unmappable> {
    if user_id.is_empty() {
        return Err(Unmappable::at(path, "required"));
    }
    if !is_usable_id(user_id) {
        return Err(Unmappable::at(
            path,
            format!(
                "{} is not a usable user id (at most {MAX_ID_LEN} characters of {USABLE_ID})",
                quoted(user_id)
            ),
        ));
    }
    Ok(user_id.to_owned())
}

/// The user id `<prefix><raw>`. A value that does not fit is refused, never rewritten to fit:
/// dropping or replacing characters could turn two buyers into one.
fn derived_user_id(path: &str, prefix: &str, raw: &str) -> Result<String, Unmappable> {
    let user_id = format!("{prefix}{raw}");
    if !is_usable_id(&user_id) {
        return Err(Unmappable::at(
            path,
            format!(
                "{} does not make a usable user id (at most {} characters of {USABLE_ID})",
                quoted(raw),
                MAX_ID_LEN.saturating_sub(prefix.len())
            ),
        ));
    }
    Ok(user_id)
}

/// An ISO 3166-2 region from a channel's state field: kept when it is one already ("US-CA"),
/// prefixed with the country when it is a bare subdivision code ("CA"), dropped when it is a
/// name ("Bayern"). Regions drive sales tax, so no region beats a guessed one.
fn iso_region(country_code: &str, state: &str) -> String {
    let state = state.to_ascii_uppercase();
    let is_country =
        country_code.len() == 2 && country_code.bytes().all(|b| b.is_ascii_uppercase());
    let already_iso = state.split_once('-').is_some_and(|(country, subdivision)| {
        country.len() == 2
            && country.bytes().all(|b| b.is_ascii_uppercase())
            && is_subdivision_code(subdivision)
    });
    if already_iso {
        state
    } else if is_country && is_subdivision_code(&state) {
        format!("{country_code}-{state}")
    } else {
        String::new()
    }
}

fn is_subdivision_code(code: &str) -> bool {
    (1..=3).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A point only when both coordinates are there: half a point is no place.
fn location(lat: Option<f64>, lng: Option<f64>) -> Option<GeoPoint> {
    Some(GeoPoint {
        lat: lat?,
        lng: lng?,
    })
}

/// Our own method names, any case; anything else is unspecified.
fn method_from_code(code: &str) -> ShippingMethod {
    match code.to_ascii_lowercase().as_str() {
        "standard" => ShippingMethod::Standard,
        "express" => ShippingMethod::Express,
        "same_day" => ShippingMethod::SameDay,
        _ => ShippingMethod::Unspecified,
    }
}

fn preference(method: ShippingMethod) -> DeliveryPreference {
    DeliveryPreference {
        method: method.into(),
        window: None,
    }
}

/// `text` quoted for a message and cut to 40 characters: reasons are stored and read by
/// operators, and a payload must not be able to make them huge.
fn quoted(text: &str) -> String {
    const SHOWN: usize = 40;
    match text.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{:?}…", text.get(..cut).unwrap_or(text)),
        None => format!("{text:?}"),
    }
}

#[cfg(test)]
mod tests {
    use oms_proto::order::v1::{OrderLineInput, PlaceOrderRequest};
    use prost::Message;
    use serde_json::{Value, json};

    use super::*;

    fn dec(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    fn priced(sku: &str, quantity: u32, unit_price: &str) -> IntakeLine {
        IntakeLine {
            sku: sku.into(),
            quantity,
            unit_price: Some(dec(unit_price)),
        }
    }

    fn method(method: ShippingMethod) -> Option<DeliveryPreference> {
        Some(preference(method))
    }

    fn bytes(value: &Value) -> Vec<u8> {
        serde_json::to_vec(value).unwrap()
    }

    /// `base` with the value at JSON pointer `pointer` set (added when the key is new).
    fn with(base: &Value, pointer: &str, value: Value) -> Vec<u8> {
        let mut edited = base.clone();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        match edited.pointer_mut(parent).unwrap() {
            Value::Object(fields) => {
                fields.insert(key.into(), value);
            }
            Value::Array(items) => items[key.parse::<usize>().unwrap()] = value,
            other => panic!("{parent} is {other}"),
        }
        bytes(&edited)
    }

    /// `base` without the field at JSON pointer `pointer`.
    fn without(base: &Value, pointer: &str) -> Vec<u8> {
        let mut edited = base.clone();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        edited
            .pointer_mut(parent)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove(key)
            .unwrap();
        bytes(&edited)
    }

    fn reason(channel: Channel, payload: &[u8]) -> String {
        match adapt(channel, payload) {
            Err(Unmappable(reason)) => reason,
            Ok(intake) => panic!("mapped: {intake:?}"),
        }
    }

    fn assert_reasons(channel: Channel, cases: Vec<(Vec<u8>, &str)>) {
        for (payload, expected) in cases {
            let shown = String::from_utf8_lossy(&payload)
                .chars()
                .take(300)
                .collect::<String>();
            assert_eq!(reason(channel, &payload), expected, "payload {shown}");
        }
    }

    // ---- every channel ----

    #[test]
    fn a_channel_is_required_and_payloads_are_bounded() {
        assert_eq!(reason(Channel::Unspecified, b"{}"), "channel: required");
        let huge = vec![b' '; MAX_PAYLOAD_BYTES + 1];
        for channel in [
            Channel::Mobile,
            Channel::Web,
            Channel::Marketplace,
            Channel::Pos,
        ] {
            assert_eq!(
                reason(channel, &huge),
                "payload: 262145 bytes, at most 262144",
                "{channel:?}"
            );
        }
    }

    #[test]
    fn regions_become_iso_3166_2_or_nothing() {
        let table = [
            ("US", "CA", "US-CA"),
            ("US", "ca", "US-CA"),
            ("US", "US-CA", "US-CA"),
            ("JP", "JP-13", "JP-13"),
            ("FR", "75", "FR-75"),
            ("DE", "Bayern", ""),
            ("JP", "東京都", ""),
            ("", "CA", ""),
            ("US", "", ""),
            ("US", "C A", ""),
        ];
        for (country, state, region) in table {
            assert_eq!(iso_region(country, state), region, "{country} {state}");
        }
    }

    #[test]
    fn amounts_are_strict_decimal_strings() {
        let usd = Currency::parse("USD").unwrap();
        let jpy = Currency::parse("JPY").unwrap();
        let bhd = Currency::parse("BHD").unwrap();
        assert_eq!(parse_amount("p", "19.99", usd), Ok(dec("19.99")));
        assert_eq!(parse_amount("p", "19.990", usd), Ok(dec("19.99")));
        assert_eq!(parse_amount("p", "0", usd), Ok(Decimal::ZERO));
        assert_eq!(parse_amount("p", "1200", jpy), Ok(dec("1200")));
        assert_eq!(parse_amount("p", "1.234", bhd), Ok(dec("1.234")));
        let refused = [
            ("", usd, "p: \"\" is not a decimal amount"),
            ("1e3", usd, "p: \"1e3\" is not a decimal amount"),
            ("+1", usd, "p: \"+1\" is not a decimal amount"),
            (".5", usd, "p: \".5\" is not a decimal amount"),
            ("5.", usd, "p: \"5.\" is not a decimal amount"),
            ("1,000.00", usd, "p: \"1,000.00\" is not a decimal amount"),
            ("1_000", usd, "p: \"1_000\" is not a decimal amount"),
            (" 1", usd, "p: \" 1\" is not a decimal amount"),
            ("-1.00", usd, "p: -1.00 is negative"),
            (
                "19.999",
                usd,
                "p: 19.999 has more than the 2 decimals of USD",
            ),
            ("10.5", jpy, "p: 10.5 has more than the 0 decimals of JPY"),
            (
                "99999999999999999999999999999",
                usd,
                "p: 99999999999999999999999999999 is out of range",
            ),
        ];
        for (text, currency, expected) in refused {
            assert_eq!(
                parse_amount("p", text, currency),
                Err(Unmappable(expected.into())),
                "{text}"
            );
        }
        let long = "1".repeat(50);
        assert_eq!(
            parse_amount("p", &long, usd).unwrap_err().0,
            format!("p: \"{}\"… is not a decimal amount", "1".repeat(40))
        );
    }

    // ---- mobile ----

    fn mobile_request() -> PlaceOrderRequest {
        PlaceOrderRequest {
            user_id: "u-42".into(),
            idempotency_key: "3f2b9c0e-8f6a-4d1b-9a43-0c5e2f7d9b11".into(),
            lines: vec![
                OrderLineInput {
                    sku: "TEE-1".into(),
                    quantity: 2,
                },
                OrderLineInput {
                    sku: "MUG-7".into(),
                    quantity: 1,
                },
            ],
            shipping_address: Some(Address {
                recipient: "Jon Snow".into(),
                lines: vec!["1 Market St".into()],
                city: "San Francisco".into(),
                region: "US-CA".into(),
                postal_code: "94105".into(),
                country_code: "US".into(),
                location: Some(GeoPoint {
                    lat: 37.7936,
                    lng: -122.3958,
                }),
                phone: "+1 415 555 0100".into(),
            }),
            currency_code: "USD".into(),
            preference: Some(preference(ShippingMethod::SameDay)),
            quote_id: "q-7".into(),
            channel: Channel::Mobile.into(),
        }
    }

    #[test]
    fn mobile_maps_the_request_as_given() {
        let request = mobile_request();
        let intake = adapt(Channel::Mobile, &request.encode_to_vec()).unwrap();
        assert_eq!(
            intake,
            Intake {
                channel: Channel::Mobile,
                external_ref: String::new(),
                user_id: "u-42".into(),
                idempotency_key: "3f2b9c0e-8f6a-4d1b-9a43-0c5e2f7d9b11".into(),
                currency_code: "USD".into(),
                lines: vec![
                    IntakeLine {
                        sku: "TEE-1".into(),
                        quantity: 2,
                        unit_price: None,
                    },
                    IntakeLine {
                        sku: "MUG-7".into(),
                        quantity: 1,
                        unit_price: None,
                    },
                ],
                shipping_address: request.shipping_address.clone(),
                preference: method(ShippingMethod::SameDay),
                quote_id: "q-7".into(),
            }
        );
        let unset_channel = PlaceOrderRequest {
            channel: Channel::Unspecified.into(),
            ..mobile_request()
        };
        assert!(adapt(Channel::Mobile, &unset_channel.encode_to_vec()).is_ok());
    }

    #[test]
    fn mobile_rejections_name_the_field() {
        let edited = |edit: fn(&mut PlaceOrderRequest)| {
            let mut request = mobile_request();
            edit(&mut request);
            request.encode_to_vec()
        };
        assert_reasons(
            Channel::Mobile,
            vec![
                (
                    vec![0xff, 0xff, 0xff],
                    "payload: not a PlaceOrderRequest (failed to decode Protobuf message: invalid varint)",
                ),
                (
                    b"\x0a\x05u-".to_vec(),
                    "payload: not a PlaceOrderRequest (failed to decode Protobuf message: PlaceOrderRequest.user_id: buffer underflow)",
                ),
                (Vec::new(), "user_id: required"),
                (edited(|r| r.user_id.clear()), "user_id: required"),
                (
                    edited(|r| r.user_id = "jon snow".into()),
                    "user_id: \"jon snow\" is not a usable user id (at most 64 characters of letters, digits, '-', '_' and ':')",
                ),
                (
                    edited(|r| r.user_id = "u".repeat(65)),
                    "user_id: \"uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu\"… is not a usable user id (at most 64 characters of letters, digits, '-', '_' and ':')",
                ),
                (
                    edited(|r| r.idempotency_key.clear()),
                    "idempotency_key: required",
                ),
                (
                    edited(|r| r.idempotency_key = "  ".into()),
                    "idempotency_key: required",
                ),
                (
                    edited(|r| r.lines.clear()),
                    "lines: at least one line required",
                ),
                (
                    edited(|r| r.lines = vec![r.lines[0].clone(); 101]),
                    "lines: 101 lines, at most 100",
                ),
                (edited(|r| r.lines[1].sku.clear()), "lines[1].sku: required"),
                (
                    edited(|r| r.lines[1].quantity = 0),
                    "lines[1].quantity: must be at least 1, got 0",
                ),
                (
                    edited(|r| r.currency_code.clear()),
                    "currency_code: required",
                ),
                (
                    edited(|r| r.currency_code = "usd".into()),
                    "currency_code: \"usd\" is not a currency code (3 upper-case letters, e.g. USD)",
                ),
                (
                    edited(|r| r.channel = Channel::Web.into()),
                    "channel: CHANNEL_WEB in a mobile payload",
                ),
                (edited(|r| r.channel = 9), "channel: unknown value 9"),
            ],
        );
    }

    // ---- web ----

    fn web_order() -> Value {
        json!({
            "id": 820982911946154508_u64,
            "admin_graphql_api_id": "gid://shopify/Order/820982911946154508",
            "name": "#1001",
            "email": "jon@example.com",
            "created_at": "2026-11-25T10:00:00-05:00",
            "currency": "USD",
            "presentment_currency": "USD",
            "total_price": "74.98",
            "financial_status": "paid",
            "customer": {
                "id": 115310627314723954_u64,
                "email": "jon@example.com",
                "first_name": "Jon",
                "last_name": "Snow"
            },
            "line_items": [
                {
                    "id": 866550311766439020_u64,
                    "sku": "TEE-1",
                    "title": "Tee",
                    "quantity": 2,
                    "price": "19.99",
                    "price_set": {
                        "shop_money": { "amount": "19.99", "currency_code": "USD" },
                        "presentment_money": { "amount": "19.99", "currency_code": "USD" }
                    },
                    "taxable": true
                },
                {
                    "id": 141249953214522974_u64,
                    "sku": " MUG-7 ",
                    "title": "Mug",
                    "quantity": 1,
                    "price": "20",
                    "price_set": null
                }
            ],
            "shipping_address": {
                "first_name": "Jon",
                "last_name": "Snow",
                "name": "Jon Snow",
                "company": null,
                "address1": "1 Market St",
                "address2": "Suite 300",
                "city": "San Francisco",
                "province": "California",
                "province_code": "CA",
                "zip": "94105",
                "country": "United States",
                "country_code": "US",
                "phone": "+1 415 555 0100",
                "latitude": 37.7936,
                "longitude": -122.3958
            },
            "shipping_lines": [
                { "code": "Express", "title": "Express (1-2 days)", "price": "15.00" }
            ]
        })
    }

    fn web_address() -> Address {
        Address {
            recipient: "Jon Snow".into(),
            lines: vec!["1 Market St".into(), "Suite 300".into()],
            city: "San Francisco".into(),
            region: "US-CA".into(),
            postal_code: "94105".into(),
            country_code: "US".into(),
            location: Some(GeoPoint {
                lat: 37.7936,
                lng: -122.3958,
            }),
            phone: "+1 415 555 0100".into(),
        }
    }

    #[test]
    fn web_maps_a_shopify_order() {
        let intake = adapt(Channel::Web, &bytes(&web_order())).unwrap();
        assert_eq!(
            intake,
            Intake {
                channel: Channel::Web,
                external_ref: "820982911946154508".into(),
                user_id: "web-115310627314723954".into(),
                idempotency_key: "web-820982911946154508".into(),
                currency_code: "USD".into(),
                lines: vec![priced("TEE-1", 2, "19.99"), priced("MUG-7", 1, "20")],
                shipping_address: Some(web_address()),
                preference: method(ShippingMethod::Express),
                quote_id: String::new(),
            }
        );
        let scaled = intake
            .lines
            .iter()
            .map(|line| line.unit_price.unwrap().to_string());
        assert_eq!(scaled.collect::<Vec<_>>(), ["19.99", "20.00"]);
    }

    #[test]
    fn web_maps_a_guest_checkout_with_a_sparse_address() {
        let order = json!({
            "id": 450789469,
            "currency": "EUR",
            "customer": null,
            "line_items": [{ "sku": "TEE-1", "quantity": 1, "price": "19.99" }],
            "shipping_address": {
                "name": "Erika Mustermann",
                "address1": "Hauptstr. 5",
                "address2": "",
                "city": "Berlin",
                "province_code": null,
                "zip": "10115",
                "country_code": "de",
                "latitude": 52.53,
                "longitude": null
            }
        });
        assert_eq!(
            adapt(Channel::Web, &bytes(&order)).unwrap(),
            Intake {
                channel: Channel::Web,
                external_ref: "450789469".into(),
                user_id: "web-guest-450789469".into(),
                idempotency_key: "web-450789469".into(),
                currency_code: "EUR".into(),
                lines: vec![priced("TEE-1", 1, "19.99")],
                shipping_address: Some(Address {
                    recipient: "Erika Mustermann".into(),
                    lines: vec!["Hauptstr. 5".into()],
                    city: "Berlin".into(),
                    region: String::new(),
                    postal_code: "10115".into(),
                    country_code: "DE".into(),
                    location: None,
                    phone: String::new(),
                }),
                preference: None,
                quote_id: String::new(),
            }
        );
    }

    #[test]
    fn web_shipping_codes_pick_the_method() {
        let table = [
            (
                json!([{ "code": "standard" }]),
                method(ShippingMethod::Standard),
            ),
            (
                json!([{ "code": "SAME_DAY" }]),
                method(ShippingMethod::SameDay),
            ),
            (
                json!([{ "code": "FedEx Ground" }]),
                method(ShippingMethod::Unspecified),
            ),
            (
                json!([{ "title": "Free" }]),
                method(ShippingMethod::Unspecified),
            ),
            (json!([]), None),
            (Value::Null, None),
        ];
        for (lines, expected) in table {
            let payload = with(&web_order(), "/shipping_lines", lines.clone());
            let intake = adapt(Channel::Web, &payload).unwrap();
            assert_eq!(intake.preference, expected, "{lines}");
        }
    }

    #[test]
    fn web_rejections_name_the_field() {
        let order = web_order();
        let too_many = Value::Array(vec![order["line_items"][0].clone(); 101]);
        assert_reasons(
            Channel::Web,
            vec![
                (
                    b"{\"id\": 1,".to_vec(),
                    "payload: not JSON (EOF while parsing a value at line 1 column 9)",
                ),
                (
                    b"{\"id\": \"\xff\"}".to_vec(),
                    "payload: not UTF-8 (invalid utf-8 sequence of 1 bytes from index 8)",
                ),
                (
                    b"[1, 2]".to_vec(),
                    "payload: expected an object, got an array",
                ),
                (without(&order, "/id"), "id: required"),
                (
                    with(&order, "/id", json!("820982911946154508")),
                    "id: expected a whole number, got a string",
                ),
                (
                    with(&order, "/id", json!(0)),
                    "id: must be at least 1, got 0",
                ),
                (without(&order, "/currency"), "currency: required"),
                (
                    with(&order, "/currency", json!("usd")),
                    "currency: \"usd\" is not a currency code (3 upper-case letters, e.g. USD)",
                ),
                (
                    with(&order, "/currency", json!("XYZ")),
                    "currency: XYZ is not a currency this system accepts",
                ),
                (
                    with(&order, "/customer", json!("jon@example.com")),
                    "customer: expected an object, got a string",
                ),
                (
                    with(&order, "/customer/id", json!(-5)),
                    "customer.id: must be at least 1, got -5",
                ),
                (
                    with(&order, "/customer/id", json!("jon snow")),
                    "customer.id: expected a whole number, got a string",
                ),
                (without(&order, "/line_items"), "line_items: required"),
                (
                    with(&order, "/line_items", json!({})),
                    "line_items: expected an array, got an object",
                ),
                (
                    with(&order, "/line_items", json!([])),
                    "line_items: at least one line required",
                ),
                (
                    with(&order, "/line_items", too_many),
                    "line_items: 101 lines, at most 100",
                ),
                (
                    with(&order, "/line_items/1", json!("MUG-7")),
                    "line_items[1]: expected an object, got a string",
                ),
                (
                    with(&order, "/line_items/1/sku", Value::Null),
                    "line_items[1].sku: required",
                ),
                (
                    with(&order, "/line_items/1/sku", json!(4711)),
                    "line_items[1].sku: expected a string, got a number",
                ),
                (
                    with(&order, "/line_items/0/quantity", json!(0)),
                    "line_items[0].quantity: must be at least 1, got 0",
                ),
                (
                    with(&order, "/line_items/0/quantity", json!(-2)),
                    "line_items[0].quantity: must be at least 1, got -2",
                ),
                (
                    with(&order, "/line_items/0/quantity", json!(1.5)),
                    "line_items[0].quantity: expected a whole number, got 1.5",
                ),
                (
                    with(&order, "/line_items/0/quantity", json!(2.0)),
                    "line_items[0].quantity: expected a whole number, got 2.0",
                ),
                (
                    with(&order, "/line_items/0/quantity", json!(4_294_967_296_u64)),
                    "line_items[0].quantity: 4294967296 is over the maximum of 4294967295",
                ),
                (
                    with(&order, "/line_items/1/price", json!("abc")),
                    "line_items[1].price: \"abc\" is not a decimal amount",
                ),
                (
                    with(&order, "/line_items/1/price", json!(19.99)),
                    "line_items[1].price: expected a decimal string such as \"19.99\", got a number",
                ),
                (
                    with(&order, "/line_items/1/price", json!("19.999")),
                    "line_items[1].price: 19.999 has more than the 2 decimals of USD",
                ),
                (
                    with(&order, "/line_items/1/price", json!("-1.00")),
                    "line_items[1].price: -1.00 is negative",
                ),
                (
                    with(
                        &order,
                        "/line_items/0/price_set/shop_money/currency_code",
                        json!("CAD"),
                    ),
                    "line_items[0].price_set.shop_money.currency_code: CAD differs from the order currency USD",
                ),
                (
                    with(&order, "/shipping_address", json!([])),
                    "shipping_address: expected an object, got an array",
                ),
                (
                    with(&order, "/shipping_address/latitude", json!("37.79")),
                    "shipping_address.latitude: expected a number, got a string",
                ),
                (
                    with(&order, "/shipping_lines/0/code", json!(true)),
                    "shipping_lines[0].code: expected a string, got a boolean",
                ),
            ],
        );
    }

    // ---- marketplace ----

    fn marketplace_order() -> Value {
        json!({
            "AmazonOrderId": "902-3159896-1390916",
            "PurchaseDate": "2026-11-25T10:00:00Z",
            "LastUpdateDate": "2026-11-25T10:05:00Z",
            "OrderStatus": "Unshipped",
            "FulfillmentChannel": "MFN",
            "SalesChannel": "Amazon.de",
            "MarketplaceId": "A1PA6795UKMFR9",
            "OrderTotal": { "CurrencyCode": "EUR", "Amount": "59.97" },
            "NumberOfItemsUnshipped": 3,
            "PaymentMethod": "Other",
            "BuyerInfo": { "BuyerEmail": "abc@marketplace.amazon.de" },
            "ShipmentServiceLevelCategory": "Expedited",
            "ShippingAddress": {
                "Name": "Erika Mustermann",
                "AddressLine1": "Hauptstr. 5",
                "AddressLine2": "Hinterhaus",
                "AddressLine3": "",
                "City": "München",
                "StateOrRegion": "Bayern",
                "PostalCode": "80331",
                "CountryCode": "DE",
                "Phone": "+49 89 1234567",
                "AddressType": "Residential"
            },
            "OrderItems": [
                {
                    "ASIN": "B00EXAMPLE",
                    "OrderItemId": "68828574383266",
                    "SellerSKU": "SHOE-1",
                    "Title": "Running shoe",
                    "QuantityOrdered": 2,
                    "QuantityShipped": 0,
                    "ItemPrice": { "CurrencyCode": "EUR", "Amount": "39.98" },
                    "ItemTax": { "CurrencyCode": "EUR", "Amount": "6.38" }
                },
                {
                    "SellerSKU": "SOCK-3",
                    "QuantityOrdered": 1,
                    "ItemPrice": { "CurrencyCode": "EUR", "Amount": "19.99" }
                }
            ]
        })
    }

    #[test]
    fn marketplace_maps_an_amazon_order() {
        assert_eq!(
            adapt(Channel::Marketplace, &bytes(&marketplace_order())).unwrap(),
            Intake {
                channel: Channel::Marketplace,
                external_ref: "902-3159896-1390916".into(),
                user_id: "mkt-902-3159896-1390916".into(),
                idempotency_key: "marketplace-902-3159896-1390916".into(),
                currency_code: "EUR".into(),
                lines: vec![priced("SHOE-1", 2, "19.99"), priced("SOCK-3", 1, "19.99")],
                shipping_address: Some(Address {
                    recipient: "Erika Mustermann".into(),
                    lines: vec!["Hauptstr. 5".into(), "Hinterhaus".into()],
                    city: "München".into(),
                    region: String::new(),
                    postal_code: "80331".into(),
                    country_code: "DE".into(),
                    location: None,
                    phone: "+49 89 1234567".into(),
                }),
                preference: method(ShippingMethod::Express),
                quote_id: String::new(),
            }
        );
    }

    #[test]
    fn marketplace_regions_and_service_levels() {
        let order = marketplace_order();
        for (state, region) in [("CA", "US-CA"), ("US-NY", "US-NY"), ("California", "")] {
            let mut us = order.clone();
            us["ShippingAddress"]["CountryCode"] = json!("US");
            us["ShippingAddress"]["StateOrRegion"] = json!(state);
            let intake = adapt(Channel::Marketplace, &bytes(&us)).unwrap();
            assert_eq!(intake.shipping_address.unwrap().region, region, "{state}");
        }
        let levels = [
            ("Expedited", ShippingMethod::Express),
            ("NextDay", ShippingMethod::Express),
            ("SecondDay", ShippingMethod::Express),
            ("SameDay", ShippingMethod::SameDay),
            ("Standard", ShippingMethod::Standard),
            ("Scheduled", ShippingMethod::Standard),
            ("FreeEconomy", ShippingMethod::Unspecified),
        ];
        for (level, expected) in levels {
            let payload = with(&order, "/ShipmentServiceLevelCategory", json!(level));
            let intake = adapt(Channel::Marketplace, &payload).unwrap();
            assert_eq!(intake.preference, method(expected), "{level}");
        }
        let payload = without(&order, "/ShipmentServiceLevelCategory");
        assert_eq!(
            adapt(Channel::Marketplace, &payload).unwrap().preference,
            None
        );
        let payload = without(&order, "/ShippingAddress");
        assert_eq!(
            adapt(Channel::Marketplace, &payload)
                .unwrap()
                .shipping_address,
            None
        );
    }

    #[test]
    fn marketplace_unit_prices_divide_exactly() {
        let jpy = json!({
            "AmazonOrderId": "250-1234567-7654321",
            "OrderTotal": { "CurrencyCode": "JPY", "Amount": "3600" },
            "OrderItems": [
                { "SellerSKU": "CUP-2", "QuantityOrdered": 3, "ItemPrice": { "CurrencyCode": "JPY", "Amount": "3600" } }
            ]
        });
        let intake = adapt(Channel::Marketplace, &bytes(&jpy)).unwrap();
        assert_eq!(intake.lines, vec![priced("CUP-2", 3, "1200")]);
        assert_eq!(intake.lines[0].unit_price.unwrap().to_string(), "1200");
        let odd = with(&jpy, "/OrderItems/0/ItemPrice/Amount", json!("3601"));
        assert_eq!(
            reason(Channel::Marketplace, &odd),
            "OrderItems[0].ItemPrice.Amount: 3601 does not divide into 3 equal unit prices"
        );
    }

    #[test]
    fn marketplace_rejections_name_the_field() {
        let order = marketplace_order();
        assert_reasons(
            Channel::Marketplace,
            vec![
                (
                    b"AmazonOrderId=902".to_vec(),
                    "payload: not JSON (expected value at line 1 column 1)",
                ),
                (without(&order, "/AmazonOrderId"), "AmazonOrderId: required"),
                (
                    with(&order, "/AmazonOrderId", json!(9023159896_u64)),
                    "AmazonOrderId: expected a string, got a number",
                ),
                (
                    with(&order, "/AmazonOrderId", json!("902 3159896/1390916")),
                    "AmazonOrderId: \"902 3159896/1390916\" does not make a usable user id (at most 60 characters of letters, digits, '-', '_' and ':')",
                ),
                (without(&order, "/OrderTotal"), "OrderTotal: required"),
                (
                    with(&order, "/OrderTotal/CurrencyCode", json!("Euro")),
                    "OrderTotal.CurrencyCode: \"Euro\" is not a currency code (3 upper-case letters, e.g. USD)",
                ),
                (
                    with(&order, "/OrderTotal/Amount", json!("59,97")),
                    "OrderTotal.Amount: \"59,97\" is not a decimal amount",
                ),
                (without(&order, "/OrderItems"), "OrderItems: required"),
                (
                    with(&order, "/OrderItems", json!([])),
                    "OrderItems: at least one line required",
                ),
                (
                    without(&order, "/OrderItems/1/SellerSKU"),
                    "OrderItems[1].SellerSKU: required",
                ),
                (
                    with(&order, "/OrderItems/1/QuantityOrdered", json!(0)),
                    "OrderItems[1].QuantityOrdered: must be at least 1, got 0",
                ),
                (
                    with(&order, "/OrderItems/1/QuantityOrdered", json!("1")),
                    "OrderItems[1].QuantityOrdered: expected a whole number, got a string",
                ),
                (
                    without(&order, "/OrderItems/1/ItemPrice"),
                    "OrderItems[1].ItemPrice: required",
                ),
                (
                    with(&order, "/OrderItems/1/ItemPrice/CurrencyCode", json!("GBP")),
                    "OrderItems[1].ItemPrice.CurrencyCode: GBP differs from the order currency EUR",
                ),
                (
                    with(&order, "/OrderItems/1/ItemPrice/Amount", json!("ten")),
                    "OrderItems[1].ItemPrice.Amount: \"ten\" is not a decimal amount",
                ),
                (
                    with(&order, "/OrderItems/1/ItemPrice/Amount", json!("39.985")),
                    "OrderItems[1].ItemPrice.Amount: 39.985 has more than the 2 decimals of EUR",
                ),
                (
                    with(&order, "/OrderItems/1/ItemPrice/Amount", json!(19.99)),
                    "OrderItems[1].ItemPrice.Amount: expected a decimal string such as \"19.99\", got a number",
                ),
                (
                    with(&order, "/OrderItems/0/ItemPrice/Amount", json!("10.01")),
                    "OrderItems[0].ItemPrice.Amount: 10.01 does not divide into 2 equal unit prices",
                ),
                (
                    with(&order, "/OrderItems/0/QuantityOrdered", json!(3)),
                    "OrderItems[0].ItemPrice.Amount: 39.98 does not divide into 3 equal unit prices",
                ),
                (
                    with(
                        &order,
                        "/ShippingAddress/AddressLine1",
                        json!(["Hauptstr. 5"]),
                    ),
                    "ShippingAddress.AddressLine1: expected a string, got an array",
                ),
            ],
        );
    }

    // ---- point of sale ----

    fn pos_receipt() -> Value {
        json!({
            "receipt_number": "R-0042-000123",
            "store_id": "store-berlin-1",
            "till_id": "till-3",
            "cashier": "c-17",
            "sold_at": "2026-11-25T10:00:00+01:00",
            "currency": "EUR",
            "customer": { "loyalty_id": "L-778899", "tier": "gold" },
            "items": [
                { "sku": "A", "qty": 1, "unit_price_minor": 1999, "currency": "EUR" },
                { "sku": "COAT-9", "qty": 2, "unit_price_minor": 12900 }
            ],
            "ship_to": {
                "name": "Max Muster",
                "street": "Unter den Linden 1",
                "city": "Berlin",
                "region": "BE",
                "postal_code": "10117",
                "country": "DE",
                "lat": 52.517,
                "lng": 13.389,
                "phone": "+49 30 1234567"
            },
            "service": "same_day"
        })
    }

    #[test]
    fn pos_maps_an_endless_aisle_receipt() {
        let intake = adapt(Channel::Pos, &bytes(&pos_receipt())).unwrap();
        assert_eq!(
            intake,
            Intake {
                channel: Channel::Pos,
                external_ref: "R-0042-000123".into(),
                user_id: "pos-L-778899".into(),
                idempotency_key: "pos-R-0042-000123".into(),
                currency_code: "EUR".into(),
                lines: vec![priced("A", 1, "19.99"), priced("COAT-9", 2, "129.00")],
                shipping_address: Some(Address {
                    recipient: "Max Muster".into(),
                    lines: vec!["Unter den Linden 1".into()],
                    city: "Berlin".into(),
                    region: "DE-BE".into(),
                    postal_code: "10117".into(),
                    country_code: "DE".into(),
                    location: Some(GeoPoint {
                        lat: 52.517,
                        lng: 13.389,
                    }),
                    phone: "+49 30 1234567".into(),
                }),
                preference: method(ShippingMethod::SameDay),
                quote_id: String::new(),
            }
        );
        assert_eq!(intake.lines[1].unit_price.unwrap().to_string(), "129.00");
    }

    #[test]
    fn pos_walk_in_customers_belong_to_the_store() {
        let mut receipt = pos_receipt();
        receipt["customer"] = Value::Null;
        receipt["service"] = Value::Null;
        receipt["currency"] = json!("BHD");
        receipt["items"] = json!([{ "sku": "A", "qty": 1, "unit_price_minor": 12345 }]);
        let intake = adapt(Channel::Pos, &bytes(&receipt)).unwrap();
        assert_eq!(intake.user_id, "pos-store-berlin-1");
        assert_eq!(intake.preference, None);
        assert_eq!(intake.lines, vec![priced("A", 1, "12.345")]);
        let blank_loyalty = with(&pos_receipt(), "/customer/loyalty_id", json!(""));
        let intake = adapt(Channel::Pos, &blank_loyalty).unwrap();
        assert_eq!(intake.user_id, "pos-store-berlin-1");
    }

    #[test]
    fn pos_rejections_name_the_field() {
        let receipt = pos_receipt();
        assert_reasons(
            Channel::Pos,
            vec![
                (
                    b"".to_vec(),
                    "payload: not JSON (EOF while parsing a value at line 1 column 0)",
                ),
                (b"null".to_vec(), "payload: expected an object, got null"),
                (
                    without(&receipt, "/receipt_number"),
                    "receipt_number: required",
                ),
                (
                    with(&receipt, "/receipt_number", json!("R".repeat(65))),
                    "receipt_number: at most 64 bytes",
                ),
                (without(&receipt, "/store_id"), "store_id: required"),
                (
                    with(&receipt, "/currency", json!("EURO")),
                    "currency: \"EURO\" is not a currency code (3 upper-case letters, e.g. USD)",
                ),
                (
                    with(&receipt, "/customer/loyalty_id", json!("L 778/899")),
                    "customer.loyalty_id: \"L 778/899\" does not make a usable user id (at most 60 characters of letters, digits, '-', '_' and ':')",
                ),
                (
                    with(&receipt, "/customer", json!({ "loyalty_id": 778899 })),
                    "customer.loyalty_id: expected a string, got a number",
                ),
                (
                    with(
                        &without_value(&receipt, "/customer"),
                        "/store_id",
                        json!("Berlin Mitte"),
                    ),
                    "store_id: \"Berlin Mitte\" does not make a usable user id (at most 60 characters of letters, digits, '-', '_' and ':')",
                ),
                (
                    with(&receipt, "/items", json!([])),
                    "items: at least one line required",
                ),
                (without(&receipt, "/items/0/sku"), "items[0].sku: required"),
                (
                    with(&receipt, "/items/1/qty", json!(0)),
                    "items[1].qty: must be at least 1, got 0",
                ),
                (
                    with(&receipt, "/items/1/qty", json!("2")),
                    "items[1].qty: expected a whole number, got a string",
                ),
                (
                    with(&receipt, "/items/0/currency", json!("USD")),
                    "items[0].currency: USD differs from the order currency EUR",
                ),
                (
                    without(&receipt, "/items/1/unit_price_minor"),
                    "items[1].unit_price_minor: required",
                ),
                (
                    with(&receipt, "/items/1/unit_price_minor", json!(129.5)),
                    "items[1].unit_price_minor: expected a whole number, got 129.5",
                ),
                (
                    with(&receipt, "/items/1/unit_price_minor", json!("12900")),
                    "items[1].unit_price_minor: expected a whole number, got a string",
                ),
                (
                    with(&receipt, "/items/1/unit_price_minor", json!(-100)),
                    "items[1].unit_price_minor: -100 is negative",
                ),
                (
                    with(&receipt, "/items/1/unit_price_minor", json!(u64::MAX)),
                    "items[1].unit_price_minor: 18446744073709551615 is out of range",
                ),
                (
                    without(&receipt, "/ship_to"),
                    "ship_to: required (the POS hands in ship-to-home orders only)",
                ),
                (
                    with(&receipt, "/ship_to/lat", json!("52.517")),
                    "ship_to.lat: expected a number, got a string",
                ),
                (
                    with(&receipt, "/service", json!("overnight")),
                    "service: \"overnight\" is not one of standard, express, same_day",
                ),
            ],
        );
    }

    fn without_value(base: &Value, pointer: &str) -> Value {
        serde_json::from_slice(&without(base, pointer)).unwrap()
    }
}
