//! The in-process bus: JetStream's semantics without a server, for `oms dev` and tests.
//!
//! Each area is an append-only log with sequences from 1, trimmed by age. A publish whose
//! event id was seen inside the de-duplication window stores nothing and answers with the
//! original sequence. Consumers keep a cursor plus the set of unacknowledged deliveries;
//! those are redelivered after the ack wait or a nak's delay. A durable consumer's cursor
//! lives as long as the bus (the process); after a restart the outbox relay re-publishes its
//! retention window, and idempotent consumers skip what they already applied.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use async_trait::async_trait;
use oms_proto::events::v1::Envelope;
use tokio::{sync::watch, time::Instant};

use super::{
    Acker, Area, BusError, ConsumerSpec, Delivery, DeliveryStream, EventBus, PublishAck, StartFrom,
    subject_matches,
};

/// How long events and de-duplication ids are kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Events older than this are dropped from the log.
    pub max_age: Duration,
    /// At most this many events per area are kept (oldest dropped first), so a long-running
    /// `oms dev` under load does not grow without bound.
    pub max_messages: usize,
    /// A repeated event id inside this window is a duplicate.
    pub duplicate_window: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(7 * 86_400),
            max_messages: 1_000_000,
            duplicate_window: Duration::from_secs(120),
        }
    }
}

/// JetStream's semantics in memory, shared by every service of one process.
#[derive(Clone)]
pub struct InProcessBus {
    shared: Arc<Shared>,
}

struct Shared {
    retention: Retention,
    streams: Mutex<HashMap<Area, StreamLog>>,
    /// Per area, bumped when its consumers may have something new to deliver (a publish, a
    /// nak, an ack that frees a full consumer), so only they look again.
    changes: HashMap<Area, watch::Sender<u64>>,
}

struct Stored {
    sequence: u64,
    envelope: Arc<Envelope>,
    stored_at: Instant,
}

#[derive(Default)]
struct StreamLog {
    log: VecDeque<Stored>,
    last_sequence: u64,
    seen_ids: HashMap<String, u64>,
    seen_order: VecDeque<(Instant, String)>,
    consumers: HashMap<String, Cursor>,
    next_ephemeral: u64,
}

struct Cursor {
    filter: Option<String>,
    next_sequence: u64,
    /// Unacknowledged deliveries: sequence → (redeliver at, deliveries so far).
    pending: BTreeMap<u64, (Instant, u64)>,
    /// The same deliveries by when they are due again, soonest first.
    due: BTreeSet<(Instant, u64)>,
    ack_wait: Duration,
    max_in_flight: usize,
    durable: bool,
}

impl Cursor {
    /// (Re)schedules the redelivery of `sequence` at `at`, counting a delivery when `delivered`.
    fn schedule(&mut self, sequence: u64, at: Instant, delivered: bool) -> u64 {
        let entry = self.pending.entry(sequence).or_insert((at, 0));
        self.due.remove(&(entry.0, sequence));
        entry.0 = at;
        if delivered {
            entry.1 += 1;
        }
        self.due.insert((at, sequence));
        entry.1
    }

    /// Forgets `sequence` (acknowledged, or gone from the log).
    fn settle(&mut self, sequence: u64) {
        if let Some((at, _)) = self.pending.remove(&sequence) {
            self.due.remove(&(at, sequence));
        }
    }
}

impl InProcessBus {
    /// An empty bus.
    pub fn new(retention: Retention) -> Self {
        let changes = Area::ALL
            .into_iter()
            .map(|area| (area, watch::channel(0).0))
            .collect();
        Self {
            shared: Arc::new(Shared {
                retention,
                streams: Mutex::new(HashMap::new()),
                changes,
            }),
        }
    }
}

