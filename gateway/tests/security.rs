//! The gateway in front of real services (SQLite, in-process bus): tokens that must be
//! refused are refused, users only ever reach their own orders and streams, oversized
//! messages are refused, and one user's flood does not slow another.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use common::{place, start, stop, with_token};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use oms_gateway::dev_key::{self, DEV_AUDIENCE, DEV_ISSUER};
use oms_proto::mobile::v1 as pb;
use serde_json::json;
use tonic::Code;

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn claims(sub: &str) -> serde_json::Value {
    json!({"iss": DEV_ISSUER, "aud": DEV_AUDIENCE, "sub": sub, "scope": "orders:read orders:write", "iat": now(), "nbf": now(), "exp": now() + 600})
}

fn rs256(claims: &serde_json::Value) -> String {
    let key = EncodingKey::from_rsa_pem(include_bytes!("data/rsa-test-key.pem")).unwrap();
    encode(
        &Header {
            kid: Some("test-rsa".into()),
            ..Header::new(Algorithm::RS256)
        },
        claims,
        &key,
    )
    .unwrap()
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_token_is_unauthenticated_and_users_reach_only_their_own_orders() {
    let mut mesh = start(1000).await;
    let ada = mesh
        .key
        .mint("ada", "orders:read orders:write", Duration::from_secs(600))
        .unwrap();
    let order = mesh
        .gateway
        .place_order(with_token(place("k1"), &ada))
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(order.user_id, "ada", "the user is the token's subject");
    let rsa_ada = rs256(&claims("ada"));
    let listed = mesh
        .gateway
        .list_orders(with_token(pb::ListOrdersRequest::default(), &rsa_ada))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed.orders.len(),
        1,
        "an RS256 token of the same provider works too"
    );

    let es_kid = kid_of(&ada);
    let mut expired = claims("ada");
    expired["exp"] = json!(now() - 120);
    let mut early = claims("ada");
    early["nbf"] = json!(now() + 600);
    let mut foreign_issuer = claims("ada");
    foreign_issuer["iss"] = json!("https://evil.example");
    let mut foreign_audience = claims("ada");
    foreign_audience["aud"] = json!("another-api");
    // A key the provider never published, claiming the provider's key id.
    let stranger_dir = tempfile::tempdir().unwrap();
    let stranger = dev_key::ensure(stranger_dir.path())
        .unwrap()
        .mint("ada", "orders:read", Duration::from_secs(600))
        .unwrap();
    let (_, stranger_rest) = stranger.split_once('.').unwrap();
    let stranger_header =
        URL_SAFE_NO_PAD.encode(json!({"alg": "ES256", "kid": es_kid, "typ": "JWT"}).to_string());
    let wrong_key = format!("{stranger_header}.{stranger_rest}");
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": es_kid}).to_string()),
        URL_SAFE_NO_PAD.encode(claims("ada").to_string())
    );
    // HS256 "signed" with the public key, the classic algorithm-confusion forgery.
    let public = std::fs::read("tests/data/rsa-test-key.pub.pem").unwrap();
    let hs256 = encode(
        &Header {
            kid: Some("test-rsa".into()),
            ..Header::new(Algorithm::HS256)
        },
        &claims("ada"),
        &EncodingKey::from_secret(&public),
    )
    .unwrap();
    let mut parts: Vec<String> = ada.split('.').map(str::to_owned).collect();
    let mut payload: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    payload["sub"] = json!("bob");
    parts[1] = URL_SAFE_NO_PAD.encode(payload.to_string());
    let tampered = parts.join(".");

    let refused = [
        ("expired", rs256(&expired)),
        ("not yet valid", rs256(&early)),
        ("wrong issuer", rs256(&foreign_issuer)),
        ("wrong audience", rs256(&foreign_audience)),
        ("wrong key", wrong_key),
        ("alg none", none),
        ("HS256 with the public key", hs256),
        ("tampered payload", tampered),
        ("garbage", "not-a-jwt".into()),
    ];
    for (what, token) in refused {
        let status = mesh
            .gateway
            .get_order(with_token(
                pb::GetOrderRequest {
                    order_id: order.order_id.clone(),
                },
                &token,
            ))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{what}: {status:?}");
    }
    let missing = mesh
        .gateway
        .get_order(pb::GetOrderRequest {
            order_id: order.order_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated);

    // Scopes: a read-only token cannot place orders.
    let reader = mesh
        .key
        .mint("ada", "orders:read", Duration::from_secs(600))
        .unwrap();
    let denied = mesh
        .gateway
        .place_order(with_token(place("k2"), &reader))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);

    // Bob sees nothing of Ada's.
    let bob = mesh
        .key
        .mint("bob", "orders:read orders:write", Duration::from_secs(600))
        .unwrap();
    let hidden = mesh
        .gateway
        .get_order(with_token(
            pb::GetOrderRequest {
                order_id: order.order_id.clone(),
            },
            &bob,
        ))
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);
    assert!(!hidden.message().contains("ada"), "{}", hidden.message());
    let cancel = pb::CancelOrderRequest {
        order_id: order.order_id.clone(),
        idempotency_key: "c".into(),
        ..Default::default()
    };
    assert_eq!(
        mesh.gateway
            .cancel_order(with_token(cancel, &bob))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    assert!(
        mesh.gateway
            .list_orders(with_token(pb::ListOrdersRequest::default(), &bob))
            .await
            .unwrap()
            .into_inner()
            .orders
            .is_empty()
    );

    // Bob's stream carries nothing of Ada's order changing.
    let mut bob_stream = mesh
        .gateway
        .subscribe(with_token(pb::SubscribeRequest::default(), &bob))
        .await
        .unwrap()
        .into_inner();
    let mut ada_stream = mesh
        .gateway
        .subscribe(with_token(pb::SubscribeRequest::default(), &ada))
        .await
        .unwrap()
        .into_inner();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cancel = pb::CancelOrderRequest {
        order_id: order.order_id.clone(),
        idempotency_key: "c".into(),
        ..Default::default()
    };
    mesh.gateway
        .cancel_order(with_token(cancel, &ada))
        .await
        .unwrap();
    let mut ada_saw_it = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !ada_saw_it && tokio::time::Instant::now() < deadline {
        let update = tokio::time::timeout(Duration::from_secs(5), ada_stream.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
            .update
            .unwrap();
        if let Some(oms_proto::tracking::v1::live_update::Kind::OrderStatus(status)) = update.kind {
            ada_saw_it = status.order_id == order.order_id;
        }
    }
    assert!(ada_saw_it, "Ada's stream carries her order's change");
    for _ in 0..3 {
        let update = tokio::time::timeout(Duration::from_secs(2), bob_stream.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
            .update
            .unwrap();
        assert!(
            matches!(
                update.kind,
                Some(oms_proto::tracking::v1::live_update::Kind::Heartbeat(_))
            ),
            "Bob got {update:?}"
        );
    }

    // Oversized messages are refused before they reach a service.
    let mut huge = place("k3");
    huge.shipping_address.as_mut().unwrap().lines = vec!["x".repeat(300 * 1024)];
    let status = mesh
        .gateway
        .place_order(with_token(huge, &ada))
        .await
        .unwrap_err();
    assert!(
        matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{status:?}"
    );
    stop(mesh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_user_flooding_is_throttled_while_another_keeps_going() {
    let mut mesh = start(5).await;
    let flood = mesh
        .key
        .mint("flood", "orders:read", Duration::from_secs(600))
        .unwrap();
    let calm = mesh
        .key
        .mint("calm", "orders:read", Duration::from_secs(600))
        .unwrap();
    let mut throttled = 0;
    let mut retry_hint = None;
    for _ in 0..40 {
        if let Err(status) = mesh
            .gateway
            .list_orders(with_token(pb::ListOrdersRequest::default(), &flood))
            .await
        {
            assert_eq!(status.code(), Code::ResourceExhausted);
            retry_hint = status
                .metadata()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            throttled += 1;
        }
    }
    assert!(throttled >= 20, "throttled {throttled} of 40");
    assert!(retry_hint.is_some(), "a retry-after hint in metadata");
    for _ in 0..5 {
        mesh.gateway
            .list_orders(with_token(pb::ListOrdersRequest::default(), &calm))
            .await
            .unwrap();
    }
    stop(mesh).await;
}
