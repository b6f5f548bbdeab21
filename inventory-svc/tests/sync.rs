//! The mobile cache sync protocol: an offline app catches up from its cursor, cart holds keep
//! what the user sees really there, stale cart lines are reported, holds expire and convert at
//! checkout; level changes reach the bus.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{TestInventory, reserve};
use futures::StreamExt;
use oms_platform::bus::{Area, ConsumerSpec};
use oms_proto::{common::v1::GeoPoint, events::v1::envelope::Payload, inventory::v1 as pb};

const BERLIN: (&str, f64, f64) = ("fc-berlin", 52.52, 13.40);
const MUNICH: (&str, f64, f64) = ("fc-munich", 48.14, 11.58);

async fn sync(inventory: &TestInventory, since: i64) -> pb::SyncInventoryResponse {
    inventory
        .client
        .clone()
        .sync_inventory(pb::SyncInventoryRequest {
            since_seq: since,
            skus: vec![],
            limit: 2,
        })
        .await
        .unwrap()
        .into_inner()
}

/// Follows the feed from `cursor` to its end; returns the deltas and the new cursor.
async fn catch_up(inventory: &TestInventory, mut cursor: i64) -> (Vec<pb::StockDelta>, i64) {
    let mut deltas = Vec::new();
    loop {
        let page = sync(inventory, cursor).await;
        cursor = page.next_seq;
        deltas.extend(page.deltas);
        if !page.has_more {
            return (deltas, cursor);
        }
    }
}

on_both_databases!(
    an_offline_app_catches_up_with_exactly_what_it_missed,
    offline_catch_up
);
async fn offline_catch_up(kind: &str) {
    let inventory = TestInventory::start(kind).await;
    inventory
        .seed(&["A", "B", "C", "D"], &[BERLIN, MUNICH], 10)
        .await;
    inventory.wait_for_feed("D", 20).await;
    let (snapshot, cursor) = catch_up(&inventory, 0).await;
    let mut skus: Vec<_> = snapshot.iter().map(|d| d.sku.clone()).collect();
    skus.sort();
    assert_eq!(
        skus,
        ["A", "B", "C", "D"],
        "pages of 2 never split or repeat a SKU"
    );

    // The app goes offline; A changes three times, C once.
    let mut client = inventory.client.clone();
    for i in 0..3 {
        client
            .reserve(reserve(&format!("o{i}"), &[("A", "fc-berlin", 1)]))
            .await
            .unwrap();
    }
    client
        .reserve(reserve("o9", &[("C", "fc-munich", 4)]))
        .await
        .unwrap();
    inventory.wait_for_feed("A", 17).await;
    inventory.wait_for_feed("C", 16).await;

    let (missed, next) = catch_up(&inventory, cursor).await;
    let latest: Vec<(String, i64)> = missed
        .iter()
        .map(|d| (d.sku.clone(), d.available))
        .collect();
    assert_eq!(
        latest.len(),
        2,
        "compacted: one delta per changed SKU, got {latest:?}"
    );
    assert!(latest.contains(&("A".into(), 17)));
    assert!(latest.contains(&("C".into(), 16)));
    assert!(next > cursor);
    let (nothing, same) = catch_up(&inventory, next).await;
    assert!(nothing.is_empty());
    assert_eq!(same, next);
}

