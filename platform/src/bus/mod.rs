//! The event bus: one trait, two implementations with the same semantics.
//!
//! * [`nats::JetStreamBus`] — production: a JetStream stream per area, `Nats-Msg-Id` =
//!   event id for de-duplication, durable pull consumers with explicit ack.
//! * [`memory::InProcessBus`] — the embedded default for `oms dev` and unit tests: ordered
//!   per-area logs with sequences, the same de-duplication window, durable cursors with
//!   explicit ack and redelivery, replay from a sequence.
//!
//! Producers never publish directly: they write an outbox row in their transaction and the
//! relay (`crate::outbox`) publishes it. Consumers go through `crate::consumer`, which
//! applies each event once.
//!
//! Subjects are `oms.<area>.<entity_id>.<event>`; a namespace (tests, several meshes on one
//! NATS) is prefixed on the wire only, never stored in the envelope.

pub mod memory;
pub mod nats;

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use futures::stream::BoxStream;
use oms_proto::events::v1::Envelope;

use crate::config::BusArgs;

/// A bounded context whose events share one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Area {
    /// `oms.order.…`
    Order,
    /// `oms.inventory.…`
    Inventory,
    /// `oms.fulfillment.…`
    Fulfillment,
    /// `oms.tracking.…`
    Tracking,
}

impl Area {
    /// Every area, in a stable order.
    pub const ALL: [Area; 4] = [
        Area::Order,
        Area::Inventory,
        Area::Fulfillment,
        Area::Tracking,
    ];

    /// The subject token of the area.
    pub fn token(self) -> &'static str {
        match self {
            Area::Order => "order",
            Area::Inventory => "inventory",
            Area::Fulfillment => "fulfillment",
            Area::Tracking => "tracking",
        }
    }

    /// The area a logical subject (`oms.<area>.…`) belongs to.
    pub fn of_subject(subject: &str) -> Option<Area> {
        let mut tokens = subject.split('.');
        if tokens.next() != Some("oms") {
            return None;
        }
        let area = tokens.next()?;
        Area::ALL.into_iter().find(|a| a.token() == area)
    }

    /// The stream's name, e.g. `OMS_ORDER` (namespaced: `T1_OMS_ORDER`).
    pub fn stream_name(self, namespace: &str) -> String {
        let base = format!("OMS_{}", self.token().to_ascii_uppercase());
        if namespace.is_empty() {
            base
        } else {
            format!("{}_{base}", namespace.to_ascii_uppercase())
        }
    }
}

/// Builds the logical subject `oms.<area>.<entity_id>.<event>`, refusing tokens that would
/// change its shape (dots, wildcards, whitespace).
pub fn subject(area: Area, entity_id: &str, event: &str) -> Result<String, BusError> {
    for (what, token) in [("entity id", entity_id), ("event name", event)] {
        if !is_subject_token(token) {
            return Err(BusError::InvalidSubject(format!(
                "{what} {token:?} is not a subject token (letters, digits, '-', '_', ':')"
            )));
        }
    }
    Ok(format!("oms.{}.{entity_id}.{event}", area.token()))
}

/// Whether `token` can stand as one subject token.
pub fn is_subject_token(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= 128
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':'))
}

/// NATS subject matching: `*` matches one token, `>` the rest (at least one token).
pub fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut pattern_tokens = pattern.split('.');
    let mut subject_tokens = subject.split('.');
    loop {
        match (pattern_tokens.next(), subject_tokens.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(p), Some(s)) if p == s => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Where a new consumer starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    /// The oldest retained event.
    Beginning,
    /// Only events published after the consumer is created.
    New,
    /// This stream sequence and after (replay).
    Sequence(u64),
}

/// What to consume and how.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// Which stream.
    pub area: Area,
    /// A durable name keeps the position across restarts; `None` is an ephemeral replay.
    pub durable: Option<String>,
    /// Logical subject pattern (`oms.order.*.status_changed`); `None` takes the whole area.
    pub filter: Option<String>,
    /// Where a new consumer starts (a durable one that exists resumes where it was).
    pub start: StartFrom,
    /// Unacknowledged deliveries are redelivered after this long.
    pub ack_wait: Duration,
    /// At most this many deliveries unacknowledged at once.
    pub max_in_flight: usize,
}

