//! Faults on the production topology (loopback only, bounded, self-stopping): a service killed
//! mid-load, NATS down for 30 s, PostgreSQL restarted, the gateway killed under open streams.
//! Afterwards no accepted order is lost, nothing is oversold, the inventory audit is clean and
//! every status change reached each app's stream exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use common::topology::*;
use oms::mesh::{App, Operator, Protocol};
use oms_proto::{
    mobile::v1 as mobile,
    order::v1::{self as ord, OrderStatus},
};
use tokio_util::sync::CancellationToken;
use tonic::Code;

/// What the apps were told.
#[derive(Debug, Default)]
struct Outcomes {
    /// (user, order id) of every order the app was told is placed.
    accepted: Vec<(String, String)>,
    sold_out: usize,
    /// Placements a fault interrupted: recovery rejected them, and the retry says so.
    interrupted: usize,
    /// Answers that were neither: an app never gives up on a transient error, so none.
    failed: Vec<String>,
    /// Transient errors the apps retried through (the fault was felt).
    retries: usize,
}

/// Places an order the way the SDK does: retries transient failures with the same key
/// until it gets an answer that means something.
async fn place_until_answered(
    app: &mut App,
    request: mobile::PlaceOrderRequest,
    retries: &mut usize,
) -> Result<ord::Order, tonic::Status> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        match app.place_order(request.clone()).await {
            Ok(placed) => return Ok(placed.into_inner().order.unwrap()),
            Err(status)
                if Instant::now() < deadline
                    && matches!(
                        status.code(),
                        Code::Unavailable
                            | Code::Aborted
                            | Code::DeadlineExceeded
                            | Code::ResourceExhausted
                            | Code::Unknown
                            | Code::Internal
                    ) =>
            {
                *retries += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(status) => return Err(status),
        }
    }
}

