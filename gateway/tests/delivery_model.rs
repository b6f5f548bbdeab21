//! The promise the buyer sees follows the learned delivery-time model: a history recorded
//! through the bus, a model trained and promoted by tracking-svc, and fulfillment's quote
//! through the gateway changes from the carrier formula's window to the model's P50–P90.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../../tracking-svc/tests/common/history_events.rs"]
mod history_events;

use std::time::Duration;

use common::{Mesh, start, stop, with_token};
use oms_proto::{
    common::v1::{Address, GeoPoint, ShippingMethod, TimeWindow},
    mobile::v1 as pb,
    order::v1::OrderLineInput,
    tracking::v1 as trk,
};

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
async fn the_quoted_window_follows_the_promoted_model() {
    let mut mesh = start(1000).await;
    let ada = mesh
        .key
        .mint("ada", "orders:read orders:write", Duration::from_secs(600))
        .unwrap();
    let formula = standard_window(&mut mesh, &ada).await;

    history_events::publish_history(
        mesh.ctx.bus.as_ref(),
        &oms_eta_model::simulate::year(2_000, 8),
    )
    .await;
    // Train once the whole history is recorded (the consumer applies it in batches).
    for _ in 0..200 {
        let recorded = mesh
            .tracking
            .export_delivery_history(trk::ExportDeliveryHistoryRequest::default())
            .await
            .unwrap()
            .into_inner()
            .rows;
        if recorded == 2_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let trained = mesh
        .tracking
        .retrain_eta_model(trk::RetrainEtaModelRequest {})
        .await
        .ok()
        .map(tonic::Response::into_inner);
    let trained = trained.expect("the history never reached tracking");
    assert!(trained.promoted, "{trained:?}");

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
    stop(mesh).await;
}
