//! The production bus: NATS JetStream through async-nats.
//!
//! One stream per area (`OMS_ORDER` on `oms.order.>`, …), file storage, a de-duplication
//! window keyed by `Nats-Msg-Id` (= the event id), durable pull consumers with explicit ack.
//! Durability of acknowledged publishes depends on the server's `sync_interval` (see
//! DESIGN.md: production runs `jetstream { sync_interval: always }` with 3 replicas).
//!
//! The client reconnects by itself after a connection loss; while NATS is away, publishes
//! fail after the JetStream timeout and the outbox relay retries them.

use std::time::Duration;

use async_nats::{
    HeaderMap,
    jetstream::{
        self,
        consumer::{AckPolicy, DeliverPolicy, pull},
        stream,
    },
};
use async_trait::async_trait;
use futures::StreamExt;
use oms_proto::events::v1::Envelope;
use prost::Message as _;

use super::{
    Acker, Area, BusError, ConsumerSpec, Delivery, DeliveryStream, EventBus, PublishAck, StartFrom,
    decode_envelope,
};
use crate::config::BusArgs;

/// How long a publish waits for the stream's acknowledgement.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(3);
/// JetStream's de-duplication window; re-publishing after a bus loss relies on the outbox
/// and idempotent consumers beyond it.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// NATS JetStream behind the [`EventBus`] trait.
#[derive(Clone)]
pub struct JetStreamBus {
    context: jetstream::Context,
    namespace: String,
    replicas: usize,
    max_age: Duration,
}

impl JetStreamBus {
    /// Connects to `url`, failing within `args.connect_timeout` when NATS is unreachable.
    pub async fn connect(url: &str, args: &BusArgs) -> Result<Self, BusError> {
        let connecting = async_nats::ConnectOptions::new()
            .name("oms")
            .connection_timeout(args.connect_timeout)
            .connect(url);
        let client = tokio::time::timeout(args.connect_timeout, connecting)
            .await
            .map_err(|_| {
                BusError::Unavailable(format!(
                    "NATS at {url} did not answer within {:?}",
                    args.connect_timeout
                ))
            })?
            .map_err(|e| BusError::Unavailable(format!("cannot connect to NATS at {url}: {e}")))?;
        let context = jetstream::ContextBuilder::new()
            .timeout(PUBLISH_TIMEOUT)
            .max_ack_inflight(4096)
            .backpressure_on_inflight(true)
            .build(client);
        Ok(Self {
            context,
            namespace: args.namespace.clone(),
            replicas: args.stream_replicas.max(1),
            max_age: args.stream_max_age,
        })
    }

    fn wire_subject(&self, logical: &str) -> String {
        if self.namespace.is_empty() {
            logical.to_owned()
        } else {
            format!("{}.{logical}", self.namespace)
        }
    }

    fn logical_subject<'a>(&self, wire: &'a str) -> &'a str {
        if self.namespace.is_empty() {
            wire
        } else {
            wire.strip_prefix(&self.namespace)
                .and_then(|rest| rest.strip_prefix('.'))
                .unwrap_or(wire)
        }
    }

    async fn send(
        &self,
        envelope: &Envelope,
    ) -> Result<jetstream::context::PublishAckFuture, BusError> {
        if Area::of_subject(&envelope.subject).is_none() {
            return Err(BusError::InvalidSubject(format!(
                "{:?} is not oms.<area>.…",
                envelope.subject
            )));
        }
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", envelope.event_id.as_str());
        self.context
            .publish_with_headers(
                self.wire_subject(&envelope.subject),
                headers,
                envelope.encode_to_vec().into(),
            )
            .await
            .map_err(|e| BusError::Unavailable(format!("publish {}: {e}", envelope.subject)))
    }
}

fn ack_of(ack: jetstream::publish::PublishAck) -> PublishAck {
    PublishAck {
        stream: ack.stream,
        sequence: ack.sequence,
        duplicate: ack.duplicate,
    }
}

#[async_trait]
impl EventBus for JetStreamBus {
    async fn ensure_streams(&self) -> Result<(), BusError> {
        for area in Area::ALL {
            let config = stream::Config {
                name: area.stream_name(&self.namespace),
                subjects: vec![self.wire_subject(&format!("oms.{}.>", area.token()))],
                storage: stream::StorageType::File,
                num_replicas: self.replicas,
                max_age: self.max_age,
                duplicate_window: DUPLICATE_WINDOW,
                ..Default::default()
            };
            self.context
                .get_or_create_stream(config)
                .await
                .map_err(|e| BusError::Unavailable(format!("create stream for {area:?}: {e}")))?;
        }
        Ok(())
    }

