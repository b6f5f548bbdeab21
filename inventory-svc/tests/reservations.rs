//! Reservations over gRPC: idempotent retries, commit and release, restock, and bad input that
//! gets a clear status and changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestInventory, reserve};
use futures::future::join_all;
use oms_proto::inventory::v1 as pb;
use tonic::Code;

const BERLIN: (&str, f64, f64) = ("fc-berlin", 52.52, 13.40);

on_both_databases!(a_retried_reserve_never_double_reserves, retried_reserve);
async fn retried_reserve(kind: &str) {
    let inventory = TestInventory::start(kind).await;
    inventory.seed(&["A"], &[BERLIN], 10).await;
    let request = reserve("order-1", &[("A", "fc-berlin", 3)]);
    // Twenty concurrent deliveries of the same request, then one more later.
    let results = join_all((0..20).map(|_| {
        let mut client = inventory.client.clone();
        let request = request.clone();
        async move {
            client
                .reserve(request)
                .await
                .map(|r| r.into_inner().reservation.unwrap())
        }
    }))
    .await;
    let ids: std::collections::BTreeSet<String> = results
        .into_iter()
        .map(|r| r.unwrap().reservation_id)
        .collect();
    assert_eq!(ids.len(), 1, "every retry returns the first reservation");
    let again = inventory
        .client
        .clone()
        .reserve(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(ids.contains(&again.reservation.unwrap().reservation_id));
    assert_eq!(inventory.level("A", "fc-berlin").await, (10, 3, 7));

    // The same key for a different request is refused and changes nothing.
    let mut other = reserve("order-2", &[("A", "fc-berlin", 1)]);
    other.idempotency_key = request.idempotency_key.clone();
    let refused = inventory.client.clone().reserve(other).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("different request"),
        "{}",
        refused.message()
    );
    assert_eq!(inventory.level("A", "fc-berlin").await, (10, 3, 7));
    inventory.assert_audit_clean().await;
}

