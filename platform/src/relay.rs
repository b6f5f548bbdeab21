//! The outbox relay: publishes a database's outbox in id order, one relay per database at a
//! time (elected through the `relay_lease` row), and keeps its place in that same row.
//!
//! Rows are found without ever being written to. A round reads the rows above the highest id
//! published so far, plus the ids it passed over on the way: ids come from a sequence in the
//! order transactions insert, but transactions commit in any order, so an id may be missing
//! when publication passes it and show up a moment later. Such a gap is looked for again on
//! every round until it shows up, or until every transaction that was running when it was
//! passed has ended — then it never will (that transaction rolled back). Events of one entity
//! still go out in order: a change that depends on an earlier one was written after that one
//! committed, so it has a higher id and is never visible before it.
//!
//! The place (highest id, open gaps) is written with the lease about once a second. A crash
//! re-publishes what went out since, which the bus de-duplicates by event id and consumers by
//! their processed-event log. Published rows are deleted after the retention window.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use oms_proto::events::v1::Envelope;
use prost::Message as _;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement,
    sea_query::{Expr, ExprTrait},
};
use tokio_util::sync::CancellationToken;

use crate::{
    bus::{BusError, EventBus},
    outbox::{Outbox, entity, lease, parse_gaps},
};

/// A jump this large is the sequence skipping ahead (after a crash), not transactions in
/// flight: only the ids just below the new row become gaps.
const MAX_NEW_GAPS: i64 = 100_000;

/// A gap is only given up once every transaction that started before it was passed — give or
/// take this much clock difference between this process and the database — has ended.
const CLOCK_MARGIN: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// Tuning of the relay.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Which database's outbox (the lease is per name).
    pub name: String,
    /// Rows published per round trip.
    pub batch_size: u64,
    /// Look for rows this often even without a wake-up (other replicas' rows).
    pub poll_interval: Duration,
    /// The place is written at least this often while publishing (what a crash may re-send).
    pub save_interval: Duration,
    /// Gaps younger than this are not checked for being given up.
    pub gap_patience: Duration,
    /// Published rows are deleted after this long.
    pub retention: Duration,
    /// A relay that stops renewing loses the lease after this long.
    pub lease_ttl: Duration,
    /// How long the final flush at shutdown may take.
    pub flush_timeout: Duration,
}

impl RelayConfig {
    /// Defaults for the outbox of service `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            batch_size: 256,
            poll_interval: Duration::from_millis(500),
            save_interval: Duration::from_secs(1),
            gap_patience: Duration::from_secs(5),
            retention: Duration::from_secs(24 * 3600),
            lease_ttl: Duration::from_secs(10),
            flush_timeout: Duration::from_secs(5),
        }
    }
}

/// Why a relay round failed (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The database failed.
    #[error("outbox database: {0}")]
    Db(#[from] DbErr),
    /// The bus refused or is away.
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// How far publication got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Place {
    /// Every row up to here is published, except the gaps.
    pub up_to: i64,
    /// Ids passed over, and when (this process's clock).
    pub gaps: BTreeMap<i64, DateTime<Utc>>,
}

impl Place {
    /// Notes a published row; the ids it jumps over become gaps.
    pub fn published(&mut self, id: i64, at: DateTime<Utc>) {
        if id > self.up_to {
            for skipped in std::cmp::max(self.up_to + 1, id - MAX_NEW_GAPS)..id {
                self.gaps.insert(skipped, at);
            }
            self.up_to = id;
        } else {
            self.gaps.remove(&id);
        }
    }

    /// Moves back to just before `id` (a re-publish from there).
    pub fn rewind(&mut self, id: i64) {
        if id <= self.up_to {
            self.up_to = id - 1;
            self.gaps.retain(|gap, _| *gap < id);
        }
    }

    /// The gaps as stored.
    fn gaps_text(&self) -> String {
        self.gaps
            .keys()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The gaps passed before `before`.
    fn gaps_before(&self, before: DateTime<Utc>) -> Vec<i64> {
        self.gaps
            .iter()
            .filter(|(_, at)| **at < before)
            .map(|(id, _)| *id)
            .collect()
    }
}

/// Publishes the outbox; one per service process.
pub struct Relay {
    db: DatabaseConnection,
    bus: Arc<dyn EventBus>,
    outbox: Outbox,
    config: RelayConfig,
    holder: String,
    lease_until: Option<DateTime<Utc>>,
    /// `None` until read with the lease.
    place: Option<Place>,
    /// The place differs from what was written.
    unsaved: bool,
    saved_at: Instant,
}

impl Relay {
    /// A relay for `db`'s outbox, woken through `outbox`.
    pub fn new(
        db: DatabaseConnection,
        bus: Arc<dyn EventBus>,
        outbox: Outbox,
        config: RelayConfig,
    ) -> Self {
        Self {
            db,
            bus,
            outbox,
            config,
            holder: uuid::Uuid::new_v4().to_string(),
            lease_until: None,
            place: None,
            unsaved: false,
            saved_at: Instant::now(),
        }
    }

