//! A small sample world that `oms bench` and every crate's tests share: German fulfillment
//! centers, a Berlin shipping address, prices in euros, and what the two carriers send when a
//! parcel moves.

use oms_proto::{
    common::v1::{Address, GeoPoint, Money, ShippingMethod},
    fulfillment::v1::{FulfillmentCenter, MethodOffer, Shipment},
};

/// An amount in euros.
pub fn eur(amount: &str) -> Option<Money> {
    Some(Money {
        currency_code: "EUR".into(),
        amount: amount.into(),
    })
}

/// A German center shipping 5,000 parcels a day, offering standard (parcelnet), express and
/// same-day (swiftship); `express_only` leaves only express, so its parcels go with swiftship.
pub fn german_center(id: &str, lat: f64, lng: f64, express_only: bool) -> FulfillmentCenter {
    let offer = |method: ShippingMethod,
                 carrier: &str,
                 base_hours: u32,
                 per_100km: f64,
                 max_km: f64,
                 price: &str| MethodOffer {
        method: method as i32,
        carrier: carrier.into(),
        base_hours,
        per_100km_hours: per_100km,
        max_km,
        base_price: eur(price),
    };
    let mut methods = vec![
        offer(ShippingMethod::Standard, "parcelnet", 24, 2.0, 0.0, "4.90"),
        offer(ShippingMethod::Express, "swiftship", 10, 1.0, 0.0, "12.90"),
        offer(ShippingMethod::SameDay, "swiftship", 2, 0.5, 60.0, "19.90"),
    ];
    if express_only {
        methods.retain(|m| m.method == ShippingMethod::Express as i32);
    }
    FulfillmentCenter {
        center_id: id.into(),
        name: format!("Center {id}"),
        point: Some(GeoPoint { lat, lng }),
        country_code: "DE".into(),
        region: String::new(),
        daily_capacity: 5000,
        current_load: 0,
        handling_hours: 2,
        cutoff_minute_utc: 23 * 60,
        methods,
        active: true,
    }
}

/// A shipping address in central Berlin.
pub fn berlin_address() -> Address {
    Address {
        recipient: "Ada".into(),
        lines: vec!["Unter den Linden 1".into()],
        city: "Berlin".into(),
        region: "DE-BE".into(),
        postal_code: "10117".into(),
        country_code: "DE".into(),
        location: Some(GeoPoint {
            lat: 52.517,
            lng: 13.389,
        }),
        phone: String::new(),
    }
}

/// What `shipment`'s carrier sends when the parcel is "picked_up", "in_transit" or
/// "delivered" now, in that carrier's own format (swiftship JSON events, parcelnet scans).
pub fn carrier_payload(shipment: &Shipment, status: &str) -> Vec<u8> {
    let now = chrono::Utc::now();
    let payload = match shipment.carrier.as_str() {
        "swiftship" => format!(
            r#"{{"event_id":"{}-{status}","tracking_number":"{}","status":"{}","occurred_at":"{}"}}"#,
            shipment.shipment_id,
            shipment.tracking_number,
            status.to_uppercase(),
            now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
        _ => {
            let code = match status {
                "picked_up" => "PU",
                "in_transit" => "IT",
                _ => "DL",
            };
            format!(
                r#"{{"awb":"{}","scans":[{{"id":"{}-{code}","code":"{code}","ts":{}}}]}}"#,
                shipment.tracking_number,
                shipment.shipment_id,
                now.timestamp()
            )
        }
    };
    payload.into_bytes()
}
