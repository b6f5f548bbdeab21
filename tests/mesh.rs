//! End to end on the production topology: five `oms serve` processes on PostgreSQL and NATS
//! JetStream, driven the way phones drive them — through the gateway with a bearer token,
//! following the live stream — while operators, carriers and couriers do their parts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::topology::*;
use oms::mesh::Protocol;
use oms_proto::{
    common::v1::GeoPoint,
    inventory::v1::ItemCondition,
    mobile::v1 as mobile,
    order::v1::{self as ord, OrderStatus},
    tracking::v1 as trk,
};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_orders_follows_the_courier_and_returns_for_a_refund() {
    let mesh = Topology::start().await;
    let mut operator = mesh.operator().await;
    seed(
        &mut operator,
        &[("SHOE", "fc-munich", 10), ("TEE", "fc-hamburg", 10)],
    )
    .await;
    let stop = CancellationToken::new();
    let seen = follow(mesh.app("ada", Protocol::Grpc).await, stop.clone());
    let mut app = mesh.app("ada", Protocol::Grpc).await;

    // A split order: shoes from Munich, the tee from Hamburg.
    let order = app
        .place_order(order_request("split-1", &[("SHOE", 2), ("TEE", 1)]))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(order.status(), OrderStatus::Confirmed, "{order:#?}");
    assert_eq!(order.shipments.len(), 2, "split over two centers");
    let id = order.order_id.clone();

    // The couriers drive; their positions reach the phone.
    let shipments = wait_for_dispatch(&mut operator, &id, 2).await;
    for shipment in &shipments {
        carrier_reports(&mut operator, shipment, "picked_up").await;
    }
    let positions = shipments
        .iter()
        .map(|s| trk::PositionReport {
            device_id: format!("van-{}", s.shipment_id),
            shipment_id: s.shipment_id.clone(),
            point: Some(GeoPoint {
                lat: 52.45,
                lng: 13.35,
            }),
            recorded_at: Some(oms_platform::events::now()),
            accuracy_m: 5.0,
            speed_mps: 9.0,
        })
        .collect();
    let accepted = operator
        .tracking
        .report_positions(trk::ReportPositionsRequest {
            positions,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(accepted.accepted, 2, "{accepted:?}");
    eventually(&seen, "both couriers' positions", |s| {
        shipments
            .iter()
            .all(|shipment| s.positions.contains(&shipment.shipment_id))
    })
    .await;
    for shipment in &shipments {
        carrier_reports(&mut operator, shipment, "delivered").await;
    }
    wait_for_order(&mut operator, &id, |o| o.status() == OrderStatus::Delivered).await;

    // Return one shoe from the phone; the center scans it in; the refund follows.
    let delivered = app
        .get_order(mobile::GetOrderRequest {
            order_id: id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    let shoe_line = delivered
        .lines
        .iter()
        .find(|l| l.sku == "SHOE")
        .unwrap()
        .line_id
        .clone();
    let returned = app
        .request_return(mobile::RequestReturnRequest {
            order_id: id.clone(),
            lines: vec![ord::LineQuantity {
                line_id: shoe_line.clone(),
                quantity: 1,
            }],
            reason: "too small".into(),
            idempotency_key: "return-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let order_return = returned.order_return.unwrap();
    let label = operator
        .fulfillment
        .get_shipment(oms_proto::fulfillment::v1::GetShipmentRequest {
            shipment_id: order_return.shipment_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .shipment
        .unwrap();
    carrier_reports(&mut operator, &label, "picked_up").await;
    wait_for_order(&mut operator, &id, |o| {
        o.status() == OrderStatus::ReturnInTransit
    })
    .await;
    let received = operator
        .orders
        .receive_return(ord::ReceiveReturnRequest {
            return_id: order_return.return_id.clone(),
            lines: vec![ord::ReceivedLine {
                line_id: shoe_line,
                quantity: 1,
                condition: ItemCondition::Sellable.into(),
            }],
            idempotency_key: "scan-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(received.order.unwrap().status(), OrderStatus::Refunded);
    assert!(
        received
            .order_return
            .unwrap()
            .refund
            .unwrap()
            .amount
            .parse::<f64>()
            .unwrap()
            > 59.90
    );

    use OrderStatus::*;
    let expected = [
        Confirmed,
        PartiallyShipped,
        Shipped,
        PartiallyDelivered,
        Delivered,
        ReturnRequested,
        ReturnInTransit,
        Returned,
        Refunded,
    ];
    eventually(&seen, "every status of the order on the stream", |s| {
        s.of(&id).len() >= expected.len()
    })
    .await;
    stop.cancel();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.of(&id), expected);
    seen.assert_exactly_once_in_order();
    assert!(operator.audit().await.unwrap().is_empty());
    // One shoe came back to where its parcel went.
    let back_to = &label.center_id;
    let (on_hand, reserved) = operator.level("SHOE", back_to).await.unwrap();
    assert_eq!(reserved, 0);
    assert_eq!(on_hand, if back_to == "fc-munich" { 9 } else { 1 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_app_over_grpc_web_orders_cancels_and_gets_the_stock_back() {
    let mesh = Topology::start().await;
    let mut operator = mesh.operator().await;
    seed(&mut operator, &[("CAP", "fc-munich", 5)]).await;
    let stop = CancellationToken::new();
    let seen = follow(mesh.app("bea", Protocol::GrpcWeb).await, stop.clone());
    let mut app = mesh.app("bea", Protocol::GrpcWeb).await;

    let order = app
        .place_order(order_request("cap-1", &[("CAP", 3)]))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(order.status(), OrderStatus::Confirmed);
    assert_eq!(operator.level("CAP", "fc-munich").await.unwrap(), (5, 3));
    // More than is left is refused with a clear status and changes nothing.
    let refused = app
        .place_order(order_request("cap-2", &[("CAP", 3)]))
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
    assert_eq!(operator.level("CAP", "fc-munich").await.unwrap(), (5, 3));

    let cancelled = app
        .cancel_order(mobile::CancelOrderRequest {
            order_id: order.order_id.clone(),
            lines: Vec::new(),
            reason: "changed my mind".into(),
            idempotency_key: "cancel-1".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(cancelled.status(), OrderStatus::Cancelled);
    assert_eq!(operator.level("CAP", "fc-munich").await.unwrap(), (5, 0));

    eventually(&seen, "confirmed then cancelled", |s| {
        s.of(&order.order_id).len() >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.cancel();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen.of(&order.order_id),
        [OrderStatus::Confirmed, OrderStatus::Cancelled]
    );
    seen.assert_exactly_once_in_order();
    assert!(operator.audit().await.unwrap().is_empty());
}