    /// Publishes until `shutdown`, then flushes what is left (bounded by `flush_timeout`).
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(50);
        let mut last_prune = Instant::now();
        let mut failing = false;
        let mut idle = false;
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let round = async {
                let published = self.publish_pending().await?;
                if idle || (self.unsaved && self.saved_at.elapsed() >= self.config.save_interval) {
                    self.settle_gaps().await?;
                    self.save().await?;
                }
                Ok::<_, RelayError>(published)
            };
            match round.await {
                Ok(published) => {
                    if failing {
                        tracing::info!(outbox = %self.config.name, "event bus reachable again; outbox draining");
                        failing = false;
                    }
                    backoff = Duration::from_millis(50);
                    if published as u64 >= self.config.batch_size {
                        idle = false;
                        continue;
                    }
                }
                Err(error) => {
                    if !failing {
                        tracing::warn!(outbox = %self.config.name, %error, "outbox relay cannot publish; retrying");
                        failing = true;
                    }
                    if matches!(error, RelayError::Bus(_)) {
                        // After a bus loss the streams themselves may be gone.
                        let _ = self.bus.ensure_streams().await;
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            }
            if last_prune.elapsed() > Duration::from_secs(60) {
                last_prune = Instant::now();
                if let Err(error) = self.prune().await {
                    tracing::warn!(outbox = %self.config.name, %error, "outbox prune failed");
                }
            }
            idle = tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.outbox.wake.notified() => false,
                _ = tokio::time::sleep(self.config.poll_interval) => true,
            };
        }
        self.flush().await;
    }

