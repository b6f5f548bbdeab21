//! Dispatch: an order's confirmation event becomes shipments handed to their carriers; a
//! cancellation stops the shipments a carrier has not collected; a return becomes a return
//! label. Everything here runs inside the idempotent consumer's transaction or its own, and
//! publishes shipment events through the outbox.
//!
//! The carriers are simulated: "booking" derives a stable tracking number from the shipment id
//! (see `domain::carriers::tracking_number`). A real carrier integration books over its API
//! with the shipment id as idempotency key.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::Utc;
use oms_platform::{
    consumer::{EventHandler, HandlerError},
    events::to_timestamp,
    idempotency::IdempotentCall,
    outbox,
};
use oms_proto::{
    common::v1::{Address, GeoPoint},
    events::v1::{Envelope, envelope::Payload},
    fulfillment::v1 as pb,
    order::v1::{Order, OrderShipment, OrderStatus},
};
use sea_orm::{ConnectionTrait, DatabaseTransaction};

use crate::{
    domain::{FulfillmentError, carriers, shipment::Status},
    events,
    store::{Store, status_of},
};

/// Consumes order status changes.
pub struct OrderEvents {
    /// Shipments.
    pub store: Store,
}

fn order_of(event: &Envelope) -> Result<Option<&Order>, HandlerError> {
    let Some(Payload::OrderStatusChanged(changed)) = &event.payload else {
        return Ok(None);
    };
    changed
        .order
        .as_ref()
        .map(Some)
        .ok_or_else(|| HandlerError::Reject("order status change without the order".into()))
}

fn handler_error(error: FulfillmentError) -> HandlerError {
    match error {
        FulfillmentError::Db(db) => HandlerError::Retry(db.to_string()),
        other => HandlerError::Reject(other.to_string()),
    }
}

#[async_trait]
impl EventHandler for OrderEvents {
    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        event: &Envelope,
    ) -> Result<(), HandlerError> {
        let Some(order) = order_of(event)? else {
            return Ok(());
        };
        apply(&self.store, txn, order).await.map_err(handler_error)
    }

    /// New parcels of many confirmed orders are booked together (one insert, one load update,
    /// one outbox insert); anything else — a cancellation, a parcel seen before — is applied
    /// in event order on its own.
    async fn handle_batch(
        &self,
        txn: &DatabaseTransaction,
        events: &[&Envelope],
    ) -> Result<(), HandlerError> {
        let mut bookings = Bookings::default();
        for event in events {
            let Some(order) = order_of(event)? else {
                continue;
            };
            if !bookings.take(order) {
                bookings
                    .book(&self.store, txn)
                    .await
                    .map_err(handler_error)?;
                apply(&self.store, txn, order)
                    .await
                    .map_err(handler_error)?;
            }
        }
        bookings.book(&self.store, txn).await.map_err(handler_error)
    }
}

/// Whether the order's status asks for its parcels to go out.
fn dispatchable(order: &Order) -> bool {
    matches!(
        OrderStatus::try_from(order.status).unwrap_or(OrderStatus::Unspecified),
        OrderStatus::Confirmed | OrderStatus::PartiallyShipped | OrderStatus::PartiallyDelivered
    )
}

/// Brings the order's shipments in line with its status: dispatch on confirmation, stop on
/// cancellation (of the order or of single shipments).
pub async fn apply(
    store: &Store,
    txn: &DatabaseTransaction,
    order: &Order,
) -> Result<(), FulfillmentError> {
    let status = OrderStatus::try_from(order.status).unwrap_or(OrderStatus::Unspecified);
    for planned in &order.shipments {
        let cancelled = status == OrderStatus::Cancelled
            || planned.status == pb::ShipmentStatus::Cancelled as i32;
        if cancelled {
            cancel(store, txn, &planned.shipment_id).await?;
        } else if dispatchable(order) {
            let mut booking = Bookings::default();
            booking.parcels.push(parcel(order, planned));
            booking.book(store, txn).await?;
        }
    }
    Ok(())
}

/// Parcels waiting to be booked together.
#[derive(Default)]
struct Bookings {
    /// (the parcel handed to its carrier, the plan it came from).
    parcels: Vec<(pb::Shipment, OrderShipment)>,
}

