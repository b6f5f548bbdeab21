//! Sold out in milliseconds, never wrongly: a cart for a SKU known to be sold out everywhere is
//! refused before anything is written and names the sold-out SKU; stock that comes back — a
//! cancellation, a receipt — is bought by the next buyer within a second; and while stock is
//! there, nobody is told it is sold out.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use oms_proto::{
    inventory::v1 as inv,
    order::v1::{self as pb, OrderStatus},
};
use tonic::{Code, Status};

fn buy(user: &str, key: &str, sku: &str) -> pb::PlaceOrderRequest {
    pb::PlaceOrderRequest {
        user_id: user.into(),
        ..place_request(key, &[(sku, 1)])
    }
}

/// The SKUs a refusal says are sold out (from its error details).
fn sold_out_skus(status: &Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_details_precondition_failure()
        .map(|failure| {
            failure
                .violations
                .into_iter()
                .filter(|v| v.r#type == "SOLD_OUT")
                .map(|v| v.subject.trim_start_matches("sku/").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Places until confirmed (a refusal is retried every 20 ms); how long it took.
async fn buy_until_confirmed(mesh: &mut Mesh, user: &str, sku: &str) -> Duration {
    let started = Instant::now();
    for attempt in 0.. {
        let request = buy(user, &format!("{user}-{attempt}"), sku);
        match mesh.orders.place_order(request).await {
            Ok(placed) => {
                assert_eq!(
                    placed.into_inner().order.unwrap().status(),
                    OrderStatus::Confirmed
                );
                return started.elapsed();
            }
            Err(status) => {
                assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "stock never came back: {status:?}"
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    unreachable!()
}

async fn orders_of(mesh: &mut Mesh, user: &str) -> Vec<pb::Order> {
    mesh.orders
        .list_orders(pb::ListOrdersRequest {
            user_id: user.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .orders
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sold_out_sku_is_refused_at_once_naming_it_and_writing_nothing() {
    let mut mesh = start(None).await;
    let centers = [german_center("fc-berlin", 52.52, 13.40, false)];
    seed(
        &mut mesh,
        &centers,
        &[("DROP", "49.00")],
        &[("DROP", "fc-berlin", 2)],
    )
    .await;
    for user in ["ada", "bob"] {
        buy_until_confirmed(&mut mesh, user, "DROP").await;
    }

    let refused = mesh
        .orders
        .place_order(buy("cyd", "cyd-1", "DROP"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(sold_out_skus(&refused), ["DROP"]);
    assert!(
        orders_of(&mut mesh, "cyd").await.is_empty(),
        "a sold-out refusal writes no order"
    );
    // The buyer who got one and retries with the same key still gets their order.
    let again = mesh
        .orders
        .place_order(buy("ada", "ada-0", "DROP"))
        .await
        .unwrap();
    assert_eq!(
        again.into_inner().order.unwrap().status(),
        OrderStatus::Confirmed
    );
    stop(mesh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_freed_by_a_cancel_or_a_receipt_is_bought_by_the_next_buyer_within_a_second() {
    let mut mesh = start(None).await;
    let centers = [german_center("fc-berlin", 52.52, 13.40, false)];
    seed(
        &mut mesh,
        &centers,
        &[("DROP", "49.00")],
        &[("DROP", "fc-berlin", 1)],
    )
    .await;
    buy_until_confirmed(&mut mesh, "ada", "DROP").await;
    let refused = mesh
        .orders
        .place_order(buy("bob", "bob-sold-out", "DROP"))
        .await
        .unwrap_err();
    assert_eq!(sold_out_skus(&refused), ["DROP"]);

    // Ada cancels: her unit goes back, and Bob's next tap gets it.
    let ada = orders_of(&mut mesh, "ada").await.remove(0);
    mesh.orders
        .cancel_order(pb::CancelOrderRequest {
            order_id: ada.order_id,
            reason: "changed my mind".into(),
            idempotency_key: "ada-cancel".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let waited = buy_until_confirmed(&mut mesh, "bob", "DROP").await;
    assert!(
        waited < Duration::from_secs(1),
        "bought {waited:?} after the cancel"
    );

    // Sold out again; a receipt at the warehouse reaches the next buyer through inventory's
    // level events.
    let refused = mesh
        .orders
        .place_order(buy("cyd", "cyd-sold-out", "DROP"))
        .await
        .unwrap_err();
    assert_eq!(sold_out_skus(&refused), ["DROP"]);
    mesh.inventory
        .receive(inv::ReceiveRequest {
            sku: "DROP".into(),
            location_id: "fc-berlin".into(),
            quantity: 1,
            reason: "restock".into(),
            idempotency_key: "restock-1".into(),
        })
        .await
        .unwrap();
    let waited = buy_until_confirmed(&mut mesh, "cyd", "DROP").await;
    assert!(
        waited < Duration::from_secs(1),
        "bought {waited:?} after the receipt"
    );
    assert_audit_clean(&mut mesh).await;
    stop(mesh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_stock_is_there_nobody_is_told_it_is_sold_out() {
    let mut mesh = start(None).await;
    let centers = [german_center("fc-berlin", 52.52, 13.40, false)];
    seed(
        &mut mesh,
        &centers,
        &[("TEE", "19.00")],
        &[("TEE", "fc-berlin", 60)],
    )
    .await;
    // Three waves of twenty buyers at once: sixty units, sixty buyers, every one served.
    for wave in 0..3 {
        let buyers = (0..20).map(|i| {
            let mut orders = mesh.orders.clone();
            tokio::spawn(async move {
                let user = format!("w{wave}-{i}");
                orders.place_order(buy(&user, &user, "TEE")).await
            })
        });
        for outcome in futures::future::join_all(buyers).await {
            let placed = outcome
                .unwrap()
                .unwrap_or_else(|status| panic!("refused: {status:?}"));
            assert_eq!(
                placed.into_inner().order.unwrap().status(),
                OrderStatus::Confirmed
            );
        }
    }
    let refused = mesh
        .orders
        .place_order(buy("late", "late", "TEE"))
        .await
        .unwrap_err();
    assert_eq!(sold_out_skus(&refused), ["TEE"]);
    assert_eq!(level(&mut mesh, "TEE", "fc-berlin").await, (60, 60));
    stop(mesh).await;
}