    async fn publish(&self, envelope: &Envelope) -> Result<PublishAck, BusError> {
        let pending = self.send(envelope).await?;
        pending
            .await
            .map(ack_of)
            .map_err(|e| BusError::Unavailable(format!("publish {}: {e}", envelope.subject)))
    }

    async fn publish_batch(&self, envelopes: &[Envelope]) -> Vec<Result<PublishAck, BusError>> {
        // Send everything first, then collect the acks: one round trip for the batch. NATS
        // keeps the order of one connection, so stream order is the outbox order.
        let mut pending = Vec::with_capacity(envelopes.len());
        for envelope in envelopes {
            match self.send(envelope).await {
                Ok(future) => pending.push(Ok(future)),
                Err(e) => {
                    pending.push(Err(e));
                    break;
                }
            }
        }
        let mut results = Vec::with_capacity(pending.len());
        for (future, envelope) in pending.into_iter().zip(envelopes) {
            let result = match future {
                Ok(future) => future.await.map(ack_of).map_err(|e| {
                    BusError::Unavailable(format!("publish {}: {e}", envelope.subject))
                }),
                Err(e) => Err(e),
            };
            let failed = result.is_err();
            results.push(result);
            if failed {
                break;
            }
        }
        results
    }

    async fn consume(&self, spec: ConsumerSpec) -> Result<DeliveryStream, BusError> {
        let stream_name = spec.area.stream_name(&self.namespace);
        let stream = self
            .context
            .get_stream(&stream_name)
            .await
            .map_err(|e| BusError::Unavailable(format!("stream {stream_name}: {e}")))?;
        let config = pull::Config {
            durable_name: spec.durable.clone(),
            deliver_policy: match spec.start {
                StartFrom::Beginning => DeliverPolicy::All,
                StartFrom::New => DeliverPolicy::New,
                StartFrom::Sequence(start_sequence) => DeliverPolicy::ByStartSequence {
                    start_sequence: start_sequence.max(1),
                },
            },
            ack_policy: AckPolicy::Explicit,
            ack_wait: spec.ack_wait,
            max_ack_pending: i64::try_from(spec.max_in_flight).unwrap_or(i64::MAX),
            filter_subject: spec
                .filter
                .as_deref()
                .map(|f| self.wire_subject(f))
                .unwrap_or_default(),
            ..Default::default()
        };
        let consumer = match &spec.durable {
            Some(name) => stream.get_or_create_consumer(name, config).await,
            None => stream.create_consumer(config).await,
        }
        .map_err(|e| BusError::Unavailable(format!("consumer on {stream_name}: {e}")))?;
        // Short pull expiry and heartbeats: a consumer the server lost is noticed in seconds,
        // and the caller re-subscribes.
        let messages = consumer
            .stream()
            .expires(Duration::from_secs(10))
            .heartbeat(Duration::from_secs(2))
            .messages()
            .await
            .map_err(|e| BusError::Unavailable(format!("consume {stream_name}: {e}")))?;
        let bus = self.clone();
        Ok(Box::pin(messages.then(move |item| {
            let bus = bus.clone();
            async move { bus.to_delivery(item).await }
        })))
    }

    fn kind(&self) -> &'static str {
        "jetstream"
    }
}

impl JetStreamBus {
    async fn to_delivery(
        &self,
        item: Result<jetstream::Message, pull::MessagesError>,
    ) -> Result<Delivery, BusError> {
        let message = item.map_err(|e| BusError::Unavailable(format!("consume: {e}")))?;
        let (sequence, delivered) = match message.info() {
            Ok(info) => (info.stream_sequence, info.delivered.max(1) as u64),
            Err(e) => return Err(BusError::Rejected(format!("message without ack info: {e}"))),
        };
        match decode_envelope(&message.payload, sequence) {
            Ok(mut envelope) => {
                if envelope.subject.is_empty() {
                    envelope.subject = self.logical_subject(&message.subject).to_owned();
                }
                Ok(Delivery::new(
                    envelope,
                    sequence,
                    delivered,
                    Box::new(NatsAcker(message)),
                ))
            }
            Err(error) => {
                // Not ours to read: stop its redelivery so it cannot block the consumer.
                let _ = message.ack_with(jetstream::AckKind::Term).await;
                Err(error)
            }
        }
    }
}

struct NatsAcker(jetstream::Message);

#[async_trait]
impl Acker for NatsAcker {
    async fn ack(self: Box<Self>) -> Result<(), BusError> {
        self.0
            .ack()
            .await
            .map_err(|e| BusError::Unavailable(format!("ack: {e}")))
    }

    async fn nak(self: Box<Self>, delay: Duration) -> Result<(), BusError> {
        self.0
            .ack_with(jetstream::AckKind::Nak(Some(delay)))
            .await
            .map_err(|e| BusError::Unavailable(format!("nak: {e}")))
    }
}
