//! 500 buyers at once for 60 units: no oversell, every accepted order persisted, every
//! refusal a clear status.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use oms_proto::order::v1::{self as pb, OrderStatus};
use tonic::Code;

const BUYERS: usize = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_concurrent_orders_on_scarce_stock_never_oversell() {
    let mut mesh = start(None).await;
    let centers = [
        german_center("fc-berlin", 52.52, 13.40, false),
        german_center("fc-munich", 48.14, 11.58, false),
    ];
    seed(
        &mut mesh,
        &centers,
        &[("HYPE", "99.00")],
        &[("HYPE", "fc-berlin", 30), ("HYPE", "fc-munich", 30)],
    )
    .await;

    let buyers = (0..BUYERS).map(|i| {
        let mut client = mesh.orders.clone();
        tokio::spawn(async move {
            let mut request = place_request(&format!("drop-{i}"), &[("HYPE", 1)]);
            request.user_id = format!("buyer-{i}");
            client.place_order(request).await
        })
    });
    let mut accepted = Vec::new();
    let mut refused = 0;
    for outcome in futures::future::join_all(buyers).await {
        match outcome.unwrap() {
            Ok(response) => {
                let order = response.into_inner().order.unwrap();
                assert_eq!(order.status(), OrderStatus::Confirmed);
                accepted.push(order.order_id);
            }
            Err(status) => {
                assert!(
                    matches!(
                        status.code(),
                        Code::FailedPrecondition
                            | Code::Unavailable
                            | Code::Aborted
                            | Code::DeadlineExceeded
                    ),
                    "unexpected refusal {status:?}"
                );
                assert!(!status.message().is_empty());
                refused += 1;
            }
        }
    }
    println!("accepted {} of {BUYERS}, refused {refused}", accepted.len());
    assert!(
        accepted.len() <= 60,
        "oversold: {} orders for 60 units",
        accepted.len()
    );
    assert!(!accepted.is_empty());

    let (berlin, munich) = (
        level(&mut mesh, "HYPE", "fc-berlin").await,
        level(&mut mesh, "HYPE", "fc-munich").await,
    );
    assert_eq!(
        usize::try_from(berlin.1 + munich.1).unwrap(),
        accepted.len(),
        "every accepted order holds exactly its unit"
    );
    assert!(berlin.1 <= berlin.0 && munich.1 <= munich.0);
    for order_id in &accepted {
        let order = mesh
            .orders
            .get_order(pb::GetOrderRequest {
                order_id: order_id.clone(),
                user_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .order
            .unwrap();
        assert_eq!(order.status(), OrderStatus::Confirmed);
    }
    let confirmed = mesh
        .orders
        .list_orders(pb::ListOrdersRequest {
            statuses: vec![OrderStatus::Confirmed.into()],
            page: Some(oms_proto::common::v1::PageRequest {
                page_size: 500,
                page_token: String::new(),
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .orders;
    assert_eq!(
        confirmed.len(),
        accepted.len(),
        "every accepted order is persisted, nothing else is confirmed"
    );
    assert_audit_clean(&mut mesh).await;
    stop(mesh).await;
}