impl ConsumerSpec {
    /// A durable consumer of a whole area from the beginning, 30 s ack wait.
    pub fn durable(area: Area, name: impl Into<String>) -> Self {
        Self {
            area,
            durable: Some(name.into()),
            filter: None,
            start: StartFrom::Beginning,
            ack_wait: Duration::from_secs(30),
            max_in_flight: 256,
        }
    }

    /// An ephemeral consumer replaying an area from `sequence`.
    pub fn replay(area: Area, sequence: u64) -> Self {
        Self {
            area,
            durable: None,
            filter: None,
            start: StartFrom::Sequence(sequence),
            ack_wait: Duration::from_secs(30),
            max_in_flight: 256,
        }
    }

    /// An ephemeral consumer of an area's events from now on (every process its own: what it
    /// missed before subscribing it learns elsewhere).
    pub fn live(area: Area) -> Self {
        Self {
            start: StartFrom::New,
            ..Self::replay(area, 1)
        }
    }

    /// Only events whose subject matches `pattern`.
    pub fn with_filter(mut self, pattern: impl Into<String>) -> Self {
        self.filter = Some(pattern.into());
        self
    }
}

/// The bus's receipt for a publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishAck {
    /// The stream that stored it.
    pub stream: String,
    /// Its sequence in that stream (for a duplicate: the original's).
    pub sequence: u64,
    /// The event id was seen inside the de-duplication window; nothing new was stored.
    pub duplicate: bool,
}

/// Settles a delivery with the bus.
#[async_trait]
pub trait Acker: Send {
    /// Done: never deliver again.
    async fn ack(self: Box<Self>) -> Result<(), BusError>;
    /// Failed: deliver again after `delay`.
    async fn nak(self: Box<Self>, delay: Duration) -> Result<(), BusError>;
}

/// One event handed to a consumer; settle it with [`Delivery::ack`] or [`Delivery::nak`].
pub struct Delivery {
    /// The event.
    pub envelope: Envelope,
    /// Its position in the area's stream.
    pub stream_sequence: u64,
    /// 1 on first delivery, more on redelivery.
    pub delivery_count: u64,
    acker: Box<dyn Acker>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("event_id", &self.envelope.event_id)
            .field("subject", &self.envelope.subject)
            .field("stream_sequence", &self.stream_sequence)
            .field("delivery_count", &self.delivery_count)
            .finish()
    }
}

impl Delivery {
    /// A delivery settled through `acker`.
    pub fn new(
        envelope: Envelope,
        stream_sequence: u64,
        delivery_count: u64,
        acker: Box<dyn Acker>,
    ) -> Self {
        Self {
            envelope,
            stream_sequence,
            delivery_count,
            acker,
        }
    }

    /// Acknowledges: the event is done.
    pub async fn ack(self) -> Result<(), BusError> {
        self.acker.ack().await
    }

    /// Asks for redelivery after `delay`.
    pub async fn nak(self, delay: Duration) -> Result<(), BusError> {
        self.acker.nak(delay).await
    }
}

/// The deliveries of one consumer, in order; ends only when the bus goes away.
pub type DeliveryStream = BoxStream<'static, Result<Delivery, BusError>>;

/// What a bus can fail with.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The bus cannot be reached now; retry later.
    #[error("event bus unavailable: {0}")]
    Unavailable(String),
    /// A subject or consumer setting is wrong (a bug, not a transient failure).
    #[error("invalid subject: {0}")]
    InvalidSubject(String),
    /// The bus refused a request.
    #[error("event bus error: {0}")]
    Rejected(String),
    /// A message on the stream is not an Envelope (it was discarded).
    #[error("undecodable message at sequence {sequence}: {reason}")]
    Undecodable {
        /// Where it was.
        sequence: u64,
        /// Why it does not decode.
        reason: String,
    },
}

