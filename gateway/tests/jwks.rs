//! Keys from the identity provider's JWKS URL: cached, and re-fetched when a token names a
//! key id the cache does not know — so the provider can rotate keys without a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    convert::Infallible,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use oms_gateway::{
    auth::{AuthError, KeySource, Verifier},
    dev_key::{self, DEV_AUDIENCE, DEV_ISSUER},
};

/// Serves whatever JWKS is current; counts fetches.
async fn identity_provider(jwks: Arc<Mutex<String>>, fetches: Arc<AtomicUsize>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let (jwks, fetches) = (jwks.clone(), fetches.clone());
            tokio::spawn(async move {
                let service = service_fn(move |_: Request<Incoming>| {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    let body = jwks.lock().unwrap().clone();
                    async move { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body)))) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(socket), service)
                    .await;
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_keys_are_fetched_and_unknown_ones_refused() {
    let (old_dir, new_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (old, new) = (
        dev_key::ensure(old_dir.path()).unwrap(),
        dev_key::ensure(new_dir.path()).unwrap(),
    );
    let jwks = Arc::new(Mutex::new(old.jwks.clone()));
    let fetches = Arc::new(AtomicUsize::new(0));
    let url = identity_provider(jwks.clone(), fetches.clone()).await;
    let verifier = Verifier::new(
        KeySource::Url(url),
        DEV_ISSUER.into(),
        DEV_AUDIENCE.into(),
        Duration::ZERO,
    )
    .await
    .unwrap();
    assert_eq!(fetches.load(Ordering::SeqCst), 1);

    let ttl = Duration::from_secs(60);
    let caller = verifier
        .verify(&old.mint("ada", "orders:read", ttl).unwrap())
        .await
        .unwrap();
    assert_eq!(caller.user_id, "ada");
    assert!(caller.scopes.contains("orders:read"));
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        1,
        "known keys come from the cache"
    );

    // Before the provider publishes the new key, its tokens are refused.
    let early = verifier
        .verify(&new.mint("ada", "orders:read", ttl).unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(early, AuthError::Invalid(ref reason) if reason.contains("unknown key id")),
        "{early:?}"
    );
    // The provider rotates: the next token with the new key id makes the gateway re-fetch.
    *jwks.lock().unwrap() = new.jwks.clone();
    let rotated = verifier
        .verify(&new.mint("bob", "orders:write", ttl).unwrap())
        .await
        .unwrap();
    assert_eq!(rotated.user_id, "bob");
    assert_eq!(fetches.load(Ordering::SeqCst), 3);
}