    async fn flush(&mut self) {
        let deadline = tokio::time::Instant::now() + self.config.flush_timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.publish_pending()).await {
                Ok(Ok(published)) if (published as u64) < self.config.batch_size => break,
                Ok(Ok(_)) => continue,
                Ok(Err(error)) => {
                    tracing::warn!(outbox = %self.config.name, %error, "outbox not flushed at shutdown; the next start publishes it");
                    break;
                }
                Err(_) => {
                    tracing::warn!(outbox = %self.config.name, "outbox flush timed out; the next start publishes the rest");
                    break;
                }
            }
        }
        if let Err(error) = self.save().await {
            tracing::warn!(outbox = %self.config.name, %error, "recording how far the outbox got failed; the next start re-sends (harmless)");
        }
    }

    /// Publishes the rows that appeared since the last round: above the highest id published,
    /// or in a gap. Returns how many were published.
    pub async fn publish_pending(&mut self) -> Result<usize, RelayError> {
        let Some(mut place) = self.take_place().await? else {
            return Ok(0);
        };
        let mut new = entity::Column::Id.gt(place.up_to);
        if !place.gaps.is_empty() {
            new = new.or(entity::Column::Id.is_in(place.gaps.keys().copied()));
        }
        let rows = entity::Entity::find()
            .filter(new)
            .order_by_asc(entity::Column::Id)
            .limit(self.config.batch_size)
            .all(&self.db)
            .await;
        let published = match rows {
            Ok(rows) => self.publish(&mut place, rows).await,
            Err(error) => Err(error.into()),
        };
        self.place = Some(place);
        published
    }

    /// The place, with the lease held: read from the lease row when it was just taken, moved
    /// back when a re-publish was asked for. `None` while another relay holds the lease.
    async fn take_place(&mut self) -> Result<Option<Place>, RelayError> {
        if !self.hold_lease().await? {
            self.place = None;
            return Ok(None);
        }
        let mut place = match self.place.take() {
            Some(place) => place,
            None => self.load_place().await?,
        };
        if let Some(from) = self.outbox.republish_from.lock().await.take() {
            place.rewind(from);
            self.unsaved = true;
        }
        Ok(Some(place))
    }

    async fn load_place(&self) -> Result<Place, DbErr> {
        let row = lease::Entity::find_by_id(self.config.name.clone())
            .one(&self.db)
            .await?;
        let now = Utc::now();
        let place = row.map_or_else(Place::default, |row| Place {
            up_to: row.published_up_to,
            gaps: parse_gaps(&row.gaps)
                .into_iter()
                .map(|id| (id, now))
                .collect(),
        });
        if place.up_to > 0 {
            return Ok(place);
        }
        // Nothing published yet: start just below the oldest row kept (older ones were pruned).
        let oldest = entity::Entity::find()
            .select_only()
            .column(entity::Column::Id)
            .order_by_asc(entity::Column::Id)
            .into_tuple::<i64>()
            .one(&self.db)
            .await?;
        Ok(Place {
            up_to: oldest.map_or(0, |id| id - 1),
            ..place
        })
    }

    /// Publishes `rows` in order, stopping at the first the bus refuses.
    async fn publish(
        &mut self,
        place: &mut Place,
        rows: Vec<entity::Model>,
    ) -> Result<usize, RelayError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let started = Instant::now();
        let mut envelopes = Vec::with_capacity(rows.len());
        let mut ids = Vec::with_capacity(rows.len());
        for row in &rows {
            match Envelope::decode(row.payload.as_slice()) {
                Ok(envelope) => {
                    envelopes.push(envelope);
                    ids.push(row.id);
                }
                Err(error) => {
                    // Written by this code, so this is a bug; keep the row for operators and
                    // stop here rather than publish past it out of order.
                    tracing::error!(outbox = %self.config.name, id = row.id, %error, "undecodable outbox row");
                    break;
                }
            }
        }
        let results = self.bus.publish_batch(&envelopes).await;
        let now = Utc::now();
        let mut published = 0;
        for (result, id) in results.iter().zip(&ids) {
            if result.is_err() {
                break;
            }
            place.published(*id, now);
            published += 1;
        }
        if published > 0 {
            self.unsaved = true;
            let name = self.config.name.clone();
            metrics::counter!("oms_outbox_published_total", "outbox" => name.clone())
                .increment(published as u64);
            metrics::histogram!("oms_outbox_batch_seconds", "outbox" => name.clone())
                .record(started.elapsed().as_secs_f64());
            metrics::histogram!("oms_outbox_batch_events", "outbox" => name)
                .record(published as f64);
        }
        match results.into_iter().find_map(Result::err) {
            Some(error) => Err(error.into()),
            None => Ok(published),
        }
    }

    /// Gaps passed a while ago whose transactions have all ended: one last look (anything
    /// there is published), then they are closed.
    async fn settle_gaps(&mut self) -> Result<(), RelayError> {
        let Some(mut place) = self.place.take() else {
            return Ok(());
        };
        let settled = self.settle(&mut place).await;
        self.place = Some(place);
        settled
    }

    async fn settle(&mut self, place: &mut Place) -> Result<(), RelayError> {
        let patience = chrono::Duration::from_std(self.config.gap_patience)
            .unwrap_or(chrono::TimeDelta::seconds(5));
        let old = place.gaps_before(Utc::now() - patience);
        let Some(oldest) = old
            .iter()
            .filter_map(|id| place.gaps.get(id))
            .min()
            .copied()
        else {
            return Ok(());
        };
        if self.db.get_database_backend() == DbBackend::Postgres
            && self.writers_since(oldest + CLOCK_MARGIN).await?
        {
            return Ok(());
        }
        let rows = entity::Entity::find()
            .filter(entity::Column::Id.is_in(old.iter().copied()))
            .order_by_asc(entity::Column::Id)
            .all(&self.db)
            .await?;
        self.publish(place, rows).await?;
        for id in old {
            place.gaps.remove(&id);
        }
        self.unsaved = true;
        Ok(())
    }

    /// Whether a transaction that has written (holds a transaction id) and started before
    /// `before` is still running in this database.
    async fn writers_since(&self, before: DateTime<Utc>) -> Result<bool, DbErr> {
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database() \
                 AND backend_xid IS NOT NULL AND xact_start < $1)",
                [before.into()],
            ))
            .await?;
        Ok(row
            .map(|row| row.try_get_by_index::<bool>(0))
            .transpose()?
            .unwrap_or(true))
    }

    /// Writes the place with the lease (and renews it).
    async fn save(&mut self) -> Result<(), DbErr> {
        let Some(place) = &self.place else {
            return Ok(());
        };
        if !self.unsaved {
            return Ok(());
        }
        let expires_at = Utc::now() + self.ttl();
        let saved = lease::Entity::update_many()
            .col_expr(lease::Column::PublishedUpTo, Expr::value(place.up_to))
            .col_expr(lease::Column::Gaps, Expr::value(place.gaps_text()))
            .col_expr(lease::Column::ExpiresAt, Expr::value(expires_at))
            .filter(lease::Column::Name.eq(self.config.name.clone()))
            .filter(lease::Column::Holder.eq(self.holder.clone()))
            .exec(&self.db)
            .await?;
        if saved.rows_affected == 1 {
            self.lease_until = Some(expires_at);
            self.unsaved = false;
            self.saved_at = Instant::now();
        } else {
            // Another relay took over and goes on from the place last written.
            self.lease_until = None;
            self.place = None;
        }
        Ok(())
    }

    fn ttl(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.config.lease_ttl)
            .unwrap_or_else(|_| chrono::Duration::seconds(10))
    }

    /// Takes or renews the lease; false while another relay holds it.
    async fn hold_lease(&mut self) -> Result<bool, DbErr> {
        let now = Utc::now();
        let ttl = self.ttl();
        if let Some(until) = self.lease_until
            && until - now > ttl / 2
        {
            return Ok(true);
        }
        let expires_at = now + ttl;
        let renewed = lease::Entity::update_many()
            .col_expr(lease::Column::Holder, Expr::value(self.holder.clone()))
            .col_expr(lease::Column::ExpiresAt, Expr::value(expires_at))
            .filter(lease::Column::Name.eq(self.config.name.clone()))
            .filter(
                lease::Column::Holder
                    .eq(self.holder.clone())
                    .or(lease::Column::ExpiresAt.lt(now)),
            )
            .exec(&self.db)
            .await?;
        let held = if renewed.rows_affected == 1 {
            true
        } else {
            let row = lease::ActiveModel {
                name: Set(self.config.name.clone()),
                holder: Set(self.holder.clone()),
                expires_at: Set(expires_at),
                published_up_to: Set(0),
                gaps: Set(String::new()),
            };
            match lease::Entity::insert(row)
                .exec_without_returning(&self.db)
                .await
            {
                Ok(_) => true,
                Err(error) if crate::db::is_unique_violation(&error) => false,
                Err(error) => return Err(error),
            }
        };
        if !held {
            self.place = None;
        }
        self.lease_until = held.then_some(expires_at);
        Ok(held)
    }

    /// Deletes published rows past the retention window.
    async fn prune(&self) -> Result<u64, DbErr> {
        let Some(place) = &self.place else {
            return Ok(0);
        };
        let retention = chrono::Duration::from_std(self.config.retention)
            .unwrap_or_else(|_| chrono::Duration::hours(24));
        let result = entity::Entity::delete_many()
            .filter(entity::Column::Id.lte(place.up_to))
            .filter(entity::Column::CreatedAt.lt(Utc::now() - retention))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(place: &Place) -> Vec<i64> {
        place.gaps.keys().copied().collect()
    }

    #[test]
    fn ids_jumped_over_become_gaps_until_they_show_up() {
        let mut place = Place::default();
        let now = Utc::now();
        place.published(2, now);
        assert_eq!(ids(&place), [1], "id 1 was not there yet");
        place.published(5, now);
        assert_eq!(ids(&place), [1, 3, 4]);
        place.published(4, now);
        place.published(1, now);
        assert_eq!(ids(&place), [3]);
        assert_eq!(place.up_to, 5);
        assert_eq!(place.gaps_text(), "3");
    }

    #[test]
    fn only_gaps_passed_long_enough_ago_are_candidates_to_close() {
        let mut place = Place::default();
        let long_ago = Utc::now() - chrono::TimeDelta::minutes(5);
        place.published(3, long_ago);
        place.published(6, Utc::now());
        assert_eq!(
            place.gaps_before(Utc::now() - chrono::TimeDelta::minutes(1)),
            [1, 2]
        );
    }

    #[test]
    fn a_republish_moves_back_and_forgets_later_gaps() {
        let mut place = Place::default();
        let now = Utc::now();
        place.published(10, now);
        place.rewind(4);
        assert_eq!(place.up_to, 3);
        assert_eq!(ids(&place), [1, 2, 3]);
        place.rewind(20);
        assert_eq!(place.up_to, 3, "moving forward is not a re-publish");
    }
}