/// `users` apps each placing `per_user` one-cap orders back to back.
fn shoppers(
    apps: Vec<(String, App)>,
    per_user: usize,
    pause: Duration,
) -> tokio::task::JoinHandle<Outcomes> {
    tokio::spawn(async move {
        let outcomes = Arc::new(Mutex::new(Outcomes::default()));
        let mut tasks = Vec::new();
        for (user, mut app) in apps {
            let outcomes = outcomes.clone();
            tasks.push(tokio::spawn(async move {
                for n in 0..per_user {
                    let request = order_request(&format!("{user}-{n}"), &[("CAP", 1)]);
                    let mut retries = 0;
                    let answer = place_until_answered(&mut app, request, &mut retries).await;
                    {
                        let mut outcomes = outcomes.lock().unwrap();
                        outcomes.retries += retries;
                        match answer {
                            Ok(order) if order.status() == OrderStatus::Confirmed => {
                                outcomes.accepted.push((user.clone(), order.order_id));
                            }
                            Ok(order) if order.status() == OrderStatus::Rejected => {
                                outcomes.interrupted += 1;
                            }
                            Ok(order) => outcomes.failed.push(format!("{:?}", order.status())),
                            Err(status) if status.code() == Code::FailedPrecondition => {
                                outcomes.sold_out += 1;
                            }
                            Err(status) => outcomes.failed.push(status.to_string()),
                        }
                    }
                    tokio::time::sleep(pause).await;
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        Arc::try_unwrap(outcomes).unwrap().into_inner().unwrap()
    })
}

async fn apps(mesh: &Topology, prefix: &str, count: usize) -> Vec<(String, App)> {
    let mut apps = Vec::new();
    for n in 0..count {
        let user = format!("{prefix}-{n}");
        apps.push((user.clone(), mesh.app(&user, Protocol::Grpc).await));
    }
    apps
}

/// No accepted order lost, none the apps were not told about, nothing oversold, books clean.
async fn assert_nothing_lost_or_oversold(
    operator: &mut Operator,
    outcomes: &Outcomes,
    stock: i64,
    users: &[String],
) {
    assert!(outcomes.failed.is_empty(), "{:?}", outcomes.failed);
    for (user, order_id) in &outcomes.accepted {
        let order = operator
            .orders
            .get_order(ord::GetOrderRequest {
                order_id: order_id.clone(),
                user_id: user.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .order
            .unwrap();
        assert_eq!(order.status(), OrderStatus::Confirmed, "{order:#?}");
    }
    // Interrupted placements settle (recovery): what stays reserved is exactly what was sold.
    let accepted: BTreeSet<&String> = outcomes.accepted.iter().map(|(_, id)| id).collect();
    let sold = accepted.len() as i64;
    let mut level = (0, 0);
    for _ in 0..300 {
        level = operator.level("CAP", "fc-munich").await.unwrap();
        if level.1 == sold {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(level, (stock, sold), "(on hand, reserved) vs {sold} sold");
    assert!(sold <= stock, "oversold: {sold} of {stock}");
    // Every confirmed order is one an app was told about: no phantom holding stock.
    for user in users {
        let listed = operator
            .orders
            .list_orders(ord::ListOrdersRequest {
                user_id: user.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        for order in listed.orders {
            if order.status() == OrderStatus::Confirmed {
                assert!(accepted.contains(&order.order_id), "unannounced {order:#?}");
            }
        }
    }
    assert_eq!(operator.audit().await.unwrap(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_killed_mid_load_loses_no_order_and_oversells_nothing() {
    let mut mesh = Topology::start().await;
    let mut operator = mesh.operator().await;
    seed(&mut operator, &[("CAP", "fc-munich", 60)]).await;
    let apps = apps(&mesh, "kill", 10).await;
    let users: Vec<String> = apps.iter().map(|(u, _)| u.clone()).collect();
    // 10 shoppers × 8 orders = 80 attempts on 60 caps.
    let load = shoppers(apps, 8, Duration::from_millis(100));
    tokio::time::sleep(Duration::from_millis(700)).await;
    mesh.kill_service("inventory");
    tokio::time::sleep(Duration::from_secs(2)).await;
    mesh.start_service("inventory").await;
    let outcomes = load.await.unwrap();
    assert!(!outcomes.accepted.is_empty());
    assert!(outcomes.retries > 0, "no app felt the outage: {outcomes:?}");
    assert_eq!(
        outcomes.accepted.len() + outcomes.sold_out + outcomes.interrupted,
        80,
        "{outcomes:?}"
    );
    assert_nothing_lost_or_oversold(&mut operator, &outcomes, 60, &users).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_loses_no_order_and_oversells_nothing() {
    let postgres = PrivatePostgres::start().await;
    let mesh = Topology::start_on_private(&postgres).await;
    let mut operator = mesh.operator().await;
    seed(&mut operator, &[("CAP", "fc-munich", 50)]).await;
    let apps = apps(&mesh, "pg", 8).await;
    let users: Vec<String> = apps.iter().map(|(u, _)| u.clone()).collect();
    let load = shoppers(apps, 8, Duration::from_millis(100));
    tokio::time::sleep(Duration::from_millis(700)).await;
    // The pools reconnect, so a quick restart may cost the apps nothing; what matters is that
    // orders were still coming when it happened.
    assert!(!load.is_finished(), "the load ended before the restart");
    postgres.restart();
    let outcomes = load.await.unwrap();
    assert_eq!(
        outcomes.accepted.len() + outcomes.sold_out + outcomes.interrupted,
        64,
        "{outcomes:?}"
    );
    assert_nothing_lost_or_oversold(&mut operator, &outcomes, 50, &users).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_down_for_30_seconds_delays_events_but_loses_none() {
    let mut mesh = Topology::start().await;
    let mut operator = mesh.operator().await;
    seed(&mut operator, &[("CAP", "fc-munich", 100)]).await;
    let stop = CancellationToken::new();
    let mut followers = Vec::new();
    for n in 0..4 {
        let user = format!("nats-{n}");
        followers.push((
            user.clone(),
            follow(mesh.app(&user, Protocol::Grpc).await, stop.clone()),
        ));
    }
    let apps = apps(&mesh, "nats", 4).await;
    let users: Vec<String> = apps.iter().map(|(u, _)| u.clone()).collect();

    mesh.nats.stop();
    let down = Instant::now();
    // Orders keep coming for the 30 s the bus is away: 4 shoppers, one order every 2.5 s each.
    let outcomes = shoppers(apps, 12, Duration::from_millis(2_500))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(down.elapsed())).await;
    for (user, seen) in &followers {
        let seen = seen.lock().unwrap();
        assert!(
            seen.statuses.is_empty(),
            "{user}'s stream moved without the bus: {seen:?}"
        );
    }
    mesh.nats.restart().await;
    assert_eq!(
        outcomes.accepted.len(),
        48,
        "orders are accepted with the bus down: {outcomes:?}"
    );

    // Every confirmation reaches its buyer's stream once; every order is dispatched.
    for (user, seen) in &followers {
        let mine: Vec<&String> = outcomes
            .accepted
            .iter()
            .filter(|(u, _)| u == user)
            .map(|(_, id)| id)
            .collect();
        eventually(seen, "every confirmation after the outage", |s| {
            mine.iter()
                .all(|id| s.of(id).contains(&OrderStatus::Confirmed))
        })
        .await;
    }
    for (_, order_id) in &outcomes.accepted {
        wait_for_dispatch(&mut operator, order_id, 1).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    for (_, seen) in &followers {
        seen.lock().unwrap().assert_exactly_once_in_order();
    }
    assert_nothing_lost_or_oversold(&mut operator, &outcomes, 100, &users).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_resume_after_the_gateway_dies_without_gaps_or_repeats() {
    let mut mesh = Topology::start().await;
    let mut operator = mesh.operator().await;
    seed(&mut operator, &[("CAP", "fc-munich", 200)]).await;
    let stop = CancellationToken::new();
    let users: Vec<String> = (0..6).map(|n| format!("gw-{n}")).collect();
    let mut followers = Vec::new();
    for user in &users {
        followers.push(follow(mesh.app(user, Protocol::Grpc).await, stop.clone()));
    }
    // Orders come in through other channels (here straight to order-svc) while the gateway
    // is down; each puts a status change on its buyer's stream.
    let placing = {
        let (mut orders, users) = (operator.orders.clone(), users.clone());
        tokio::spawn(async move {
            let mut placed = Vec::new();
            for n in 0..36 {
                let user = &users[n % users.len()];
                let request = ord::PlaceOrderRequest {
                    user_id: user.clone(),
                    idempotency_key: format!("gw-{n}"),
                    lines: vec![ord::OrderLineInput {
                        sku: "CAP".into(),
                        quantity: 1,
                    }],
                    shipping_address: Some(oms_platform::sample::berlin_address()),
                    currency_code: "EUR".into(),
                    ..Default::default()
                };
                let order = orders
                    .place_order(request)
                    .await
                    .unwrap()
                    .into_inner()
                    .order
                    .unwrap();
                placed.push((n % users.len(), order.order_id));
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            placed
        })
    };
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    mesh.kill_service("gateway");
    tokio::time::sleep(Duration::from_secs(2)).await;
    mesh.start_service("gateway").await;
    let placed = placing.await.unwrap();

    for (index, seen) in followers.iter().enumerate() {
        let mine: Vec<&String> = placed
            .iter()
            .filter(|(user, _)| *user == index)
            .map(|(_, id)| id)
            .collect();
        eventually(seen, "every confirmation across the restart", |s| {
            mine.iter().all(|id| !s.of(id).is_empty())
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    for (index, seen) in followers.iter().enumerate() {
        let seen = seen.lock().unwrap();
        assert!(seen.reconnects >= 1, "app {index} never lost its stream");
        seen.assert_exactly_once_in_order();
        let mine = placed.iter().filter(|(user, _)| *user == index).count();
        assert_eq!(seen.statuses.len(), mine, "{seen:#?}");
    }
}
