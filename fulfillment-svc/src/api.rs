//! gRPC handlers of `oms.fulfillment.v1`: decode, validate, run the operation, map errors.

use std::sync::Arc;

use chrono::Utc;
use oms_platform::{
    error::{ApiError, Violations},
    idempotency::{self, IdempotentCall},
    money::{Currency, Money},
};
use oms_proto::{
    common::v1::PageResponse,
    fulfillment::v1::{self as pb, fulfillment_service_server::FulfillmentService},
};
use rust_decimal::Decimal;
use tonic::{Request, Response, Status};

use crate::{
    carrier_updates, couriers, dispatch,
    domain::{
        FulfillmentError,
        tax::{self, DutyRate, GoodsLine, ShipmentValue, TaxRule, TaxTable},
        validate,
    },
    planning::{Planner, landed_proto},
};

/// The fulfillment API.
pub struct FulfillmentApi {
    planner: Arc<Planner>,
}

impl FulfillmentApi {
    /// The API over `planner` (and its store).
    pub fn new(planner: Arc<Planner>) -> Self {
        Self { planner }
    }
}

fn status(error: FulfillmentError) -> Status {
    ApiError::from(error).into()
}

#[tonic::async_trait]
impl FulfillmentService for FulfillmentApi {
    async fn upsert_center(
        &self,
        request: Request<pb::UpsertCenterRequest>,
    ) -> Result<Response<pb::UpsertCenterResponse>, Status> {
        let definition = request.into_inner().center;
        validate::center(definition.as_ref())?;
        let definition = definition.unwrap_or_default();
        let center = self
            .planner
            .store
            .upsert_center(&definition)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::UpsertCenterResponse {
            center: Some(center),
        }))
    }

    async fn get_center(
        &self,
        request: Request<pb::GetCenterRequest>,
    ) -> Result<Response<pb::GetCenterResponse>, Status> {
        let mut v = Violations::new();
        v.id("center_id", &request.get_ref().center_id);
        v.into_result()?;
        let center = self
            .planner
            .store
            .center(&request.get_ref().center_id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::GetCenterResponse {
            center: Some(center),
        }))
    }

    async fn list_centers(
        &self,
        request: Request<pb::ListCentersRequest>,
    ) -> Result<Response<pb::ListCentersResponse>, Status> {
        let page = request.into_inner().page.unwrap_or_default();
        if page.page_size > 500 {
            return Err(ApiError::invalid("page.page_size", "at most 500").into());
        }
        let size = if page.page_size == 0 {
            50
        } else {
            u64::from(page.page_size)
        };
        let centers = self
            .planner
            .store
            .list_centers(&page.page_token, size)
            .await
            .map_err(status)?;
        let next_page_token = match centers.last() {
            Some(last) if centers.len() as u64 == size => last.center_id.clone(),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListCentersResponse {
            centers,
            page: Some(PageResponse { next_page_token }),
        }))
    }

    async fn plan_fulfillment(
        &self,
        request: Request<pb::PlanFulfillmentRequest>,
    ) -> Result<Response<pb::PlanFulfillmentResponse>, Status> {
        let r = request.into_inner();
        let input = validate::plan_input(
            &r.lines,
            r.destination.as_ref(),
            r.preference.as_ref(),
            &r.currency_code,
            &r.exclude_center_ids,
            &r.user_id,
            Utc::now(),
        )?;
        let priced = self.planner.plan(&input, None).await.map_err(status)?;
        Ok(Response::new(pb::PlanFulfillmentResponse {
            plan: Some(priced.plan),
        }))
    }

    async fn quote_delivery(
        &self,
        request: Request<pb::QuoteDeliveryRequest>,
    ) -> Result<Response<pb::QuoteDeliveryResponse>, Status> {
        let r = request.into_inner();
        let input = validate::plan_input(
            &r.lines,
            r.destination.as_ref(),
            r.preference.as_ref(),
            &r.currency_code,
            &[],
            &r.user_id,
            Utc::now(),
        )?;
        let quote = self.planner.quote(&input).await.map_err(status)?;
        Ok(Response::new(pb::QuoteDeliveryResponse {
            quote: Some(quote),
        }))
    }

    async fn get_quote(
        &self,
        request: Request<pb::GetQuoteRequest>,
    ) -> Result<Response<pb::GetQuoteResponse>, Status> {
        let id = &request.get_ref().quote_id;
        if id.is_empty() || id.len() > 64 {
            return Err(ApiError::invalid("quote_id", "required, at most 64 characters").into());
        }
        let quote = self.planner.store.valid_quote(id).await.map_err(status)?;
        Ok(Response::new(pb::GetQuoteResponse { quote: Some(quote) }))
    }

    async fn calculate_landed_cost(
        &self,
        request: Request<pb::CalculateLandedCostRequest>,
    ) -> Result<Response<pb::CalculateLandedCostResponse>, Status> {
        let r = request.into_inner();
        let mut v = Violations::new();
        v.country("origin_country", &r.origin_country);
        let destination = r.destination.unwrap_or_default();
        v.country("destination.country_code", &destination.country_code);
        let shipping = r.shipping.as_ref().map(Money::parse);
        let currency = match &shipping {
            Some(Ok(money)) => Some(money.currency()),
            Some(Err(error)) => {
                v.add("shipping", error.to_string());
                None
            }
            None => {
                v.add("shipping", "required (use 0 for free shipping)");
                None
            }
        };
        if r.lines.is_empty() || r.lines.len() > validate::MAX_LINES {
            v.add(
                "lines",
                format!("between 1 and {} lines", validate::MAX_LINES),
            );
        }
        let mut lines = Vec::new();
        for (i, line) in r.lines.iter().enumerate() {
            match line.value.as_ref().map(Money::parse) {
                Some(Ok(value)) if Some(value.currency()) == currency => lines.push(GoodsLine {
                    hs_code: line.hs_code.clone(),
                    value: value.amount(),
                }),
                Some(Ok(_)) => v.add(
                    format!("lines[{i}].value"),
                    "must be in the shipping's currency",
                ),
                Some(Err(error)) => v.add(format!("lines[{i}].value"), error.to_string()),
                None => v.add(format!("lines[{i}].value"), "required"),
            }
        }
        v.into_result()?;
        let (Some(currency), Some(Ok(shipping))) = (currency, shipping) else {
            return Err(ApiError::invalid("shipping", "required").into());
        };
        let value = ShipmentValue {
            origin_country: r.origin_country,
            destination_country: destination.country_code,
            destination_region: destination.region,
            currency,
            lines,
            shipping: shipping.amount(),
        };
        let table = self.planner.tax.read().await;
        let landed =
            tax::landed_cost(&table, &self.planner.fx, &value).map_err(|e| status(e.into()))?;
        Ok(Response::new(pb::CalculateLandedCostResponse {
            landed_cost: Some(landed_proto(&landed, currency)),
        }))
    }

    async fn upsert_tax_rule(
        &self,
        request: Request<pb::UpsertTaxRuleRequest>,
    ) -> Result<Response<pb::UpsertTaxRuleResponse>, Status> {
        let rule = tax_rule_from_proto(request.into_inner().rule.as_ref())?;
        self.planner
            .store
            .save_tax_rule(&rule)
            .await
            .map_err(status)?;
        let rules = self.planner.store.tax_rules().await.map_err(status)?;
        *self.planner.tax.write().await = TaxTable::new(rules);
        Ok(Response::new(pb::UpsertTaxRuleResponse {
            rule: Some(tax_rule_to_proto(&rule)),
        }))
    }

    async fn list_tax_rules(
        &self,
        request: Request<pb::ListTaxRulesRequest>,
    ) -> Result<Response<pb::ListTaxRulesResponse>, Status> {
        let country = &request.get_ref().country_code;
        if !country.is_empty() {
            let mut v = Violations::new();
            v.country("country_code", country);
            v.into_result()?;
        }
        let table = self.planner.tax.read().await;
        let rules = table
            .rules()
            .iter()
            .filter(|r| country.is_empty() || &r.country_code == country)
            .map(tax_rule_to_proto)
            .collect();
        Ok(Response::new(pb::ListTaxRulesResponse { rules }))
    }

    async fn create_return_shipment(
        &self,
        request: Request<pb::CreateReturnShipmentRequest>,
    ) -> Result<Response<pb::CreateReturnShipmentResponse>, Status> {
        let r = request.into_inner();
        let mut v = Violations::new();
        v.id("order_id", &r.order_id);
        v.id("return_id", &r.return_id);
        v.id("user_id", &r.user_id);
        if r.items.is_empty() || r.items.len() > validate::MAX_LINES {
            v.add(
                "items",
                format!("between 1 and {} items", validate::MAX_LINES),
            );
        }
        for (i, item) in r.items.iter().enumerate() {
            v.id(format!("items[{i}].sku"), &item.sku);
            if item.quantity == 0 || item.quantity > validate::MAX_QUANTITY {
                v.add(
                    format!("items[{i}].quantity"),
                    format!("between 1 and {}", validate::MAX_QUANTITY),
                );
            }
        }
        let origin = validate::destination(&mut v, "origin", r.origin.as_ref());
        v.into_result()?;
        idempotency::check_key("idempotency_key", &r.idempotency_key)?;
        let call = IdempotentCall::new("return_shipment", &r.idempotency_key, &r);
        if let Some(done) = call.replay(&self.planner.store.db).await? {
            return Ok(Response::new(done));
        }
        let origin = origin.map(|o| o.point).unwrap_or_default();
        match dispatch::create_return(&self.planner.store, &r, origin, &call).await {
            Ok(shipment) => Ok(Response::new(pb::CreateReturnShipmentResponse {
                shipment: Some(shipment),
            })),
            Err(FulfillmentError::Db(error)) if idempotency::is_conflict(&error) => call
                .replay(&self.planner.store.db)
                .await?
                .map(Response::new)
                .ok_or_else(|| status(FulfillmentError::Db(error))),
            Err(error) => Err(status(error)),
        }
    }

    async fn report_carrier_update(
        &self,
        request: Request<pb::ReportCarrierUpdateRequest>,
    ) -> Result<Response<pb::ReportCarrierUpdateResponse>, Status> {
        let r = request.into_inner();
        if r.payload.len() > 64 * 1024 {
            return Err(ApiError::invalid("payload", "at most 64 KiB").into());
        }
        let (shipment, applied) =
            carrier_updates::report(&self.planner.store, &r.carrier, &r.payload)
                .await
                .map_err(status)?;
        Ok(Response::new(pb::ReportCarrierUpdateResponse {
            shipment: Some(shipment),
            applied,
        }))
    }

    async fn get_shipment(
        &self,
        request: Request<pb::GetShipmentRequest>,
    ) -> Result<Response<pb::GetShipmentResponse>, Status> {
        let id = &request.get_ref().shipment_id;
        let mut v = Violations::new();
        v.id("shipment_id", id);
        v.into_result()?;
        let (shipment, _) = self
            .planner
            .store
            .shipment(&self.planner.store.db, id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::GetShipmentResponse {
            shipment: Some(shipment),
        }))
    }

    async fn list_shipments(
        &self,
        request: Request<pb::ListShipmentsRequest>,
    ) -> Result<Response<pb::ListShipmentsResponse>, Status> {
        let mut v = Violations::new();
        v.id("order_id", &request.get_ref().order_id);
        v.into_result()?;
        let shipments = self
            .planner
            .store
            .order_shipments(&self.planner.store.db, &request.get_ref().order_id)
            .await
            .map_err(status)?
            .into_iter()
            .map(|(shipment, _)| shipment)
            .collect();
        Ok(Response::new(pb::ListShipmentsResponse { shipments }))
    }

    async fn assign_courier(
        &self,
        request: Request<pb::AssignCourierRequest>,
    ) -> Result<Response<pb::AssignCourierResponse>, Status> {
        let request = request.into_inner();
        let mut v = Violations::new();
        v.id("shipment_id", &request.shipment_id);
        v.id("courier_id", &request.courier_id);
        v.into_result()?;
        let shipment = couriers::assign(
            &self.planner.store,
            &request.shipment_id,
            &request.courier_id,
        )
        .await
        .map_err(status)?;
        Ok(Response::new(pb::AssignCourierResponse {
            shipment: Some(shipment),
        }))
    }
}

