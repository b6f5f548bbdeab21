//! Where stock is and how soon it can reach a buyer, from what fulfillment's center events and
//! inventory's level events said: a center reaches a point when one of its methods covers the
//! distance; the fastest method's transit time is how soon.

use std::collections::{BTreeMap, HashMap};

use geo::{Distance, Haversine, Point};
use oms_proto::fulfillment::v1::FulfillmentCenter;

/// The transit hours of the fastest method of `center` that reaches `point`, `None` when
/// none does (or the center is inactive).
pub fn transit_hours(center: &FulfillmentCenter, point: (f64, f64)) -> Option<f64> {
    if !center.active {
        return None;
    }
    let from = center.point?;
    let km =
        Haversine.distance(Point::new(from.lng, from.lat), Point::new(point.1, point.0)) / 1000.0;
    center
        .methods
        .iter()
        .filter(|m| m.max_km <= 0.0 || km <= m.max_km)
        .map(|m| f64::from(m.base_hours) + m.per_100km_hours * km / 100.0)
        .min_by(f64::total_cmp)
}

/// How soon a SKU with `levels` (units available per location) reaches `point`: the fastest
/// transit from a center holding some, `None` when no such center reaches it.
pub fn soonest(
    levels: &BTreeMap<String, i64>,
    centers: &HashMap<String, FulfillmentCenter>,
    point: (f64, f64),
) -> Option<f64> {
    levels
        .iter()
        .filter(|(_, available)| **available > 0)
        .filter_map(|(location, _)| transit_hours(centers.get(location)?, point))
        .min_by(f64::total_cmp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oms_proto::{common::v1::GeoPoint, fulfillment::v1::MethodOffer};

    fn center(id: &str, lat: f64, lng: f64, max_km: f64) -> FulfillmentCenter {
        FulfillmentCenter {
            center_id: id.into(),
            point: Some(GeoPoint { lat, lng }),
            active: true,
            methods: vec![
                MethodOffer {
                    base_hours: 24,
                    per_100km_hours: 2.0,
                    max_km: 0.0,
                    ..Default::default()
                },
                MethodOffer {
                    base_hours: 4,
                    per_100km_hours: 1.0,
                    max_km,
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn the_nearest_center_with_stock_and_a_fast_method_wins() {
        let centers = HashMap::from([
            ("berlin".to_owned(), center("berlin", 52.52, 13.40, 50.0)),
            ("munich".to_owned(), center("munich", 48.14, 11.58, 50.0)),
        ]);
        let in_berlin = (52.50, 13.35);
        let both = BTreeMap::from([("berlin".to_owned(), 3), ("munich".to_owned(), 9)]);
        let hours = soonest(&both, &centers, in_berlin).unwrap();
        assert!(hours < 5.0, "express from Berlin: {hours}");
        let munich_only = BTreeMap::from([("berlin".to_owned(), 0), ("munich".to_owned(), 9)]);
        let hours = soonest(&munich_only, &centers, in_berlin).unwrap();
        assert!(
            (30.0..40.0).contains(&hours),
            "standard from Munich: {hours}"
        );
        assert_eq!(soonest(&BTreeMap::new(), &centers, in_berlin), None);
    }

    #[test]
    fn a_center_out_of_every_methods_reach_does_not_deliver() {
        let mut local = center("berlin", 52.52, 13.40, 50.0);
        local.methods.remove(0);
        assert!(transit_hours(&local, (52.50, 13.35)).is_some());
        assert_eq!(transit_hours(&local, (48.14, 11.58)), None);
        local.active = false;
        assert_eq!(transit_hours(&local, (52.50, 13.35)), None);
    }
}
