//! Deliveries teach the model the buyer sees, end to end: parcels placed through the gateway,
//! booked with their carrier, driven by a courier reporting GPS and delivered are recorded in
//! tracking's history; with a year of history beside them tracking trains and promotes a model
//! (and keeps it when a retrain is no better); then fulfillment's quote changes from the
//! carrier formula's window to the model's P50–P90, and the ETA on the buyer's live stream
//! says the model produced it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../../tracking-svc/tests/common/history_events.rs"]
mod history_events;

use std::time::Duration;

use common::{Mesh, eventually, fix, place, start, stop, token, with_token};
use oms_proto::{
    common::v1::{Address, GeoPoint, ShippingMethod, TimeWindow},
    fulfillment::v1 as ful,
    mobile::v1 as pb,
    order::v1::OrderLineInput,
    tracking::v1::{self as trk, live_update::Kind},
};
use tonic::Streaming;

/// How many deliveries tracking's history holds.
async fn recorded(mesh: &mut Mesh) -> u32 {
    mesh.tracking
        .export_delivery_history(trk::ExportDeliveryHistoryRequest::default())
        .await
        .unwrap()
        .into_inner()
        .rows
}

async fn retrain(mesh: &mut Mesh) -> trk::RetrainEtaModelResponse {
    mesh.tracking
        .retrain_eta_model(trk::RetrainEtaModelRequest {})
        .await
        .unwrap()
        .into_inner()
}

/// Places an order as ada, has dispatch give its parcel to kim and kim report two fixes on the
/// way; returns the parcel and the first ETA of it on ada's `stream`.
async fn dispatch_and_drive(
    mesh: &mut Mesh,
    stream: &mut Streaming<pb::SubscribeResponse>,
    key: &str,
) -> (ful::Shipment, trk::Eta) {
    let ada = token(mesh, "ada", "orders:read orders:write");
    let kim = token(mesh, "kim", "courier");
    let order = mesh
        .gateway
        .place_order(with_token(place(key), &ada))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    let shipment = eventually("the parcel", || {
        let mut fulfillment = mesh.fulfillment.clone();
        let order_id = order.order_id.clone();
        async move {
            let listed = fulfillment
                .list_shipments(ful::ListShipmentsRequest { order_id })
                .await
                .ok()?
                .into_inner();
            listed.shipments.into_iter().next()
        }
    })
    .await;
    assert_eq!(shipment.status(), ful::ShipmentStatus::HandedToCarrier);
    mesh.fulfillment
        .assign_courier(ful::AssignCourierRequest {
            shipment_id: shipment.shipment_id.clone(),
            courier_id: "kim".into(),
        })
        .await
        .unwrap();
    let id = shipment.shipment_id.clone();
    eventually("kim's fixes accepted", || {
        let mut gateway = mesh.gateway.clone();
        let report = pb::ReportPositionsRequest {
            positions: vec![fix("van", &id, 52.40, 60), fix("van", &id, 52.42, 30)],
        };
        let kim = kim.clone();
        async move {
            let tally = gateway
                .report_positions(with_token(report, &kim))
                .await
                .ok()?
                .into_inner();
            (tally.accepted > 0).then_some(())
        }
    })
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let update = tokio::time::timeout(left, stream.message())
            .await
            .expect("no ETA on the stream")
            .unwrap()
            .unwrap()
            .update
            .unwrap();
        if let Some(Kind::Eta(eta)) = update.kind
            && eta.shipment_id == shipment.shipment_id
        {
            return (shipment, eta);
        }
    }
}

/// The carrier reports the parcel picked up and delivered.
async fn deliver(mesh: &mut Mesh, shipment: &ful::Shipment) {
    // Carriers report whole seconds; a delivery stamped in the second of its booking would be
    // at or before its dispatch, which the history does not learn from.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    for step in ["picked_up", "delivered"] {
        mesh.fulfillment
            .report_carrier_update(ful::ReportCarrierUpdateRequest {
                carrier: shipment.carrier.clone(),
                payload: oms_platform::sample::carrier_payload(shipment, step),
            })
            .await
            .unwrap();
    }
}

