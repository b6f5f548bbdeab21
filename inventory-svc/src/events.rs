//! What inventory publishes (through its outbox): reservation changes in the transaction that
//! makes them, level changes and low-stock crossings from the change sequencer.

use oms_platform::{
    bus::{Area, BusError},
    events::envelope,
};
use oms_proto::{
    events::v1::{
        Envelope, LowStockCrossed, ReservationChanged, StockLevelChanged, envelope::Payload,
    },
    inventory::v1::{MovementKind, Reservation, StockLevel},
};

/// `oms.inventory.<reservation_id>.reservation_changed`, on the user's stream for holds.
pub fn reservation_changed(reservation: Reservation, user_id: &str) -> Result<Envelope, BusError> {
    let id = reservation.reservation_id.clone();
    envelope(
        Area::Inventory,
        &id,
        "reservation_changed",
        user_id,
        Payload::ReservationChanged(ReservationChanged {
            reservation: Some(reservation),
        }),
    )
}

/// `oms.inventory.<sku>.level_changed` with the SKU-wide figures the app's cache keeps.
pub fn level_changed(
    level: StockLevel,
    sku_available: i64,
    sku_version: i64,
    cause: MovementKind,
) -> Result<Envelope, BusError> {
    let sku = level.sku.clone();
    envelope(
        Area::Inventory,
        &sku,
        "level_changed",
        "",
        Payload::StockLevelChanged(StockLevelChanged {
            level: Some(level),
            sku_available,
            sku_version,
            cause: cause.into(),
        }),
    )
}

/// `oms.inventory.<sku>.low_stock`: available crossed the threshold (`low`: downwards).
pub fn low_stock(
    sku: &str,
    available: i64,
    threshold: u32,
    low: bool,
) -> Result<Envelope, BusError> {
    envelope(
        Area::Inventory,
        sku,
        "low_stock",
        "",
        Payload::LowStockCrossed(LowStockCrossed {
            sku: sku.to_owned(),
            location_id: String::new(),
            available,
            threshold,
            low,
        }),
    )
}
