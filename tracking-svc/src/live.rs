//! The live stream: one server-streaming call per user. A reconnecting app passes its last
//! cursor and first gets exactly what it missed from the feed table, then live items from the
//! hub (anything at or before the replayed cursor is skipped, so nothing repeats). Heartbeats
//! keep idle mobile connections open.
//!
//! The hub is fed by [`tail_feed`] (durable items: handed over by this process's writers, read
//! from the feed table for other replicas' items) and by [`relay_live_events`] (positions, ETAs and stock levels straight
//! from the bus, conflated).

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use oms_platform::{
    bus::{Area, ConsumerSpec, EventBus},
    events::now,
};
use oms_proto::{
    events::v1::envelope::Payload,
    tracking::v1::{
        Heartbeat, InventoryUpdate, LiveUpdate, PositionUpdate, SubscribeResponse,
        live_update::Kind,
    },
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::{hub::Hub, store::Store};

/// Items buffered towards one client before conflation takes over.
const CHANNEL_DEPTH: usize = 16;
/// Feed items read per query.
const PAGE: u64 = 500;

/// Opens a user's stream after `resume_after` (a feed cursor; `None` = live only).
pub fn open(
    hub: Arc<Hub>,
    store: Store,
    user_id: String,
    skus: Vec<String>,
    resume_after: Option<i64>,
    heartbeat: Duration,
    shutdown: CancellationToken,
) -> ReceiverStream<Result<SubscribeResponse, Status>> {
    let (sender, receiver) = mpsc::channel(CHANNEL_DEPTH);
    tokio::spawn(async move {
        let subscriber = hub.subscribe(&user_id, skus);
        metrics::gauge!("oms_tracking_open_streams").set(hub.open_streams() as f64);
        let outcome = stream(
            &subscriber,
            &store,
            &user_id,
            resume_after,
            heartbeat,
            &sender,
            &shutdown,
        )
        .await;
        hub.unsubscribe(&subscriber);
        metrics::gauge!("oms_tracking_open_streams").set(hub.open_streams() as f64);
        if let Err(status) = outcome {
            // The client may be gone already; then there is no one to tell.
            let _ = sender.send(Err(status)).await;
        }
    });
    ReceiverStream::new(receiver)
}

type Sender = mpsc::Sender<Result<SubscribeResponse, Status>>;

/// `Ok(false)` when the client went away.
async fn send(sender: &Sender, update: LiveUpdate) -> bool {
    sender
        .send(Ok(SubscribeResponse {
            update: Some(update),
        }))
        .await
        .is_ok()
}

async fn stream(
    subscriber: &crate::hub::Subscriber,
    store: &Store,
    user_id: &str,
    resume_after: Option<i64>,
    heartbeat: Duration,
    sender: &Sender,
    shutdown: &CancellationToken,
) -> Result<(), Status> {
    let mut last = resume_after.unwrap_or(i64::MIN);
    if resume_after.is_some() {
        loop {
            let page = store
                .feed_after(Some(user_id), last, PAGE)
                .await
                .map_err(|e| Status::unavailable(format!("replay failed: {e}")))?;
            let full = page.len() as u64 == PAGE;
            for (_, update) in page {
                last = update.cursor.parse().unwrap_or(last);
                if !send(sender, update).await {
                    return Ok(());
                }
            }
            if !full {
                break;
            }
        }
    }
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            // The app hung up: stop holding its subscription.
            () = sender.closed() => return Ok(()),
            () = subscriber.wake.notified() => {}
            () = tokio::time::sleep(heartbeat) => {
                let beat = LiveUpdate { cursor: String::new(), at: Some(now()), kind: Some(Kind::Heartbeat(Heartbeat {})) };
                if !send(sender, beat).await {
                    return Ok(());
                }
                continue;
            }
        }
        let batch = subscriber.take();
        for update in batch.durable {
            let cursor: i64 = update.cursor.parse().unwrap_or(i64::MIN);
            if cursor <= last {
                continue;
            }
            last = cursor;
            if !send(sender, update).await {
                return Ok(());
            }
        }
        for update in batch.latest {
            if !send(sender, update).await {
                return Ok(());
            }
        }
        if batch.overflowed {
            return Err(Status::resource_exhausted(
                "the stream fell too far behind; reconnect with your last cursor",
            ));
        }
    }
}

/// Stream items this process committed, with their cursors, for [`tail_feed`].
pub type FeedHandoff = mpsc::UnboundedSender<Vec<(String, LiveUpdate)>>;