on_both_databases!(commit_ships_release_returns_and_both_are_idempotent, settle);
async fn settle(kind: &str) {
    let inventory = TestInventory::start(kind).await;
    inventory.seed(&["A", "B"], &[BERLIN], 10).await;
    let mut client = inventory.client.clone();
    let reservation = client
        .reserve(reserve(
            "order-1",
            &[("A", "fc-berlin", 4), ("B", "fc-berlin", 2)],
        ))
        .await
        .unwrap()
        .into_inner()
        .reservation
        .unwrap();
    assert_eq!(reservation.status, pb::ReservationStatus::Active as i32);
    let confirmed = client
        .confirm_reservation(pb::ConfirmReservationRequest {
            reservation_id: reservation.reservation_id.clone(),
            idempotency_key: "confirm-1".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .reservation
        .unwrap();
    assert!(
        confirmed.expires_at.is_none(),
        "a confirmed reservation does not expire"
    );

    // Ship 3 of A (one shipment), twice with the same key.
    let commit = pb::CommitRequest {
        reservation_id: reservation.reservation_id.clone(),
        lines: vec![pb::ReservationLine {
            sku: "A".into(),
            location_id: "fc-berlin".into(),
            quantity: 3,
        }],
        idempotency_key: "ship-1".into(),
    };
    let partial = client
        .commit(commit.clone())
        .await
        .unwrap()
        .into_inner()
        .reservation
        .unwrap();
    client.commit(commit).await.unwrap();
    assert_eq!(partial.status, pb::ReservationStatus::Partial as i32);
    assert_eq!(inventory.level("A", "fc-berlin").await, (7, 1, 6));

    // Committing more than is held is refused.
    let too_much = client
        .commit(pb::CommitRequest {
            reservation_id: reservation.reservation_id.clone(),
            lines: vec![pb::ReservationLine {
                sku: "A".into(),
                location_id: "fc-berlin".into(),
                quantity: 2,
            }],
            idempotency_key: "ship-2".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(too_much.code(), Code::FailedPrecondition);

    // Cancel the rest.
    let release = pb::ReleaseRequest {
        reservation_id: reservation.reservation_id.clone(),
        lines: vec![],
        reason: "customer cancelled".into(),
        idempotency_key: "cancel-1".into(),
        ..Default::default()
    };
    let done = client
        .release(release.clone())
        .await
        .unwrap()
        .into_inner()
        .reservation
        .unwrap();
    client.release(release).await.unwrap();
    assert_eq!(
        done.status,
        pb::ReservationStatus::Committed as i32,
        "something shipped"
    );
    assert_eq!(inventory.level("A", "fc-berlin").await, (7, 0, 7));
    assert_eq!(inventory.level("B", "fc-berlin").await, (10, 0, 10));

    // A settled reservation cannot be settled again.
    let late = client
        .release(pb::ReleaseRequest {
            reservation_id: reservation.reservation_id.clone(),
            lines: vec![],
            reason: String::new(),
            idempotency_key: "cancel-2".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition);
    inventory.assert_audit_clean().await;
}

on_both_databases!(
    returns_restock_sellable_units_and_write_off_damaged_ones,
    restock
);
async fn restock(kind: &str) {
    let inventory = TestInventory::start(kind).await;
    inventory.seed(&["A"], &[BERLIN], 5).await;
    let request = pb::RestockRequest {
        order_id: "order-1".into(),
        return_id: "ret-1".into(),
        lines: vec![
            pb::RestockLine {
                sku: "A".into(),
                location_id: "fc-berlin".into(),
                quantity: 2,
                condition: pb::ItemCondition::Sellable.into(),
            },
            pb::RestockLine {
                sku: "A".into(),
                location_id: "fc-berlin".into(),
                quantity: 1,
                condition: pb::ItemCondition::Damaged.into(),
            },
        ],
        idempotency_key: "restock-ret-1".into(),
    };
    let answer = inventory
        .client
        .clone()
        .restock(request.clone())
        .await
        .unwrap()
        .into_inner();
    inventory.client.clone().restock(request).await.unwrap();
    assert_eq!(answer.written_off, 1);
    assert_eq!(inventory.level("A", "fc-berlin").await, (7, 0, 7));
    let movements = inventory
        .client
        .clone()
        .list_movements(pb::ListMovementsRequest {
            sku: "A".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .movements;
    let kinds: Vec<i32> = movements.iter().map(|m| m.kind).collect();
    assert_eq!(
        kinds,
        [
            pb::MovementKind::Receipt as i32,
            pb::MovementKind::ReturnRestock as i32,
            pb::MovementKind::WriteOff as i32
        ]
    );
    inventory.assert_audit_clean().await;
}

on_both_databases!(adjustments_cannot_take_on_hand_below_reserved, adjust);
async fn adjust(kind: &str) {
    let inventory = TestInventory::start(kind).await;
    inventory.seed(&["A"], &[BERLIN], 10).await;
    let mut client = inventory.client.clone();
    client
        .reserve(reserve("o", &[("A", "fc-berlin", 8)]))
        .await
        .unwrap();
    let adjust = |delta: i64, key: &str| pb::AdjustRequest {
        sku: "A".into(),
        location_id: "fc-berlin".into(),
        delta,
        reason: "cycle count".into(),
        idempotency_key: key.into(),
    };
    let refused = client.adjust(adjust(-3, "adj-1")).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused
            .message()
            .contains("would leave 7 on hand with 8 reserved"),
        "{}",
        refused.message()
    );
    let level = client
        .adjust(adjust(-2, "adj-2"))
        .await
        .unwrap()
        .into_inner()
        .level
        .unwrap();
    assert_eq!((level.on_hand, level.reserved, level.available), (8, 8, 0));
    inventory.assert_audit_clean().await;
}

on_both_databases!(bad_input_gets_a_clear_status_and_changes_nothing, bad_input);
async fn bad_input(kind: &str) {
    let inventory = TestInventory::start(kind).await;
    inventory.seed(&["A"], &[BERLIN], 10).await;
    let mut client = inventory.client.clone();
    let line =
        |sku: &str, location: &str, quantity: u32| (sku.to_owned(), location.to_owned(), quantity);
    type Case = (&'static str, Vec<(String, String, u32)>, Code);
    let cases: Vec<Case> = vec![
        ("empty lines", vec![], Code::InvalidArgument),
        (
            "zero quantity",
            vec![line("A", "fc-berlin", 0)],
            Code::InvalidArgument,
        ),
        (
            "huge quantity",
            vec![line("A", "fc-berlin", u32::MAX)],
            Code::InvalidArgument,
        ),
        (
            "duplicate lines",
            vec![line("A", "fc-berlin", 1), line("A", "fc-berlin", 2)],
            Code::InvalidArgument,
        ),
        (
            "over-long sku",
            vec![line(&"A".repeat(300), "fc-berlin", 1)],
            Code::InvalidArgument,
        ),
        (
            "sku with a dot",
            vec![line("A.B", "fc-berlin", 1)],
            Code::InvalidArgument,
        ),
        (
            "unknown sku",
            vec![line("NOPE", "fc-berlin", 1)],
            Code::NotFound,
        ),
        (
            "unknown location",
            vec![line("A", "fc-nowhere", 1)],
            Code::NotFound,
        ),
        (
            "more than on hand",
            vec![line("A", "fc-berlin", 11)],
            Code::FailedPrecondition,
        ),
    ];
    for (case, lines, code) in cases {
        let lines: Vec<(&str, &str, u32)> = lines
            .iter()
            .map(|(s, l, q)| (s.as_str(), l.as_str(), *q))
            .collect();
        let status = client
            .reserve(reserve("order-x", &lines))
            .await
            .unwrap_err();
        assert_eq!(status.code(), code, "{case}: {}", status.message());
        assert!(!status.message().is_empty(), "{case}");
    }
    let mut no_key = reserve("order-x", &[("A", "fc-berlin", 1)]);
    no_key.idempotency_key = String::new();
    assert_eq!(
        client.reserve(no_key).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    let negative = client
        .adjust(pb::AdjustRequest {
            sku: "A".into(),
            location_id: "fc-berlin".into(),
            delta: i64::MIN,
            reason: "x".into(),
            idempotency_key: "k".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(negative.code(), Code::InvalidArgument);
    let unknown = client
        .get_reservation(pb::GetReservationRequest {
            reservation_id: "res-missing".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    assert_eq!(
        inventory.level("A", "fc-berlin").await,
        (10, 0, 10),
        "nothing changed"
    );
    let movements = client
        .list_movements(pb::ListMovementsRequest {
            sku: "A".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .movements;
    assert_eq!(movements.len(), 1, "only the seed receipt is in the ledger");
    inventory.assert_audit_clean().await;
}

on_both_databases!(
    an_interrupted_placement_releases_by_order_id,
    release_by_order
);
async fn release_by_order(kind: &str) {
    let inventory = TestInventory::start(kind).await;
    inventory.seed(&["A"], &[BERLIN], 10).await;
    let mut client = inventory.client.clone();
    client
        .reserve(reserve("order-7", &[("A", "fc-berlin", 4)]))
        .await
        .unwrap();
    assert_eq!(inventory.level("A", "fc-berlin").await, (10, 4, 6));
    // The placement crashed before it learnt the reservation id: recovery names the order.
    let by_order = pb::ReleaseRequest {
        order_id: "order-7".into(),
        reason: "placement was interrupted".into(),
        idempotency_key: "interrupted-order-7".into(),
        ..Default::default()
    };
    let released = client.release(by_order.clone()).await.unwrap().into_inner();
    assert_eq!(
        released.reservation.unwrap().status(),
        pb::ReservationStatus::Released
    );
    assert_eq!(inventory.level("A", "fc-berlin").await, (10, 0, 10));
    // Again, and for an order that holds nothing: nothing to do, nothing changes.
    client.release(by_order).await.unwrap();
    let nothing = client
        .release(pb::ReleaseRequest {
            order_id: "order-unknown".into(),
            idempotency_key: "interrupted-order-unknown".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(nothing.reservation, None);
    assert_eq!(inventory.level("A", "fc-berlin").await, (10, 0, 10));
    // Neither a reservation nor an order: a clear refusal.
    let refused = client
        .release(pb::ReleaseRequest {
            idempotency_key: "k".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    inventory.assert_audit_clean().await;
}
