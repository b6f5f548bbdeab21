//! Planning and quoting: routing over live availability from inventory-svc, then prices (with
//! surge) and landed cost per shipment, in the order's currency.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use chrono::Utc;
use oms_platform::{
    events::to_timestamp,
    money::{Currency, Money},
};
use oms_proto::{
    common::v1::{ItemQuantity, TimeWindow},
    fulfillment::v1 as pb,
    inventory::v1::{
        GetAvailabilityRequest, Sku, inventory_service_client::InventoryServiceClient,
    },
};
use rust_decimal::Decimal;
use tokio::sync::RwLock;
use tonic::transport::Channel;

use crate::{
    domain::{
        Center, FulfillmentError, Method,
        pricing::{self, PricingPolicy},
        routing::{self, Allocation, RouteRequest, Stock, Weights},
        tax::{self, FxRates, GoodsLine, ShipmentValue, TaxTable},
        validate::PlanInput,
    },
    learned_transit::LearnedTransit,
    store::Store,
};

/// Everything planning needs.
pub struct Planner {
    /// Centers and quotes.
    pub store: Store,
    /// Live availability.
    pub inventory: InventoryServiceClient<Channel>,
    /// Routing weights.
    pub weights: Weights,
    /// Pricing rules.
    pub pricing: PricingPolicy,
    /// The tax table (reloaded when operators edit it).
    pub tax: Arc<RwLock<TaxTable>>,
    /// Reference exchange rates.
    pub fx: Arc<FxRates>,
    /// How long a quote can be honoured.
    pub quote_ttl: Duration,
    /// Promised windows from the learned delivery-time model, when one serves.
    pub learned: Arc<LearnedTransit>,
}

/// A priced plan and the highest surge multiplier in it.
pub struct PricedPlan {
    /// The plan as the API shows it.
    pub plan: pb::FulfillmentPlan,
    /// The highest load factor applied.
    pub surge: Decimal,
}

impl Planner {
    /// Plans `input` (with `method` forced when given) and prices it.
    pub async fn plan(
        &self,
        input: &PlanInput,
        method: Option<Method>,
    ) -> Result<PricedPlan, FulfillmentError> {
        let centers = self.store.routable_centers().await?;
        let (stock, skus) = self.availability(input).await?;
        self.priced(input, method, &centers, &stock, &skus).await
    }

    /// Prices every method that can deliver, stores the quote and returns it.
    pub async fn quote(&self, input: &PlanInput) -> Result<pb::DeliveryQuote, FulfillmentError> {
        let centers = self.store.routable_centers().await?;
        let (stock, skus) = self.availability(input).await?;
        let methods: Vec<Method> = match input.method {
            Some(method) => vec![method],
            None => Method::ALL.to_vec(),
        };
        let mut options = Vec::new();
        let mut reasons = Vec::new();
        for method in methods {
            match self
                .priced(input, Some(method), &centers, &stock, &skus)
                .await
            {
                Ok(priced) => options.push(pb::MethodQuote {
                    method: method.to_proto().into(),
                    plan: Some(priced.plan),
                    surge_multiplier: priced.surge.normalize().to_string(),
                }),
                Err(FulfillmentError::NoPlan(no_plan)) => {
                    reasons.extend(
                        no_plan
                            .reasons
                            .into_iter()
                            .map(|r| format!("{method}: {r}")),
                    );
                }
                Err(error) => return Err(error),
            }
        }
        if options.is_empty() {
            return Err(FulfillmentError::NoPlan(routing::NoPlan { reasons }));
        }
        let expires_at = Utc::now()
            + chrono::Duration::from_std(self.quote_ttl)
                .unwrap_or_else(|_| chrono::Duration::minutes(15));
        let quote = pb::DeliveryQuote {
            quote_id: format!("quote-{}", uuid::Uuid::now_v7().simple()),
            options,
            expires_at: Some(to_timestamp(expires_at)),
            currency_code: input.currency.code().to_owned(),
        };
        self.store
            .save_quote(&input.user_id, &quote, expires_at)
            .await?;
        Ok(quote)
    }

    /// Available units per (sku, center) and the SKUs' facts, from inventory-svc.
    async fn availability(
        &self,
        input: &PlanInput,
    ) -> Result<(Stock, BTreeMap<String, Sku>), FulfillmentError> {
        let request = GetAvailabilityRequest {
            skus: input.lines.iter().map(|l| l.sku.clone()).collect(),
            near: Some(input.destination.point),
            location_ids: Vec::new(),
            user_id: input.user_id.clone(),
        };
        let answer = self
            .inventory
            .clone()
            .get_availability(request)
            .await
            .map_err(FulfillmentError::Inventory)?
            .into_inner();
        let mut stock = Stock::new();
        let mut skus = BTreeMap::new();
        for item in answer.items {
            let Some(sku) = item.sku else { continue };
            for location in item.locations {
                stock.insert((sku.sku.clone(), location.location_id), location.available);
            }
            skus.insert(sku.sku.clone(), sku);
        }
        Ok((stock, skus))
    }

