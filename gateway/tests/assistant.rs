//! Ordering by talking, through the gateway: a conversation builds a cart, quotes delivery,
//! places after "yes" (a second "yes" orders nothing more), answers "where is my order" with
//! the status, and "cancel it" cancels it. Converse needs orders:write; bad turns are refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Mesh, eventually, stop, token, with_token};
use oms_proto::{
    catalog::v1 as cat,
    common::v1::{Address, GeoPoint},
    mobile::v1 as pb,
    order::v1::OrderStatus,
};
use tonic::Code;

fn say(session: &str, text: &str) -> pb::ConverseRequest {
    pb::ConverseRequest {
        session_id: session.into(),
        locale: "en".into(),
        text: text.into(),
        address: Some(Address {
            country_code: "DE".into(),
            region: "DE-BE".into(),
            location: Some(GeoPoint {
                lat: 52.51,
                lng: 13.39,
            }),
            ..Default::default()
        }),
    }
}

async fn turn(mesh: &mut Mesh, token: &str, session: &str, text: &str) -> pb::ConverseResponse {
    mesh.gateway
        .converse(with_token(say(session, text), token))
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoken_order_from_cart_to_cancellation() {
    let mut mesh = common::start(1000).await;
    mesh.catalog
        .upsert_product(cat::UpsertProductRequest {
            product: Some(cat::Product {
                sku: "TEE".into(),
                texts: vec![cat::LocalizedText {
                    locale: "en".into(),
                    title: "Tee".into(),
                    ..Default::default()
                }],
                category_path: vec!["apparel".into()],
                active: true,
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let ada = token(&mesh, "ada", "orders:read orders:write");
    let reader = token(&mesh, "bob", "orders:read");
    let refused = mesh
        .gateway
        .converse(with_token(say("s", "add a tee"), &reader))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let empty = mesh
        .gateway
        .converse(with_token(say("s", "  "), &ada))
        .await
        .unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument);
    let long = mesh
        .gateway
        .converse(with_token(say("s", &"order ".repeat(2_000)), &ada))
        .await
        .unwrap_err();
    assert_eq!(long.code(), Code::InvalidArgument, "a 12 KB turn");
    let noise: String = (0..1_500u32)
        .map(|i| char::from_u32(0x20 + (i * 7919) % 0x2FF).unwrap_or('?'))
        .collect();
    let answered = turn(&mut mesh, &ada, "noise", &noise).await;
    assert!(
        !answered.reply.is_empty(),
        "garbage gets an answer, not a failure"
    );

    // The assistant learns the catalog's names in the background.
    let gateway = mesh.gateway.clone();
    let mut probe = 0;
    eventually("the tee known to the assistant", || {
        probe += 1;
        let (mut gateway, ada) = (gateway.clone(), ada.clone());
        let session = format!("probe-{probe}");
        async move {
            let reply = gateway
                .converse(with_token(say(&session, "add a tee"), &ada))
                .await
                .ok()?
                .into_inner();
            reply.draft.filter(|d| !d.lines.is_empty())
        }
    })
    .await;

    let added = turn(&mut mesh, &ada, "talk", "uh add two tees please").await;
    assert_eq!(added.understood.as_ref().unwrap().intent, "add_item");
    let draft = added.draft.unwrap();
    assert_eq!(
        (draft.lines[0].sku.as_str(), draft.lines[0].quantity),
        ("TEE", 2)
    );
    let corrected = turn(&mut mesh, &ada, "talk", "make that three").await;
    assert_eq!(corrected.draft.unwrap().lines[0].quantity, 3);

    let read_back = turn(&mut mesh, &ada, "talk", "place the order").await;
    assert!(read_back.reply.contains("3 × Tee"), "{}", read_back.reply);
    assert!(read_back.reply.contains("EUR"), "{}", read_back.reply);
    assert!(
        read_back.reply.ends_with("Shall I place it?"),
        "{}",
        read_back.reply
    );
    assert!(
        read_back.order_id.is_empty(),
        "nothing placed before the yes"
    );

    let placed = turn(&mut mesh, &ada, "talk", "yes").await;
    assert!(!placed.order_id.is_empty(), "{}", placed.reply);
    let again = turn(&mut mesh, &ada, "talk", "yes").await;
    assert!(again.order_id.is_empty(), "{}", again.reply);
    let listed = mesh
        .gateway
        .list_orders(with_token(pb::ListOrdersRequest::default(), &ada))
        .await
        .unwrap()
        .into_inner()
        .orders;
    assert_eq!(listed.len(), 1, "one order for two yeses");
    assert_eq!(listed[0].order_id, placed.order_id);

    let status = turn(&mut mesh, &ada, "talk", "where is my order").await;
    assert_eq!(status.order_id, placed.order_id);
    assert!(status.reply.contains("confirmed"), "{}", status.reply);

    let cancelled = turn(&mut mesh, &ada, "talk", "cancel it").await;
    assert_eq!(cancelled.order_id, placed.order_id);
    let order = mesh
        .gateway
        .get_order(with_token(
            pb::GetOrderRequest {
                order_id: placed.order_id.clone(),
            },
            &ada,
        ))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(order.status(), OrderStatus::Cancelled);
    stop(mesh).await;
}
