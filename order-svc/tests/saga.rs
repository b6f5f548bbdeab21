//! order-svc over gRPC against real inventory and fulfillment services on PostgreSQL and
//! JetStream: the placement saga, shipping, cancellation, compensation, idempotency, returns.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use common::*;
use futures::StreamExt;
use oms_order_svc::payment::{PaymentError, PaymentProvider};
use oms_platform::{
    bus::{Area, ConsumerSpec},
    money::Money,
};
use oms_proto::{
    common::v1::Channel,
    events::v1::envelope::Payload,
    fulfillment::v1::ShipmentStatus,
    inventory::v1::ItemCondition,
    order::v1::{self as pb, OrderStatus, Payment, PaymentStatus},
};
use tonic::Code;

fn two_centers() -> Vec<oms_proto::fulfillment::v1::FulfillmentCenter> {
    vec![
        german_center("fc-munich", 48.14, 11.58, false),
        german_center("fc-hamburg", 53.55, 9.99, true),
    ]
}

/// SHOE only in Munich, TEE only in Hamburg: an order of both must split.
async fn split_stock(mesh: &mut Mesh) {
    seed(
        mesh,
        &two_centers(),
        &[("SHOE", "59.90"), ("TEE", "19.90")],
        &[("SHOE", "fc-munich", 10), ("TEE", "fc-hamburg", 10)],
    )
    .await;
}

/// Every status the bus carried for an order, in order.
async fn published_statuses(mesh: &Mesh, order_id: &str, at_least: usize) -> Vec<OrderStatus> {
    let mut stream = mesh
        .bus
        .consume(ConsumerSpec::replay(Area::Order, 1))
        .await
        .unwrap();
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while seen.len() < at_least && tokio::time::Instant::now() < deadline {
        let Ok(Some(Ok(delivery))) =
            tokio::time::timeout(Duration::from_millis(500), stream.next()).await
        else {
            continue;
        };
        if let Some(Payload::OrderStatusChanged(changed)) = &delivery.envelope.payload {
            let order = changed.order.as_ref().unwrap();
            if order.order_id == order_id {
                assert_eq!(
                    delivery.envelope.user_id, order.user_id,
                    "on the buyer's stream"
                );
                seen.push(order.status());
            }
        }
        delivery.ack().await.unwrap();
    }
    seen
}