on_both_databases!(
    cart_holds_keep_stock_report_stale_lines_expire_and_convert,
    cart_holds
);
async fn cart_holds(kind: &str) {
    let inventory = TestInventory::start(kind).await;
    inventory.seed(&["A", "B"], &[BERLIN, MUNICH], 3).await;
    inventory.wait_for_feed("B", 6).await;
    let version_seen = catch_up(&inventory, 0)
        .await
        .0
        .into_iter()
        .find(|d| d.sku == "A")
        .unwrap()
        .version;
    let mut client = inventory.client.clone();
    let cart = |lines: Vec<(&str, u32, i64, &str)>| pb::SyncCartRequest {
        user_id: "alice".into(),
        lines: lines
            .into_iter()
            .map(|(sku, quantity, seen_version, op)| pb::CartLine {
                sku: sku.into(),
                quantity,
                seen_version,
                client_op_id: op.into(),
            })
            .collect(),
        near: Some(GeoPoint {
            lat: 52.5,
            lng: 13.4,
        }),
    };

    // Alice holds 4 of A: 3 from Berlin (nearest), 1 from Munich.
    let held = client
        .sync_cart(cart(vec![
            ("A", 4, version_seen, "op-1"),
            ("B", 1, 0, "op-1"),
        ]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(held.lines[0].held_quantity, 4);
    assert_eq!(held.lines[0].status, pb::CartLineStatus::Held as i32);
    assert!(!held.lines[0].stale);
    assert_eq!(inventory.level("A", "fc-berlin").await, (3, 3, 0));
    assert_eq!(inventory.level("A", "fc-munich").await, (3, 1, 2));

    // Meanwhile someone else buys A; Alice's cache is now stale and she cannot get 6.
    client
        .reserve(reserve("bob-1", &[("A", "fc-munich", 1)]))
        .await
        .unwrap();
    inventory.wait_for_feed("A", 1).await;
    let synced = client
        .sync_cart(cart(vec![("A", 6, version_seen, "op-2")]))
        .await
        .unwrap()
        .into_inner();
    let a = &synced.lines[0];
    assert!(
        a.stale,
        "the app saw version {version_seen}, the server has {}",
        a.version
    );
    assert_eq!(a.held_quantity, 5, "everything left");
    assert_eq!(a.status, pb::CartLineStatus::Partial as i32);
    assert_eq!(
        inventory.level("B", "fc-berlin").await.1,
        0,
        "B left the cart: its hold is released"
    );

    // A retried sync of the same edit changes nothing.
    let retried = client
        .sync_cart(cart(vec![("A", 6, version_seen, "op-2")]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retried.lines[0].held_quantity, 5);

    // At checkout the hold converts: Alice reserves 5 though nobody else could.
    let mut order = reserve("alice-1", &[("A", "fc-berlin", 3), ("A", "fc-munich", 2)]);
    order.user_id = "alice".into();
    client.reserve(order).await.unwrap();
    assert_eq!(inventory.level("A", "fc-berlin").await, (3, 3, 0));
    assert_eq!(inventory.level("A", "fc-munich").await, (3, 3, 0));
    inventory.assert_audit_clean().await;

    // A new hold lapses when the app stops syncing, and its stock returns.
    let receive = pb::ReceiveRequest {
        sku: "B".into(),
        location_id: "fc-berlin".into(),
        quantity: 2,
        reason: "delivery".into(),
        idempotency_key: "rcv-b".into(),
    };
    client.receive(receive).await.unwrap();
    let ttl = client
        .sync_cart(cart(vec![("B", 2, 0, "op-3")]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ttl.lines[0].held_quantity, 2);
    assert!(ttl.holds_expire_at.is_some());
    let held_now = inventory.level("B", "fc-berlin").await.1;
    assert!(held_now >= 2);
    tokio::time::sleep(Duration::from_millis(2600)).await;
    assert_eq!(
        inventory.level("B", "fc-berlin").await.1,
        held_now - 2,
        "the hold expired"
    );
    inventory.assert_audit_clean().await;
}

on_both_databases!(the_per_user_hold_cap_applies, hold_cap);
async fn hold_cap(kind: &str) {
    let inventory = TestInventory::start_with(kind, |config| config.max_held_units = 3).await;
    inventory.seed(&["A"], &[BERLIN], 10).await;
    let answer = inventory
        .client
        .clone()
        .sync_cart(pb::SyncCartRequest {
            user_id: "carol".into(),
            lines: vec![pb::CartLine {
                sku: "A".into(),
                quantity: 5,
                ..Default::default()
            }],
            near: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.lines[0].held_quantity, 3);
    assert_eq!(
        answer.lines[0].status,
        pb::CartLineStatus::CapReached as i32
    );
}

on_both_databases!(level_changes_and_low_stock_reach_the_bus, events);
async fn events(kind: &str) {
    let inventory = TestInventory::start(kind).await;
    let mut events = inventory
        .bus
        .consume(ConsumerSpec::replay(Area::Inventory, 1))
        .await
        .unwrap();
    inventory.seed(&["A"], &[BERLIN], 8).await;
    // Sequenced apart, the receipt and the reservation cross the threshold of 5 downwards;
    // sequenced together, available would go 0 -> 4 and rightly cross nothing.
    inventory.wait_for_feed("A", 8).await;
    inventory
        .client
        .clone()
        .reserve(reserve("o1", &[("A", "fc-berlin", 4)]))
        .await
        .unwrap();
    let (mut levels, mut low, mut reservations) = (Vec::new(), Vec::new(), 0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline
        && (low.is_empty() || levels.len() < 2 || reservations == 0)
    {
        let Ok(Some(Ok(delivery))) =
            tokio::time::timeout(Duration::from_millis(200), events.next()).await
        else {
            continue;
        };
        match delivery.envelope.payload.clone() {
            Some(Payload::StockLevelChanged(changed)) => levels.push(changed),
            Some(Payload::LowStockCrossed(crossed)) => low.push(crossed),
            Some(Payload::ReservationChanged(_)) => reservations += 1,
            _ => {}
        }
        delivery.ack().await.unwrap();
    }
    let last = levels.last().expect("level changes published");
    assert_eq!(last.level.as_ref().unwrap().available, 4);
    assert_eq!(last.sku_available, 4);
    assert!(last.level.as_ref().unwrap().change_seq > 0);
    assert_eq!(reservations, 1);
    assert!(
        low.iter()
            .any(|l| l.sku == "A" && l.low && l.available == 4),
        "threshold 5 crossed: {low:?}"
    );
}