/// Publishes events and hands them to consumers.
#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Creates the streams if they do not exist (idempotent).
    async fn ensure_streams(&self) -> Result<(), BusError>;

    /// Stores one event. Publishing the same `event_id` again inside the de-duplication window
    /// stores nothing and answers `duplicate: true` with the original sequence.
    async fn publish(&self, envelope: &Envelope) -> Result<PublishAck, BusError>;

    /// Stores events in order, pipelined where the bus allows; the result has one entry per
    /// event and stops at the first failure (later events are not attempted).
    async fn publish_batch(&self, envelopes: &[Envelope]) -> Vec<Result<PublishAck, BusError>> {
        let mut results = Vec::with_capacity(envelopes.len());
        for envelope in envelopes {
            let result = self.publish(envelope).await;
            let failed = result.is_err();
            results.push(result);
            if failed {
                break;
            }
        }
        results
    }

    /// Opens a consumer (or resumes a durable one).
    async fn consume(&self, spec: ConsumerSpec) -> Result<DeliveryStream, BusError>;

    /// A short name for logs ("jetstream", "in-process").
    fn kind(&self) -> &'static str;

    /// Whether stored events survive a restart of this process. When they do not (the
    /// in-process bus), each service re-publishes its outbox retention window at start.
    fn survives_restart(&self) -> bool {
        true
    }
}

/// Connects the bus `args` describe: JetStream when a NATS URL is given, else in-process.
pub async fn connect(args: &BusArgs) -> Result<Arc<dyn EventBus>, BusError> {
    let bus: Arc<dyn EventBus> = match &args.nats_url {
        Some(url) if !url.trim().is_empty() => {
            Arc::new(nats::JetStreamBus::connect(url.trim(), args).await?)
        }
        _ => Arc::new(memory::InProcessBus::new(memory::Retention {
            max_age: args.stream_max_age,
            ..memory::Retention::default()
        })),
    };
    bus.ensure_streams().await?;
    Ok(bus)
}

/// Decodes an envelope from the bus, naming the sequence when it fails.
pub(crate) fn decode_envelope(payload: &[u8], sequence: u64) -> Result<Envelope, BusError> {
    prost::Message::decode(payload).map_err(|e| BusError::Undecodable {
        sequence,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_have_four_tokens_and_refuse_dots_and_wildcards() {
        assert_eq!(
            subject(Area::Order, "ord-1", "status_changed").unwrap(),
            "oms.order.ord-1.status_changed"
        );
        for bad in ["", "a.b", "a*", ">", "a b", &"x".repeat(129)] {
            assert!(subject(Area::Order, bad, "e").is_err(), "{bad:?}");
        }
        assert!(subject(Area::Order, "id", "bad.event").is_err());
    }

    #[test]
    fn wildcards_match_like_nats() {
        let table = [
            ("oms.order.>", "oms.order.1.status_changed", true),
            ("oms.order.>", "oms.order", false),
            (
                "oms.order.*.status_changed",
                "oms.order.1.status_changed",
                true,
            ),
            (
                "oms.order.*.status_changed",
                "oms.order.1.refund_issued",
                false,
            ),
            ("oms.*.1.x", "oms.inventory.1.x", true),
            ("oms.order.1", "oms.order.1.x", false),
            ("oms.order.1.x", "oms.order.1.x", true),
        ];
        for (pattern, subject, expected) in table {
            assert_eq!(
                subject_matches(pattern, subject),
                expected,
                "{pattern} ~ {subject}"
            );
        }
    }

    #[test]
    fn areas_come_from_subjects_and_name_streams() {
        assert_eq!(
            Area::of_subject("oms.inventory.SKU-1.level_changed"),
            Some(Area::Inventory)
        );
        assert_eq!(Area::of_subject("oms.unknown.x.y"), None);
        assert_eq!(Area::of_subject("other.order.x.y"), None);
        assert_eq!(Area::Order.stream_name(""), "OMS_ORDER");
        assert_eq!(Area::Order.stream_name("t42"), "T42_OMS_ORDER");
    }
}