/// Moves committed feed items to the hub, in cursor order. This process's writers hand their
/// items over after they commit: when they continue the cursor, they go straight to the hub
/// without a query. The feed table is read when they do not (another replica wrote in
/// between — cursors come from one counter row, so a jump shows it) and after `poll` without
/// items from here (other replicas' items while this one is quiet).
pub async fn tail_feed(
    store: Store,
    hub: Arc<Hub>,
    mut handed: mpsc::UnboundedReceiver<Vec<(String, LiveUpdate)>>,
    poll: Duration,
    shutdown: CancellationToken,
) {
    let mut last = loop {
        match store.feed_head().await {
            Ok(head) => break head,
            Err(error) => {
                tracing::warn!(%error, "reading the feed head failed; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(poll) => {}
                }
            }
        }
    };
    loop {
        let read = tokio::select! {
            () = shutdown.cancelled() => return,
            items = handed.recv() => match items {
                Some(items) => !continue_with(&hub, &mut last, items),
                None => return,
            },
            () = tokio::time::sleep(poll) => true,
        };
        if read {
            read_feed(&store, &hub, &mut last).await;
        }
    }
}

/// Passes on `items` while they continue the cursor `last`; false at a jump (items in
/// between are in the table only).
fn continue_with(hub: &Hub, last: &mut i64, items: Vec<(String, LiveUpdate)>) -> bool {
    for (user_id, update) in items {
        let Ok(cursor) = update.cursor.parse::<i64>() else {
            return false;
        };
        if cursor <= *last {
            continue;
        }
        if cursor != *last + 1 {
            return false;
        }
        *last = cursor;
        hub.durable(&user_id, &update);
    }
    true
}

/// Passes on every item of the feed table after `last`.
async fn read_feed(store: &Store, hub: &Hub, last: &mut i64) {
    loop {
        match store.feed_after(None, *last, PAGE).await {
            Ok(page) => {
                let full = page.len() as u64 == PAGE;
                for (user_id, update) in page {
                    *last = update.cursor.parse().unwrap_or(*last);
                    hub.durable(&user_id, &update);
                }
                if !full {
                    return;
                }
            }
            Err(error) => {
                tracing::warn!(%error, "tailing the feed failed; retrying");
                return;
            }
        }
    }
}

/// Relays conflatable events from the bus to this process's streams (every replica listens,
/// from now on: a missed position is superseded by the next one).
pub async fn relay_live_events(bus: Arc<dyn EventBus>, hub: Arc<Hub>, shutdown: CancellationToken) {
    let specs = [
        ConsumerSpec::live(Area::Tracking),
        ConsumerSpec::live(Area::Inventory).with_filter("oms.inventory.*.level_changed"),
    ];
    let relays = specs
        .into_iter()
        .map(|spec| relay(bus.clone(), hub.clone(), spec, shutdown.clone()));
    futures::future::join_all(relays).await;
}

async fn relay(
    bus: Arc<dyn EventBus>,
    hub: Arc<Hub>,
    spec: ConsumerSpec,
    shutdown: CancellationToken,
) {
    while !shutdown.is_cancelled() {
        let mut deliveries = match bus.consume(spec.clone()).await {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(%error, area = ?spec.area, "live relay cannot subscribe; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        loop {
            let next = tokio::select! {
                () = shutdown.cancelled() => return,
                next = deliveries.next() => next,
            };
            let Some(Ok(delivery)) = next else { break };
            let envelope = &delivery.envelope;
            let at = envelope.occurred_at;
            match &envelope.payload {
                Some(Payload::PositionRecorded(recorded)) => {
                    let update = LiveUpdate {
                        cursor: String::new(),
                        at,
                        kind: Some(Kind::Position(PositionUpdate {
                            shipment_id: recorded.shipment_id.clone(),
                            order_id: recorded.order_id.clone(),
                            point: recorded.point,
                            recorded_at: recorded.recorded_at,
                        })),
                    };
                    hub.latest(
                        &envelope.user_id,
                        &format!("position:{}", recorded.shipment_id),
                        &update,
                    );
                }
                Some(Payload::EtaUpdated(updated)) => {
                    if let Some(eta) = &updated.eta {
                        let update = LiveUpdate {
                            cursor: String::new(),
                            at,
                            kind: Some(Kind::Eta(eta.clone())),
                        };
                        hub.latest(
                            &envelope.user_id,
                            &format!("eta:{}", eta.shipment_id),
                            &update,
                        );
                    }
                }
                Some(Payload::StockLevelChanged(changed)) => {
                    if let Some(level) = &changed.level {
                        let update = LiveUpdate {
                            cursor: String::new(),
                            at,
                            kind: Some(Kind::Inventory(InventoryUpdate {
                                sku: level.sku.clone(),
                                available: changed.sku_available,
                                version: changed.sku_version,
                            })),
                        };
                        hub.stock(&level.sku, &update);
                    }
                }
                _ => {}
            }
            // Nothing durable depends on these; the acknowledgement only frees the bus.
            let _ = delivery.ack().await;
        }
    }
}