impl Default for InProcessBus {
    fn default() -> Self {
        Self::new(Retention::default())
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, HashMap<Area, StreamLog>> {
        // A poisoned lock means a panic while holding it; the data is still consistent
        // because every critical section below completes its updates before returning.
        self.streams
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn wake_consumers(&self, area: Area) {
        if let Some(changes) = self.changes.get(&area) {
            changes.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
}

impl StreamLog {
    fn trim(&mut self, now: Instant, retention: &Retention) {
        while let Some(front) = self.log.front() {
            if now.duration_since(front.stored_at) > retention.max_age
                || self.log.len() > retention.max_messages
            {
                self.log.pop_front();
            } else {
                break;
            }
        }
        while let Some((at, _)) = self.seen_order.front() {
            if now.duration_since(*at) > retention.duplicate_window {
                if let Some((_, id)) = self.seen_order.pop_front() {
                    self.seen_ids.remove(&id);
                }
            } else {
                break;
            }
        }
    }

    fn first_sequence(&self) -> u64 {
        self.log
            .front()
            .map_or(self.last_sequence + 1, |m| m.sequence)
    }

    fn get(&self, sequence: u64) -> Option<&Stored> {
        let first = self.log.front()?.sequence;
        let index = usize::try_from(sequence.checked_sub(first)?).ok()?;
        self.log.get(index)
    }

    /// The next delivery for a consumer, if one is due now; else when to look again.
    fn next_for(
        &mut self,
        name: &str,
        now: Instant,
    ) -> Result<(Arc<Envelope>, u64, u64), Option<Instant>> {
        let first = self.first_sequence();
        let last = self.last_sequence;
        let Some(cursor) = self.consumers.get_mut(name) else {
            return Err(None);
        };
        // Redeliveries first, the longest overdue first.
        let due = cursor
            .due
            .first()
            .filter(|(at, _)| *at <= now)
            .map(|(_, sequence)| *sequence);
        if let Some(sequence) = due {
            let ack_wait = cursor.ack_wait;
            let count = cursor.schedule(sequence, now + ack_wait, true);
            return match self.get(sequence) {
                Some(stored) => Ok((stored.envelope.clone(), sequence, count)),
                None => {
                    // Trimmed by age while unacknowledged: nothing left to deliver.
                    if let Some(cursor) = self.consumers.get_mut(name) {
                        cursor.settle(sequence);
                    }
                    Err(Some(now))
                }
            };
        }
        if cursor.pending.len() < cursor.max_in_flight {
            let mut sequence = cursor.next_sequence.max(first);
            while sequence <= last {
                let matches = match (&cursor.filter, self.log.get((sequence - first) as usize)) {
                    (_, None) => false,
                    (None, Some(_)) => true,
                    (Some(pattern), Some(m)) => subject_matches(pattern, &m.envelope.subject),
                };
                if matches {
                    cursor.next_sequence = sequence + 1;
                    let ack_wait = cursor.ack_wait;
                    cursor.schedule(sequence, now + ack_wait, true);
                    let envelope = self.log[(sequence - first) as usize].envelope.clone();
                    return Ok((envelope, sequence, 1));
                }
                sequence += 1;
            }
            cursor.next_sequence = last + 1;
        }
        Err(cursor.due.first().map(|(at, _)| *at))
    }
}

#[async_trait]
impl EventBus for InProcessBus {
    async fn ensure_streams(&self) -> Result<(), BusError> {
        let mut streams = self.shared.lock();
        for area in Area::ALL {
            streams.entry(area).or_default();
        }
        Ok(())
    }

    async fn publish(&self, envelope: &Envelope) -> Result<PublishAck, BusError> {
        let area = Area::of_subject(&envelope.subject).ok_or_else(|| {
            BusError::InvalidSubject(format!("{:?} is not oms.<area>.…", envelope.subject))
        })?;
        if envelope.event_id.is_empty() {
            return Err(BusError::InvalidSubject("event without an event_id".into()));
        }
        let now = Instant::now();
        let ack = {
            let mut streams = self.shared.lock();
            let stream = streams.entry(area).or_default();
            stream.trim(now, &self.shared.retention);
            let stream_name = area.stream_name("");
            if let Some(&sequence) = stream.seen_ids.get(&envelope.event_id) {
                return Ok(PublishAck {
                    stream: stream_name,
                    sequence,
                    duplicate: true,
                });
            }
            stream.last_sequence += 1;
            let sequence = stream.last_sequence;
            stream.log.push_back(Stored {
                sequence,
                envelope: Arc::new(envelope.clone()),
                stored_at: now,
            });
            stream.seen_ids.insert(envelope.event_id.clone(), sequence);
            stream
                .seen_order
                .push_back((now, envelope.event_id.clone()));
            PublishAck {
                stream: stream_name,
                sequence,
                duplicate: false,
            }
        };
        self.shared.wake_consumers(area);
        Ok(ack)
    }

    async fn consume(&self, spec: ConsumerSpec) -> Result<DeliveryStream, BusError> {
        if spec.max_in_flight == 0 {
            return Err(BusError::Rejected(
                "max_in_flight must be at least 1".into(),
            ));
        }
        let name = {
            let mut streams = self.shared.lock();
            let stream = streams.entry(spec.area).or_default();
            let name = match &spec.durable {
                Some(name) => name.clone(),
                None => {
                    stream.next_ephemeral += 1;
                    format!("_ephemeral_{}", stream.next_ephemeral)
                }
            };
            if !stream.consumers.contains_key(&name) {
                let next_sequence = match spec.start {
                    StartFrom::Beginning => stream.first_sequence(),
                    StartFrom::New => stream.last_sequence + 1,
                    StartFrom::Sequence(s) => s.max(1),
                };
                stream.consumers.insert(
                    name.clone(),
                    Cursor {
                        filter: spec.filter.clone(),
                        next_sequence,
                        pending: BTreeMap::new(),
                        due: BTreeSet::new(),
                        ack_wait: spec.ack_wait,
                        max_in_flight: spec.max_in_flight,
                        durable: spec.durable.is_some(),
                    },
                );
            } else if let Some(cursor) = stream.consumers.get_mut(&name) {
                // A durable consumer resumes: what it had in flight is redelivered now.
                let now = Instant::now();
                let in_flight: Vec<u64> = cursor.pending.keys().copied().collect();
                for sequence in in_flight {
                    cursor.schedule(sequence, now, false);
                }
            }
            name
        };
        let changes = self
            .shared
            .changes
            .get(&spec.area)
            .map(watch::Sender::subscribe)
            .ok_or_else(|| BusError::Rejected(format!("no stream for {:?}", spec.area)))?;
        let state = ConsumerLoop {
            shared: self.shared.clone(),
            area: spec.area,
            name,
            changes,
        };
        Ok(Box::pin(futures::stream::unfold(
            state,
            |mut state| async move {
                let delivery = state.next().await;
                Some((Ok(delivery), state))
            },
        )))
    }

    fn kind(&self) -> &'static str {
        "in-process"
    }

    fn survives_restart(&self) -> bool {
        false
    }
}

struct ConsumerLoop {
    shared: Arc<Shared>,
    area: Area,
    name: String,
    changes: watch::Receiver<u64>,
}

impl ConsumerLoop {
    async fn next(&mut self) -> Delivery {
        loop {
            // Mark the current change as seen before looking, so a publish that lands after
            // the look wakes us up.
            self.changes.borrow_and_update();
            let now = Instant::now();
            let outcome = {
                let mut streams = self.shared.lock();
                let stream = streams.entry(self.area).or_default();
                stream.trim(now, &self.shared.retention);
                stream.next_for(&self.name, now)
            };
            match outcome {
                Ok((envelope, sequence, count)) => {
                    let acker = MemoryAcker {
                        shared: self.shared.clone(),
                        area: self.area,
                        consumer: self.name.clone(),
                        sequence,
                    };
                    return Delivery::new((*envelope).clone(), sequence, count, Box::new(acker));
                }
                Err(Some(at)) if at <= now => continue,
                Err(Some(at)) => {
                    let _woken_or_due = tokio::time::timeout_at(at, self.changes.changed()).await;
                }
                Err(None) => {
                    if self.changes.changed().await.is_err() {
                        // The bus is gone; nothing will ever arrive.
                        std::future::pending::<()>().await;
                    }
                }
            }
        }
    }
}

impl Drop for ConsumerLoop {
    fn drop(&mut self) {
        let mut streams = self.shared.lock();
        if let Some(stream) = streams.get_mut(&self.area) {
            let ephemeral = stream
                .consumers
                .get(&self.name)
                .is_some_and(|cursor| !cursor.durable);
            if ephemeral {
                stream.consumers.remove(&self.name);
            }
        }
    }
}

struct MemoryAcker {
    shared: Arc<Shared>,
    area: Area,
    consumer: String,
    sequence: u64,
}

impl MemoryAcker {
    fn settle(&self, redeliver_after: Option<Duration>) {
        let wake = {
            let mut streams = self.shared.lock();
            let Some(cursor) = streams
                .get_mut(&self.area)
                .and_then(|s| s.consumers.get_mut(&self.consumer))
            else {
                return;
            };
            match redeliver_after {
                None => {
                    // Only a consumer that was full can deliver more because of an ack.
                    let was_full = cursor.pending.len() >= cursor.max_in_flight;
                    cursor.settle(self.sequence);
                    was_full
                }
                Some(delay) => {
                    if cursor.pending.contains_key(&self.sequence) {
                        cursor.schedule(self.sequence, Instant::now() + delay, false);
                    }
                    true
                }
            }
        };
        if wake {
            self.shared.wake_consumers(self.area);
        }
    }
}

#[async_trait]
impl Acker for MemoryAcker {
    async fn ack(self: Box<Self>) -> Result<(), BusError> {
        self.settle(None);
        Ok(())
    }

    async fn nak(self: Box<Self>, delay: Duration) -> Result<(), BusError> {
        self.settle(Some(delay));
        Ok(())
    }
}