fn amount(money: &Option<oms_proto::common::v1::Money>) -> String {
    money.as_ref().map(|m| m.amount.clone()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_order_is_confirmed_shipped_delivered_returned_and_refunded() {
    let mut mesh = start(None).await;
    split_stock(&mut mesh).await;

    let order = mesh
        .orders
        .place_order(place_request("k1", &[("SHOE", 2), ("TEE", 1)]))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(order.status(), OrderStatus::Confirmed, "{order:#?}");
    assert_eq!(order.shipments.len(), 2, "split over two centers");
    let totals = order.totals.clone().unwrap();
    assert_eq!(amount(&totals.subtotal), "139.70");
    assert_ne!(amount(&totals.tax), "0.00", "German VAT");
    let payment = order.payment.clone().unwrap();
    assert_eq!(payment.status(), PaymentStatus::Authorized);
    assert_eq!(amount(&payment.authorized), amount(&totals.total));
    assert_eq!(level(&mut mesh, "SHOE", "fc-munich").await, (10, 2));

    let shipments = wait_for_dispatch(&mut mesh, &order.order_id, 2).await;
    for shipment in &shipments {
        carrier_reports(&mut mesh, shipment, "picked_up").await;
    }
    let shipped = wait_for_order(&mut mesh, &order.order_id, |o| {
        o.status() == OrderStatus::Shipped
    })
    .await;
    assert_eq!(
        shipped.payment.as_ref().unwrap().status(),
        PaymentStatus::Captured
    );
    assert_eq!(
        amount(&shipped.payment.as_ref().unwrap().captured),
        amount(&totals.total),
        "each parcel captured its share"
    );
    assert_eq!(
        level(&mut mesh, "SHOE", "fc-munich").await,
        (8, 0),
        "shipped units left stock for good"
    );
    for shipment in &shipments {
        carrier_reports(&mut mesh, shipment, "delivered").await;
    }
    let delivered = wait_for_order(&mut mesh, &order.order_id, |o| {
        o.status() == OrderStatus::Delivered
    })
    .await;
    assert!(
        delivered
            .lines
            .iter()
            .all(|l| l.delivered_quantity == l.quantity)
    );

    // Return one shoe: a label from fulfillment, then the parcel travels back.
    let shoe_line = delivered
        .lines
        .iter()
        .find(|l| l.sku == "SHOE")
        .unwrap()
        .line_id
        .clone();
    let request = pb::RequestReturnRequest {
        order_id: order.order_id.clone(),
        user_id: "ada".into(),
        lines: vec![pb::LineQuantity {
            line_id: shoe_line.clone(),
            quantity: 1,
        }],
        reason: "too small".into(),
        idempotency_key: "ret-1".into(),
    };
    let requested = mesh
        .orders
        .request_return(request.clone())
        .await
        .unwrap()
        .into_inner();
    let again = mesh
        .orders
        .request_return(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        again.order_return, requested.order_return,
        "a retried return is the same return"
    );
    let order_return = requested.order_return.unwrap();
    assert_eq!(
        requested.order.unwrap().status(),
        OrderStatus::ReturnRequested
    );
    let label = mesh
        .fulfillment
        .get_shipment(oms_proto::fulfillment::v1::GetShipmentRequest {
            shipment_id: order_return.shipment_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .shipment
        .unwrap();
    carrier_reports(&mut mesh, &label, "picked_up").await;
    wait_for_order(&mut mesh, &order.order_id, |o| {
        o.status() == OrderStatus::ReturnInTransit
    })
    .await;

    // The center scans it in: restock, then the refund follows by itself.
    let receipt = pb::ReceiveReturnRequest {
        return_id: order_return.return_id.clone(),
        lines: vec![pb::ReceivedLine {
            line_id: shoe_line,
            quantity: 1,
            condition: ItemCondition::Sellable.into(),
        }],
        idempotency_key: "scan-1".into(),
    };
    let received = mesh
        .orders
        .receive_return(receipt.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        mesh.orders
            .receive_return(receipt)
            .await
            .unwrap()
            .into_inner(),
        received,
        "a repeated scan changes nothing"
    );
    let refunded = received.order.unwrap();
    assert_eq!(refunded.status(), OrderStatus::Refunded);
    // 59.90 plus its share of VAT.
    let refund = amount(&received.order_return.unwrap().refund);
    assert!(refund.parse::<f64>().unwrap() > 59.90, "{refund}");
    assert_eq!(
        refunded.payment.as_ref().unwrap().status(),
        PaymentStatus::PartiallyRefunded
    );
    assert_eq!(amount(&refunded.payment.as_ref().unwrap().refunded), refund);
    assert_eq!(
        level(&mut mesh, "SHOE", &label.center_id).await.0,
        if label.center_id == "fc-munich" { 9 } else { 1 },
        "restocked where it arrived"
    );
    assert_audit_clean(&mut mesh).await;

    use OrderStatus::*;
    let statuses = published_statuses(&mesh, &order.order_id, 9).await;
    assert_eq!(
        statuses,
        [
            Confirmed,
            PartiallyShipped,
            Shipped,
            PartiallyDelivered,
            Delivered,
            ReturnRequested,
            ReturnInTransit,
            Returned,
            Refunded
        ]
    );
    stop(mesh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_before_shipment_gives_stock_and_money_back() {
    let mut mesh = start(None).await;
    split_stock(&mut mesh).await;
    let order = mesh
        .orders
        .place_order(place_request("k1", &[("SHOE", 3), ("TEE", 1)]))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    let shoe_line = order
        .lines
        .iter()
        .find(|l| l.sku == "SHOE")
        .unwrap()
        .line_id
        .clone();

    // One shoe less.
    let partial = pb::CancelOrderRequest {
        order_id: order.order_id.clone(),
        user_id: "ada".into(),
        lines: vec![pb::LineQuantity {
            line_id: shoe_line.clone(),
            quantity: 1,
        }],
        reason: "changed my mind".into(),
        idempotency_key: "c1".into(),
    };
    let after = mesh
        .orders
        .cancel_order(partial.clone())
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(
        mesh.orders
            .cancel_order(partial)
            .await
            .unwrap()
            .into_inner()
            .order
            .unwrap(),
        after,
        "a retry is the same cancellation"
    );
    assert_eq!(after.status(), OrderStatus::Confirmed);
    assert_eq!(
        after
            .lines
            .iter()
            .find(|l| l.sku == "SHOE")
            .unwrap()
            .cancelled_quantity,
        1
    );
    assert_eq!(level(&mut mesh, "SHOE", "fc-munich").await, (10, 2));
    assert_eq!(amount(&after.totals.as_ref().unwrap().subtotal), "139.70");
    assert_eq!(
        amount(&after.payment.as_ref().unwrap().authorized),
        amount(&after.totals.as_ref().unwrap().total),
        "the freed money is voided"
    );

    // The warehouse packs one shoe less.
    let mut packed = 0;
    for _ in 0..200 {
        let shipments = wait_for_dispatch(&mut mesh, &order.order_id, 2).await;
        packed = shipments
            .iter()
            .find(|s| s.center_id == "fc-munich")
            .map_or(0, |s| s.items[0].quantity);
        if packed == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(packed, 2);

    // Someone else's order is not there for them.
    let mut stranger = pb::CancelOrderRequest {
        order_id: order.order_id.clone(),
        user_id: "mallory".into(),
        idempotency_key: "x".into(),
        ..Default::default()
    };
    assert_eq!(
        mesh.orders
            .cancel_order(stranger.clone())
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    stranger.user_id = "ada".into();
    stranger.lines = vec![pb::LineQuantity {
        line_id: shoe_line,
        quantity: 5,
    }];
    assert_eq!(
        mesh.orders.cancel_order(stranger).await.unwrap_err().code(),
        Code::InvalidArgument
    );

    // The rest.
    let whole = pb::CancelOrderRequest {
        order_id: order.order_id.clone(),
        user_id: "ada".into(),
        idempotency_key: "c2".into(),
        ..Default::default()
    };
    let cancelled = mesh
        .orders
        .cancel_order(whole)
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(cancelled.status(), OrderStatus::Cancelled);
    assert_eq!(
        cancelled.payment.as_ref().unwrap().status(),
        PaymentStatus::Voided
    );
    assert_eq!(level(&mut mesh, "SHOE", "fc-munich").await, (10, 0));
    assert_eq!(level(&mut mesh, "TEE", "fc-hamburg").await, (10, 0));
    let late = pb::CancelOrderRequest {
        order_id: order.order_id.clone(),
        user_id: "ada".into(),
        idempotency_key: "c3".into(),
        ..Default::default()
    };
    assert_eq!(
        mesh.orders.cancel_order(late).await.unwrap_err().code(),
        Code::FailedPrecondition
    );

    // Fulfillment stops whatever it had dispatched.
    for _ in 0..200 {
        let shipments = mesh
            .fulfillment
            .list_shipments(oms_proto::fulfillment::v1::ListShipmentsRequest {
                order_id: order.order_id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .shipments;
        if shipments
            .iter()
            .all(|s| s.status() == ShipmentStatus::Cancelled)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_audit_clean(&mut mesh).await;
    stop(mesh).await;
}

/// A payment provider that declines everything (an injected failure after the reservation).
struct Declining;

#[async_trait]
impl PaymentProvider for Declining {
    async fn authorize(&self, _: &str, _: Money) -> Result<Payment, PaymentError> {
        Err(PaymentError::Declined("card expired".into()))
    }
    async fn capture(&self, _: &str, _: Money, _: &str) -> Result<Payment, PaymentError> {
        Err(PaymentError::Declined("no authorisation".into()))
    }
    async fn void(&self, _: &str, _: Money, _: &str) -> Result<Payment, PaymentError> {
        Err(PaymentError::Declined("no authorisation".into()))
    }
    async fn refund(&self, _: &str, _: Money, _: &str) -> Result<Payment, PaymentError> {
        Err(PaymentError::Declined("no authorisation".into()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_after_the_reservation_leaves_no_reservation_behind() {
    let mut mesh = start(Some(Arc::new(Declining))).await;
    split_stock(&mut mesh).await;
    let refused = mesh
        .orders
        .place_order(place_request("k1", &[("SHOE", 2)]))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("card expired"),
        "{}",
        refused.message()
    );
    assert_eq!(
        level(&mut mesh, "SHOE", "fc-munich").await,
        (10, 0),
        "the reservation was released"
    );
    let again = mesh
        .orders
        .place_order(place_request("k1", &[("SHOE", 2)]))
        .await
        .unwrap_err();
    assert_eq!(
        again.code(),
        Code::FailedPrecondition,
        "a retry gets the same answer"
    );
    let orders = mesh
        .orders
        .list_orders(pb::ListOrdersRequest {
            user_id: "ada".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .orders;
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].status(), OrderStatus::Rejected);
    assert!(orders[0].status_reason.contains("card expired"));
    assert!(orders[0].shipments.is_empty());
    assert_audit_clean(&mut mesh).await;
    stop(mesh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_idempotency_key_places_one_order() {
    let mut mesh = start(None).await;
    split_stock(&mut mesh).await;
    let attempts = (0..6).map(|_| {
        let mut client = mesh.orders.clone();
        tokio::spawn(async move {
            client
                .place_order(place_request("same-key", &[("SHOE", 1)]))
                .await
        })
    });
    let mut ids = Vec::new();
    for attempt in futures::future::join_all(attempts).await {
        match attempt.unwrap() {
            Ok(response) => ids.push(response.into_inner().order.unwrap().order_id),
            Err(status) => assert_eq!(
                status.code(),
                Code::Aborted,
                "only 'still being placed': {status:?}"
            ),
        }
    }
    let settled = mesh
        .orders
        .place_order(place_request("same-key", &[("SHOE", 1)]))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    ids.push(settled.order_id.clone());
    ids.dedup();
    assert_eq!(ids, std::slice::from_ref(&settled.order_id));
    assert_eq!(
        level(&mut mesh, "SHOE", "fc-munich").await,
        (10, 1),
        "reserved once"
    );
    let reused = mesh
        .orders
        .place_order(place_request("same-key", &[("SHOE", 2)]))
        .await
        .unwrap_err();
    assert_eq!(
        reused.code(),
        Code::FailedPrecondition,
        "a key reused for another order is refused"
    );
    let orders = mesh
        .orders
        .list_orders(pb::ListOrdersRequest {
            user_id: "ada".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .orders;
    assert_eq!(orders.len(), 1);
    stop(mesh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_orders_run_the_same_pipeline_and_bad_payloads_are_kept() {
    let mut mesh = start(None).await;
    split_stock(&mut mesh).await;
    let webhook = r##"{
        "id": 820982911946154508, "name": "#1001", "currency": "EUR",
        "customer": {"id": 115310627314723954, "email": "ada@example.com"},
        "line_items": [{"sku": "SHOE", "quantity": 1, "price": "54.90", "title": "Shoe"}],
        "shipping_address": {"first_name": "Ada", "last_name": "L", "address1": "Unter den Linden 1", "city": "Berlin",
            "province_code": "BE", "zip": "10117", "country_code": "DE", "latitude": 52.517, "longitude": 13.389},
        "shipping_lines": [{"code": "standard"}]
    }"##;
    let ingest = pb::IngestChannelOrderRequest {
        channel: Channel::Web.into(),
        payload: webhook.as_bytes().to_vec(),
        idempotency_key: String::new(),
    };
    let order = mesh
        .orders
        .ingest_channel_order(ingest.clone())
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(order.status(), OrderStatus::Confirmed);
    assert_eq!(order.channel(), Channel::Web);
    assert_eq!(order.external_ref, "820982911946154508");
    assert_eq!(order.user_id, "web-115310627314723954");
    assert_eq!(
        amount(&order.lines[0].unit_price),
        "54.90",
        "the price the storefront charged"
    );
    let redelivered = mesh
        .orders
        .ingest_channel_order(ingest)
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(
        redelivered.order_id, order.order_id,
        "a redelivered webhook is the same order"
    );

    let broken = pb::IngestChannelOrderRequest {
        channel: Channel::Marketplace.into(),
        payload: b"{\"AmazonOrderId\": 7}".to_vec(),
        idempotency_key: String::new(),
    };
    let refused = mesh.orders.ingest_channel_order(broken).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("AmazonOrderId"),
        "{}",
        refused.message()
    );
    let kept = mesh
        .orders
        .list_rejected_intakes(pb::ListRejectedIntakesRequest {
            channel: Channel::Marketplace.into(),
            page: None,
        })
        .await
        .unwrap()
        .into_inner()
        .intakes;
    assert_eq!(kept.len(), 1);
    assert!(kept[0].reason.contains("AmazonOrderId"));
    assert_eq!(kept[0].payload, b"{\"AmazonOrderId\": 7}");

    // Bad input changes nothing.
    let mut bad = place_request("k-bad", &[("NOPE", 1), ("SHOE", 0)]);
    bad.currency_code = "EUR".into();
    let status = mesh.orders.place_order(bad).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let orders = mesh
        .orders
        .list_orders(pb::ListOrdersRequest {
            user_id: "ada".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .orders;
    assert!(orders.is_empty());
    let unknown = mesh
        .orders
        .place_order(place_request("k-unknown", &[("NOPE", 1)]))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::InvalidArgument);
    assert!(
        unknown.message().contains("NOPE is not sold in EUR"),
        "{}",
        unknown.message()
    );
    stop(mesh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn high_value_orders_wait_for_the_step_up() {
    let mut mesh = start(None).await;
    seed(
        &mut mesh,
        &two_centers(),
        &[("WATCH", "2500.00")],
        &[("WATCH", "fc-munich", 3)],
    )
    .await;
    let held = mesh
        .orders
        .place_order(place_request("k1", &[("WATCH", 1)]))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(held.status(), OrderStatus::RequiresVerification);
    assert!(
        held.status_reason.contains("biometrics"),
        "{}",
        held.status_reason
    );
    assert_eq!(
        level(&mut mesh, "WATCH", "fc-munich").await,
        (3, 1),
        "stock is held meanwhile"
    );
    // The biometric answer itself is tests/passkeys.rs's; here: an answer is required, and a
    // buyer without a passkey is told to enrol one.
    let unanswered = mesh
        .orders
        .verify_order(pb::VerifyOrderRequest {
            order_id: held.order_id.clone(),
            user_id: "ada".into(),
            idempotency_key: "v1".into(),
            assertion_json: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(unanswered.code(), Code::InvalidArgument);
    let enrol = mesh
        .orders
        .begin_order_verification(pb::BeginOrderVerificationRequest {
            order_id: held.order_id.clone(),
            user_id: "ada".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(enrol.code(), Code::FailedPrecondition);
    assert!(enrol.message().contains("passkey"), "{}", enrol.message());
    stop(mesh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_pages_and_filters() {
    let mut mesh = start(None).await;
    split_stock(&mut mesh).await;
    let mut placed = Vec::new();
    for i in 0..5 {
        let order = mesh
            .orders
            .place_order(place_request(&format!("k{i}"), &[("TEE", 1)]))
            .await
            .unwrap()
            .into_inner()
            .order
            .unwrap();
        placed.push(order.order_id);
    }
    let cancel = pb::CancelOrderRequest {
        order_id: placed[0].clone(),
        user_id: "ada".into(),
        idempotency_key: "c".into(),
        ..Default::default()
    };
    mesh.orders.cancel_order(cancel).await.unwrap();
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = mesh
            .orders
            .list_orders(pb::ListOrdersRequest {
                user_id: "ada".into(),
                page: Some(oms_proto::common::v1::PageRequest {
                    page_size: 2,
                    page_token: token.clone(),
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.orders.into_iter().map(|o| o.order_id));
        token = page.page.unwrap().next_page_token;
        if token.is_empty() {
            break;
        }
    }
    placed.reverse();
    assert_eq!(seen, placed, "newest first, every order once");
    let cancelled = mesh
        .orders
        .list_orders(pb::ListOrdersRequest {
            statuses: vec![OrderStatus::Cancelled.into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .orders;
    assert_eq!(cancelled.len(), 1);
    let timeline: BTreeMap<i32, usize> =
        cancelled[0]
            .timeline
            .iter()
            .fold(BTreeMap::new(), |mut counts, entry| {
                *counts.entry(entry.status).or_default() += 1;
                counts
            });
    assert_eq!(
        timeline.keys().copied().collect::<Vec<_>>(),
        [
            OrderStatus::Pending as i32,
            OrderStatus::Confirmed as i32,
            OrderStatus::Cancelled as i32
        ]
    );
    stop(mesh).await;
}
