//! Great-circle distances between protobuf points (the `geo` crate's haversine).

use geo::{Distance, Haversine, Point};
use oms_proto::common::v1::GeoPoint;

/// Kilometres between two WGS84 points.
pub fn distance_km(a: &GeoPoint, b: &GeoPoint) -> f64 {
    Haversine.distance(Point::new(a.lng, a.lat), Point::new(b.lng, b.lat)) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn berlin_to_munich_is_about_504_km() {
        let berlin = GeoPoint {
            lat: 52.52,
            lng: 13.405,
        };
        let munich = GeoPoint {
            lat: 48.1351,
            lng: 11.582,
        };
        let km = distance_km(&berlin, &munich);
        assert!((500.0..510.0).contains(&km), "{km}");
        assert_eq!(distance_km(&berlin, &berlin), 0.0);
    }
}
