//! Push notifications: a worker sends each queued push through a [`PushSender`], exactly once
//! per event — retried with exponential back-off while the sender fails, never again once it
//! succeeded. The HTTP webhook sender posts JSON the way an APNs/FCM relay takes it, with the
//! notification id as `Idempotency-Key` so a relay drops the repeat of an attempt whose answer
//! was lost.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use tokio_util::sync::CancellationToken;

use oms_proto::tracking::v1::DevicePlatform;

use crate::store::{Device, Store, entities::notification};

/// How a relay names the push service: "ios" (APNs), "android" (FCM), "web" (web push).
fn platform_name(platform: i32) -> &'static str {
    match DevicePlatform::try_from(platform) {
        Ok(DevicePlatform::Ios) => "ios",
        Ok(DevicePlatform::Android) => "android",
        Ok(DevicePlatform::Web) => "web",
        _ => "unknown",
    }
}

/// One push to one user's devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// Stable per event and user: the de-duplication key.
    pub notification_id: String,
    /// The buyer.
    pub user_id: String,
    /// The user's devices.
    pub devices: Vec<Device>,
    /// Headline.
    pub title: String,
    /// Text.
    pub body: String,
    /// The order it is about.
    pub order_id: String,
}

/// A push channel.
#[async_trait]
pub trait PushSender: Send + Sync + 'static {
    /// Sends one push; an error is retried later.
    async fn send(&self, push: &Push) -> Result<(), String>;
}

/// Logs pushes (development, and deployments without a push relay).
pub struct LogSender;

#[async_trait]
impl PushSender for LogSender {
    async fn send(&self, push: &Push) -> Result<(), String> {
        tracing::info!(notification_id = %push.notification_id, user_id = %push.user_id, title = %push.title, devices = push.devices.len(), "push");
        Ok(())
    }
}

/// POSTs each push as JSON to a relay.
pub struct WebhookSender {
    url: http::Uri,
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl WebhookSender {
    /// A sender to `url` (`http://…`).
    pub fn new(url: &str, timeout: Duration) -> Result<Self, String> {
        let url: http::Uri = url
            .parse()
            .map_err(|e| format!("push webhook URL {url:?}: {e}"))?;
        if url.scheme_str() != Some("http") {
            return Err(format!(
                "push webhook URL {url}: only http:// is supported (put TLS in the relay or a sidecar)"
            ));
        }
        let client = Client::builder(TokioExecutor::new()).build_http();
        Ok(Self {
            url,
            client,
            timeout,
        })
    }
}

#[async_trait]
impl PushSender for WebhookSender {
    async fn send(&self, push: &Push) -> Result<(), String> {
        let body = serde_json::json!({
            "notification_id": push.notification_id,
            "user_id": push.user_id,
            "devices": push.devices.iter().map(|device| serde_json::json!({
                "token": device.token,
                "platform": platform_name(device.platform),
                "locale": device.locale,
            })).collect::<Vec<_>>(),
            "title": push.title,
            "body": push.body,
            "order_id": push.order_id,
        });
        let request = http::Request::post(self.url.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("idempotency-key", push.notification_id.as_str())
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| e.to_string())?;
        let response = tokio::time::timeout(self.timeout, self.client.request(request))
            .await
            .map_err(|_| format!("no answer within {:?}", self.timeout))?
            .map_err(|e| e.to_string())?;
        let status = response.status();
        // Drain the body so the connection can be reused.
        let _ = response.into_body().collect().await;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("relay answered {status}"))
        }
    }
}

/// Retry timing.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// Wait after the first failure; doubles per failure.
    pub base: Duration,
    /// Longest wait.
    pub max: Duration,
}

impl Backoff {
    fn after(&self, attempts: i32) -> Duration {
        let factor = 2u32.saturating_pow(
            u32::try_from(attempts.saturating_sub(1))
                .unwrap_or(0)
                .min(20),
        );
        self.base.saturating_mul(factor).min(self.max)
    }
}

/// Sends due pushes until shutdown.
pub async fn run(
    store: Store,
    sender: Arc<dyn PushSender>,
    backoff: Backoff,
    poll: Duration,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(poll) => {}
        }
        let due = match store.due_notifications(Utc::now(), 100).await {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "reading due pushes failed");
                continue;
            }
        };
        for row in due {
            if let Err(error) = attempt(&store, sender.as_ref(), backoff, row).await {
                tracing::warn!(%error, "recording a push attempt failed; it is retried");
            }
        }
    }
}

async fn attempt(
    store: &Store,
    sender: &dyn PushSender,
    backoff: Backoff,
    row: notification::Model,
) -> Result<(), crate::domain::TrackingError> {
    // The lease keeps other replicas off this push while it is being sent.
    let lease = Utc::now() + chrono::Duration::seconds(60);
    if !store.claim_notification(&row, lease).await? {
        return Ok(());
    }
    let devices = store.devices(&store.db, &row.user_id).await?;
    let push = Push {
        notification_id: row.notification_id.clone(),
        user_id: row.user_id.clone(),
        devices,
        title: row.title.clone(),
        body: row.body.clone(),
        order_id: row.order_id.clone(),
    };
    let attempts = row.attempts + 1;
    let outcome = match sender.send(&push).await {
        Ok(()) => Ok(()),
        Err(error) => {
            let wait = backoff.after(attempts);
            tracing::warn!(notification_id = %row.notification_id, attempts, %error, retry_in = ?wait, "push failed");
            Err((
                error,
                Utc::now()
                    + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::seconds(60)),
            ))
        }
    };
    store
        .finish_attempt(&row.notification_id, attempts, outcome)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let backoff = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        assert_eq!(backoff.after(1), Duration::from_millis(100));
        assert_eq!(backoff.after(2), Duration::from_millis(200));
        assert_eq!(backoff.after(4), Duration::from_millis(800));
        assert_eq!(backoff.after(9), Duration::from_secs(1));
    }
}