    async fn priced(
        &self,
        input: &PlanInput,
        method: Option<Method>,
        centers: &[Center],
        stock: &Stock,
        skus: &BTreeMap<String, Sku>,
    ) -> Result<PricedPlan, FulfillmentError> {
        let request = RouteRequest {
            lines: &input.lines,
            destination: input.destination.point,
            method: method.or(input.method),
            window: input.window,
            exclude: &input.exclude,
            now: Utc::now(),
        };
        let plan = routing::route(&request, centers, stock, &self.weights)?;
        let currency = input.currency;
        let table = self.tax.read().await;
        let mut shipments = Vec::with_capacity(plan.shipments.len());
        let mut surge = Decimal::ONE;
        let (mut shipping_total, mut tax_total, mut duty_total) = (
            Money::zero(currency),
            Money::zero(currency),
            Money::zero(currency),
        );
        for allocation in &plan.shipments {
            let center = centers
                .iter()
                .find(|c| c.center_id == allocation.center_id)
                .ok_or_else(|| FulfillmentError::UnknownCenter(allocation.center_id.clone()))?;
            let weight: u64 = allocation
                .items
                .iter()
                .map(|(sku, quantity)| {
                    u64::from(skus.get(sku).map_or(0, |s| s.weight_grams))
                        * u64::try_from(*quantity).unwrap_or(0)
                })
                .sum();
            let multiplier = pricing::surge(
                allocation.offer.method,
                allocation.load_ratio,
                &self.pricing,
            );
            surge = surge.max(multiplier);
            let base = self.fx.convert(
                allocation.offer.base_price.amount(),
                allocation.offer.base_price.currency().code(),
                currency.code(),
            )?;
            let price = Money::new(
                currency,
                pricing::price(
                    base,
                    allocation.offer.method,
                    allocation.distance_km,
                    weight,
                    allocation.load_ratio,
                    &self.pricing,
                ),
            );
            let landed = landed_cost(&table, &self.fx, center, input, allocation, skus, &price)?;
            let promise = self
                .learned
                .promise(
                    center,
                    allocation.load_ratio,
                    &input.destination,
                    &allocation.offer,
                    allocation.promise,
                    input.window,
                )
                .await;
            shipping_total = shipping_total.plus(&price)?;
            tax_total = tax_total.plus(&Money::new(currency, landed.tax))?;
            duty_total = duty_total.plus(&Money::new(currency, landed.duty))?;
            shipments.push(pb::PlannedShipment {
                center_id: allocation.center_id.clone(),
                method: allocation.offer.method.to_proto().into(),
                carrier: allocation.offer.carrier.clone(),
                items: allocation
                    .items
                    .iter()
                    .map(|(sku, quantity)| ItemQuantity {
                        sku: sku.clone(),
                        quantity: u32::try_from(*quantity).unwrap_or(u32::MAX),
                    })
                    .collect(),
                promised_window: Some(TimeWindow {
                    start: Some(to_timestamp(promise.earliest)),
                    end: Some(to_timestamp(promise.latest)),
                }),
                shipping_price: Some(price.to_proto()),
                landed_cost: Some(landed_proto(&landed, currency)),
                distance_km: (allocation.distance_km * 10.0).round() / 10.0,
                reason: allocation.reason.clone(),
            });
        }
        Ok(PricedPlan {
            plan: pb::FulfillmentPlan {
                shipments,
                shipping_total: Some(shipping_total.to_proto()),
                tax_total: Some(tax_total.to_proto()),
                duty_total: Some(duty_total.to_proto()),
                reason: plan.reason,
            },
            surge,
        })
    }
}

fn landed_cost(
    table: &TaxTable,
    fx: &FxRates,
    center: &Center,
    input: &PlanInput,
    allocation: &Allocation,
    skus: &BTreeMap<String, Sku>,
    shipping: &Money,
) -> Result<tax::LandedCost, FulfillmentError> {
    let lines = allocation
        .items
        .iter()
        .map(|(sku, quantity)| {
            let unit = input.prices.get(sku).map_or(Decimal::ZERO, Money::amount);
            GoodsLine {
                hs_code: skus.get(sku).map(|s| s.hs_code.clone()).unwrap_or_default(),
                value: unit * Decimal::from(*quantity),
            }
        })
        .collect();
    let value = ShipmentValue {
        origin_country: center.country_code.clone(),
        destination_country: input.destination.country.clone(),
        destination_region: input.destination.region.clone(),
        currency: input.currency,
        lines,
        shipping: shipping.amount(),
    };
    Ok(tax::landed_cost(table, fx, &value)?)
}

/// A landed cost as the API shows it.
pub fn landed_proto(landed: &tax::LandedCost, currency: Currency) -> pb::LandedCost {
    let money = |amount: Decimal| Some(Money::new(currency, amount).to_proto());
    pb::LandedCost {
        goods: money(landed.goods),
        shipping: money(landed.shipping),
        duty: money(landed.duty),
        tax: money(landed.tax),
        total: money(landed.total),
        cross_border: landed.cross_border,
        notes: landed.notes.clone(),
    }
}