async fn standard_window(mesh: &mut Mesh, token: &str) -> TimeWindow {
    let request = pb::QuoteDeliveryRequest {
        lines: vec![OrderLineInput {
            sku: "TEE".into(),
            quantity: 1,
        }],
        destination: Some(Address {
            country_code: "DE".into(),
            region: "DE-BY".into(),
            location: Some(GeoPoint {
                lat: 48.14,
                lng: 11.58,
            }),
            ..Default::default()
        }),
        currency_code: "EUR".into(),
        ..Default::default()
    };
    let quote = mesh
        .gateway
        .quote_delivery(with_token(request, token))
        .await
        .unwrap()
        .into_inner()
        .quote
        .unwrap();
    let standard = quote
        .options
        .iter()
        .find(|o| o.method() == ShippingMethod::Standard)
        .unwrap();
    standard.plan.as_ref().unwrap().shipments[0]
        .promised_window
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_through_the_mesh_teach_the_model_the_buyer_sees() {
    let mut mesh = start(1000).await;
    let ada = token(&mesh, "ada", "orders:read orders:write");
    let mut stream = mesh
        .gateway
        .subscribe(with_token(pb::SubscribeRequest::default(), &ada))
        .await
        .unwrap()
        .into_inner();
    let formula = standard_window(&mut mesh, &ada).await;

    // A parcel through the mesh, tracked by the GPS model alone, joins the history when it
    // is delivered.
    let (parcel, eta) = dispatch_and_drive(&mut mesh, &mut stream, "ada-1").await;
    assert_eq!(eta.model, "smoothed-speed-v1", "{eta:?}");
    assert_eq!(
        recorded(&mut mesh).await,
        0,
        "under way: not learned from yet"
    );
    deliver(&mut mesh, &parcel).await;
    let carrier = parcel.carrier.to_lowercase();
    eventually("the delivery in the history", || {
        let mut tracking = mesh.tracking.clone();
        let carrier = carrier.clone();
        async move {
            let csv = tracking
                .export_delivery_history(trk::ExportDeliveryHistoryRequest::default())
                .await
                .ok()?
                .into_inner()
                .csv;
            let rows = oms_eta_model::history::read(csv.as_slice()).ok()?;
            let row = rows.first()?;
            (row.carrier == carrier && row.duration_min.is_some()).then_some(())
        }
    })
    .await;

    // A year of history beside it; train once it has all arrived (the consumer applies it in
    // batches).
    history_events::publish_history(
        mesh.ctx.bus.as_ref(),
        &oms_eta_model::simulate::year(2_000, 8),
    )
    .await;
    for _ in 0..200 {
        if recorded(&mut mesh).await == 2_001 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(recorded(&mut mesh).await, 2_001);
    let trained = retrain(&mut mesh).await;
    assert!(trained.promoted, "{trained:?}");
    assert_eq!(trained.model.as_ref().unwrap().version, 1);
    // The same history again: the candidate is no better, version 1 keeps serving.
    let again = retrain(&mut mesh).await;
    assert!(!again.promoted, "{again:?}");
    assert_eq!(again.model.as_ref().unwrap().version, 2);

    // The quote follows the promoted model.
    let mut learned = formula;
    for _ in 0..100 {
        learned = standard_window(&mut mesh, &ada).await;
        if learned != formula {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_ne!(learned, formula, "the window never followed the model");
    let (start, end) = (learned.start.unwrap(), learned.end.unwrap());
    assert!(start.seconds < end.seconds, "P50 before P90: {learned:?}");

    // And so does the live ETA of the next parcel, which says which model made it.
    let (_, eta) = dispatch_and_drive(&mut mesh, &mut stream, "ada-2").await;
    assert_eq!(eta.model, "smoothed-speed-v1+delivery-time-v1", "{eta:?}");
    stop(mesh).await;
}