impl Bookings {
    /// Takes the order's parcels if all it asks for is dispatching parcels not seen in this
    /// batch yet; false leaves the order to [`apply`].
    fn take(&mut self, order: &Order) -> bool {
        let simple = dispatchable(order)
            && order.shipments.iter().all(|planned| {
                planned.status != pb::ShipmentStatus::Cancelled as i32
                    && !self
                        .parcels
                        .iter()
                        .any(|(s, _)| s.shipment_id == planned.shipment_id)
            });
        if simple {
            self.parcels
                .extend(order.shipments.iter().map(|planned| parcel(order, planned)));
        }
        simple
    }

    /// Creates the parcels that do not exist yet, counts them against their centers and
    /// announces each once, as handed to its carrier (created and booked in one transaction,
    /// both in its history); parcels that exist already may have shrunk (units cancelled
    /// before pickup).
    async fn book(
        &mut self,
        store: &Store,
        txn: &DatabaseTransaction,
    ) -> Result<(), FulfillmentError> {
        let parcels = std::mem::take(&mut self.parcels);
        if parcels.is_empty() {
            return Ok(());
        }
        let snapshots: Vec<&pb::Shipment> = parcels.iter().map(|(s, _)| s).collect();
        let created = store.create_shipments(txn, &snapshots).await?;
        let mut loads: BTreeMap<String, i64> = BTreeMap::new();
        let mut announcements = Vec::with_capacity(created.len());
        for (snapshot, planned) in parcels {
            if !created.contains(&snapshot.shipment_id) {
                resize(store, txn, &planned).await?;
                continue;
            }
            *loads.entry(snapshot.center_id.clone()).or_default() += 1;
            announcements.push(events::shipment_changed(
                snapshot,
                pb::ShipmentStatus::Unspecified,
            )?);
        }
        store.add_loads(txn, &loads).await?;
        outbox::enqueue_all(txn, &announcements).await?;
        Ok(())
    }
}

/// A planned shipment of `order` as booked with its carrier.
fn parcel(order: &Order, planned: &OrderShipment) -> (pb::Shipment, OrderShipment) {
    let now = to_timestamp(Utc::now());
    let tracking_number = carriers::tracking_number(&planned.carrier, &planned.shipment_id);
    let history = |status: pb::ShipmentStatus, description: &str| pb::CarrierEvent {
        status: status.into(),
        at: Some(now),
        description: description.into(),
        point: None,
    };
    let snapshot = pb::Shipment {
        shipment_id: planned.shipment_id.clone(),
        order_id: order.order_id.clone(),
        center_id: planned.center_id.clone(),
        direction: pb::ShipmentDirection::Outbound.into(),
        method: planned.method,
        carrier: planned.carrier.clone(),
        tracking_number: tracking_number.clone(),
        items: planned.items.clone(),
        status: pb::ShipmentStatus::HandedToCarrier.into(),
        promised_window: planned.promised_window,
        destination: order.shipping_address.clone(),
        events: vec![
            history(pb::ShipmentStatus::Created, "shipment created"),
            history(
                pb::ShipmentStatus::HandedToCarrier,
                &format!("booked with {} as {tracking_number}", planned.carrier),
            ),
        ],
        return_id: String::new(),
        user_id: order.user_id.clone(),
        created_at: Some(now),
        courier_id: String::new(),
    };
    (snapshot, planned.clone())
}

/// Units cancelled from a parcel the carrier has not collected leave its packing list.
async fn resize(
    store: &Store,
    txn: &DatabaseTransaction,
    planned: &OrderShipment,
) -> Result<(), FulfillmentError> {
    let (mut shipment, version) = store.shipment(txn, &planned.shipment_id).await?;
    let status = status_of(&shipment);
    let collected = !matches!(status, Status::Created | Status::HandedToCarrier);
    if collected || shipment.items == planned.items || planned.items.is_empty() {
        return Ok(());
    }
    shipment.items.clone_from(&planned.items);
    shipment.events.push(pb::CarrierEvent {
        status: status.to_proto().into(),
        at: Some(to_timestamp(Utc::now())),
        description: "units cancelled before pickup; packing list updated".into(),
        point: None,
    });
    if store.save_shipment(txn, &shipment, version).await? {
        outbox::enqueue(txn, &events::shipment_changed(shipment, status.to_proto())?).await?;
    }
    Ok(())
}