fn rate(v: &mut Violations, field: &str, text: &str, max: Decimal) -> Decimal {
    match text.trim().parse::<Decimal>() {
        Ok(rate) if rate >= Decimal::ZERO && rate <= max => rate,
        _ => {
            v.add(
                field,
                format!("a decimal fraction between 0 and {max} (\"0.20\" is 20%)"),
            );
            Decimal::ZERO
        }
    }
}

fn tax_rule_from_proto(rule: Option<&pb::TaxRule>) -> Result<TaxRule, ApiError> {
    let Some(rule) = rule else {
        return Err(ApiError::invalid("rule", "required"));
    };
    let mut v = Violations::new();
    v.country("rule.country_code", &rule.country_code);
    if !rule.region.is_empty() && !rule.region.starts_with(&format!("{}-", rule.country_code)) {
        v.add(
            "rule.region",
            "ISO 3166-2 of the rule's country, or empty for the whole country",
        );
    }
    let sales_tax_rate = rate(
        &mut v,
        "rule.sales_tax_rate",
        &rule.sales_tax_rate,
        Decimal::ONE,
    );
    let import_vat_rate = rate(
        &mut v,
        "rule.import_vat_rate",
        &rule.import_vat_rate,
        Decimal::ONE,
    );
    let default_duty_rate = rate(
        &mut v,
        "rule.default_duty_rate",
        &rule.default_duty_rate,
        Decimal::from(5),
    );
    let de_minimis = match rule.de_minimis.as_ref().map(Money::parse) {
        Some(Ok(money)) => Some(money),
        Some(Err(error)) => {
            v.add("rule.de_minimis", error.to_string());
            None
        }
        None => {
            v.add(
                "rule.de_minimis",
                "required (0 when every import is dutiable)",
            );
            None
        }
    };
    let low_value_duty_per_item = match rule.low_value_duty_per_item.trim() {
        "" => Decimal::ZERO,
        text => match text.parse::<Decimal>() {
            Ok(amount) if amount >= Decimal::ZERO => amount,
            _ => {
                v.add(
                    "rule.low_value_duty_per_item",
                    "a non-negative amount in the de minimis currency (\"3\")",
                );
                Decimal::ZERO
            }
        },
    };
    let mut duty_rates = Vec::new();
    for (i, duty) in rule.duty_rates.iter().enumerate() {
        if !(2..=10).contains(&duty.hs_prefix.len())
            || !duty.hs_prefix.chars().all(|c| c.is_ascii_digit())
        {
            v.add(format!("rule.duty_rates[{i}].hs_prefix"), "2 to 10 digits");
        }
        let rate = rate(
            &mut v,
            &format!("rule.duty_rates[{i}].rate"),
            &duty.rate,
            Decimal::from(5),
        );
        duty_rates.push(DutyRate {
            hs_prefix: duty.hs_prefix.clone(),
            rate,
        });
    }
    v.text("rule.source", &rule.source, 1000, true);
    v.into_result()?;
    let Some(de_minimis) = de_minimis else {
        return Err(ApiError::invalid("rule.de_minimis", "required"));
    };
    Ok(TaxRule {
        country_code: rule.country_code.clone(),
        region: rule.region.clone(),
        sales_tax_rate,
        import_vat_rate,
        de_minimis: de_minimis.amount(),
        de_minimis_currency: de_minimis.currency().code().to_owned(),
        default_duty_rate,
        duty_rates,
        tax_shipping: rule.tax_shipping,
        vat_below_de_minimis: rule.vat_below_de_minimis,
        low_value_duty_per_item,
        source: rule.source.clone(),
    })
}

fn tax_rule_to_proto(rule: &TaxRule) -> pb::TaxRule {
    let de_minimis = Currency::parse(&rule.de_minimis_currency)
        .map(|c| Money::new(c, rule.de_minimis).to_proto());
    pb::TaxRule {
        country_code: rule.country_code.clone(),
        region: rule.region.clone(),
        sales_tax_rate: rule.sales_tax_rate.normalize().to_string(),
        import_vat_rate: rule.import_vat_rate.normalize().to_string(),
        de_minimis,
        default_duty_rate: rule.default_duty_rate.normalize().to_string(),
        duty_rates: rule
            .duty_rates
            .iter()
            .map(|d| pb::DutyRate {
                hs_prefix: d.hs_prefix.clone(),
                rate: d.rate.normalize().to_string(),
            })
            .collect(),
        source: rule.source.clone(),
        tax_shipping: rule.tax_shipping,
        vat_below_de_minimis: rule.vat_below_de_minimis,
        low_value_duty_per_item: rule.low_value_duty_per_item.normalize().to_string(),
    }
}
