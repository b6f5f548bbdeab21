//! Flash sales: a thousand concurrent buyers never get more than the stock, on SQLite and
//! PostgreSQL, with expiries and releases racing the reservations; the audit stays clean.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{collections::BTreeMap, time::Duration};

use common::{TestInventory, reserve};
use futures::future::join_all;
use oms_proto::inventory::v1 as pb;
use rand::{Rng, SeedableRng, rngs::StdRng};
use tonic::Code;

const LOCATIONS: [(&str, f64, f64); 2] = [("fc-berlin", 52.52, 13.40), ("fc-munich", 48.14, 11.58)];

on_both_databases!(
    a_thousand_buyers_of_one_hot_sku_buy_exactly_the_stock,
    hot_sku
);
async fn hot_sku(kind: &str) {
    let inventory = TestInventory::start(kind).await;
    inventory.seed(&["HOT"], &LOCATIONS[..1], 100).await;
    let attempts = (0..1000).map(|i| {
        let mut client = inventory.client.clone();
        async move {
            client
                .reserve(reserve(&format!("o{i}"), &[("HOT", "fc-berlin", 1)]))
                .await
        }
    });
    let results = join_all(attempts).await;
    let sold = results.iter().filter(|r| r.is_ok()).count();
    let refused: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(sold, 100, "exactly the stock is sold");
    assert!(
        refused.iter().all(|s| s.code() == Code::FailedPrecondition),
        "{refused:?}"
    );
    assert!(refused[0].message().contains("out of stock"));
    assert_eq!(inventory.level("HOT", "fc-berlin").await, (100, 100, 0));
    inventory.assert_audit_clean().await;
}

on_both_databases!(
    mixed_multi_line_orders_never_oversell_any_level,
    mixed_orders
);
async fn mixed_orders(kind: &str) {
    let inventory = TestInventory::start(kind).await;
    let skus = ["A", "B", "C"];
    inventory.seed(&skus, &LOCATIONS, 100).await;
    let mut rng = StdRng::seed_from_u64(7);
    let orders: Vec<Vec<(String, String, u32)>> = (0..1000)
        .map(|_| {
            let mut lines = BTreeMap::new();
            for _ in 0..rng.random_range(1..=3) {
                let sku = skus[rng.random_range(0..skus.len())].to_owned();
                let location = LOCATIONS[rng.random_range(0..LOCATIONS.len())].0.to_owned();
                lines.insert((sku, location), rng.random_range(1..=3u32));
            }
            lines.into_iter().map(|((s, l), q)| (s, l, q)).collect()
        })
        .collect();
    let attempts = orders.iter().enumerate().map(|(i, lines)| {
        let mut client = inventory.client.clone();
        let lines: Vec<(&str, &str, u32)> = lines
            .iter()
            .map(|(s, l, q)| (s.as_str(), l.as_str(), *q))
            .collect();
        let request = reserve(&format!("o{i}"), &lines);
        async move { client.reserve(request).await }
    });
    let results = join_all(attempts).await;

    let mut sold: BTreeMap<(String, String), i64> = BTreeMap::new();
    for (lines, result) in orders.iter().zip(&results) {
        match result {
            Ok(_) => {
                for (sku, location, quantity) in lines {
                    *sold.entry((sku.clone(), location.clone())).or_default() +=
                        i64::from(*quantity);
                }
            }
            Err(status) => assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}"),
        }
    }
    for sku in skus {
        for (location, _, _) in LOCATIONS {
            let (on_hand, reserved, available) = inventory.level(sku, location).await;
            let sold_here = sold
                .get(&(sku.to_owned(), location.to_owned()))
                .copied()
                .unwrap_or(0);
            assert_eq!(on_hand, 100);
            assert_eq!(
                reserved, sold_here,
                "{sku}@{location}: reserved is what succeeded"
            );
            assert!(reserved <= on_hand, "{sku}@{location}: oversold");
            assert_eq!(
                sold_here + available,
                100,
                "{sku}@{location}: stock conserved"
            );
            assert!(
                available < 3,
                "{sku}@{location}: demand was ten times the stock"
            );
        }
    }
    inventory.assert_audit_clean().await;
}

on_both_databases!(
    expiries_and_releases_racing_new_buyers_keep_the_books_straight,
    churn
);
async fn churn(kind: &str) {
    let inventory = TestInventory::start(kind).await;
    inventory.seed(&["HOT"], &LOCATIONS[..1], 100).await;
    // Wave 1: reservations that will expire in one second.
    let wave = |prefix: &'static str, ttl: u32, count: usize| {
        let client = inventory.client.clone();
        async move {
            join_all((0..count).map(|i| {
                let mut client = client.clone();
                let mut request = reserve(&format!("{prefix}{i}"), &[("HOT", "fc-berlin", 1)]);
                request.ttl_seconds = ttl;
                async move {
                    client
                        .reserve(request)
                        .await
                        .map(|r| r.into_inner().reservation.unwrap())
                }
            }))
            .await
        }
    };
    let expiring: Vec<_> = wave("exp", 1, 60)
        .await
        .into_iter()
        .filter_map(Result::ok)
        .collect();
    assert_eq!(expiring.len(), 60);
    let kept: Vec<_> = wave("keep", 0, 40)
        .await
        .into_iter()
        .filter_map(Result::ok)
        .collect();
    assert_eq!(kept.len(), 40);
    assert_eq!(inventory.level("HOT", "fc-berlin").await, (100, 100, 0));

    // Wave 2, while the first wave expires: releases of half the kept ones race new buyers.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let releases = kept.iter().take(20).map(|r| {
        let mut client = inventory.client.clone();
        let request = pb::ReleaseRequest {
            reservation_id: r.reservation_id.clone(),
            lines: vec![],
            reason: "customer cancelled".into(),
            idempotency_key: format!("release-{}", r.reservation_id),
            ..Default::default()
        };
        async move { client.release(request).await }
    });
    let buyers = async {
        let mut bought = Vec::new();
        for round in 0..20 {
            bought.extend(wave("late", 0, 10).await.into_iter().filter_map(Result::ok));
            tokio::time::sleep(Duration::from_millis(50 + round * 5)).await;
        }
        bought
    };
    let (released, late) = tokio::join!(join_all(releases), buyers);
    assert!(released.iter().all(Result::is_ok));
    // Let the sweeper finish the first wave, then settle the books.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let holding = 40 - 20 + late.len() as i64;
    let (on_hand, reserved, available) = inventory.level("HOT", "fc-berlin").await;
    assert_eq!(on_hand, 100);
    assert_eq!(
        reserved, holding,
        "kept + late buyers hold stock; expired and released do not"
    );
    assert_eq!(available, 100 - holding);
    assert!(
        late.len() <= 80,
        "late buyers got at most what expired and was released"
    );
    for expired in &expiring {
        let now = inventory
            .client
            .clone()
            .get_reservation(pb::GetReservationRequest {
                reservation_id: expired.reservation_id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .reservation
            .unwrap();
        assert_eq!(now.status, pb::ReservationStatus::Expired as i32);
    }
    inventory.assert_audit_clean().await;
}