async fn cancel<C: ConnectionTrait>(
    store: &Store,
    conn: &C,
    shipment_id: &str,
) -> Result<(), FulfillmentError> {
    let (mut shipment, version) = match store.shipment(conn, shipment_id).await {
        Ok(found) => found,
        // Never dispatched: nothing to stop.
        Err(FulfillmentError::UnknownShipment(_)) => return Ok(()),
        Err(error) => return Err(error),
    };
    let previous = status_of(&shipment);
    let Some(next) = crate::domain::shipment::next(previous, Status::Cancelled) else {
        return Ok(());
    };
    shipment.status = next.to_proto().into();
    shipment.events.push(pb::CarrierEvent {
        status: next.to_proto().into(),
        at: Some(to_timestamp(Utc::now())),
        description: "cancelled before the carrier collected it".into(),
        point: None,
    });
    if store.save_shipment(conn, &shipment, version).await? {
        outbox::enqueue(
            conn,
            &events::shipment_changed(shipment, previous.to_proto())?,
        )
        .await?;
    }
    Ok(())
}

/// Issues a return label: from the buyer to the nearest active center (in their country when
/// there is one), by that center's slowest method.
pub async fn create_return(
    store: &Store,
    request: &pb::CreateReturnShipmentRequest,
    origin: GeoPoint,
    call: &IdempotentCall,
) -> Result<pb::Shipment, FulfillmentError> {
    let centers = store.routable_centers().await?;
    let country = request
        .origin
        .as_ref()
        .map(|o| o.country_code.as_str())
        .unwrap_or_default();
    let nearest = |same_country: bool| {
        centers
            .iter()
            .filter(|c| !same_country || c.country_code == country)
            .filter(|c| !c.methods.is_empty())
            .min_by(|a, b| {
                oms_platform::geo::distance_km(&a.point, &origin)
                    .total_cmp(&oms_platform::geo::distance_km(&b.point, &origin))
                    .then_with(|| a.center_id.cmp(&b.center_id))
            })
    };
    let center = nearest(true).or_else(|| nearest(false)).ok_or_else(|| {
        FulfillmentError::UnknownCenter("(no active center takes returns)".into())
    })?;
    let offer = center
        .methods
        .iter()
        .min_by_key(|m| m.method.rank())
        .ok_or_else(|| FulfillmentError::UnknownCenter(center.center_id.clone()))?;
    let shipment_id = format!("rshp-{}", uuid::Uuid::now_v7().simple());
    let tracking_number = carriers::tracking_number(&offer.carrier, &shipment_id);
    let now = to_timestamp(Utc::now());
    let shipment = pb::Shipment {
        shipment_id: shipment_id.clone(),
        order_id: request.order_id.clone(),
        center_id: center.center_id.clone(),
        direction: pb::ShipmentDirection::Return.into(),
        method: offer.method.to_proto().into(),
        carrier: offer.carrier.clone(),
        tracking_number: tracking_number.clone(),
        items: request.items.clone(),
        status: pb::ShipmentStatus::HandedToCarrier.into(),
        promised_window: None,
        destination: Some(Address {
            recipient: center.name.clone(),
            country_code: center.country_code.clone(),
            region: center.region.clone(),
            location: Some(center.point),
            ..Default::default()
        }),
        events: vec![pb::CarrierEvent {
            status: pb::ShipmentStatus::HandedToCarrier.into(),
            at: Some(now),
            description: format!(
                "return label {tracking_number} issued with {}",
                offer.carrier
            ),
            point: None,
        }],
        return_id: request.return_id.clone(),
        user_id: request.user_id.clone(),
        created_at: Some(now),
        courier_id: String::new(),
    };
    let txn = store.begin().await?;
    store.create_shipments(&txn, &[&shipment]).await?;
    outbox::enqueue(
        &txn,
        &events::shipment_changed(shipment.clone(), pb::ShipmentStatus::Unspecified)?,
    )
    .await?;
    call.remember(
        &txn,
        &pb::CreateReturnShipmentResponse {
            shipment: Some(shipment.clone()),
        },
    )
    .await?;
    store.commit(txn).await?;
    Ok(shipment)
}
