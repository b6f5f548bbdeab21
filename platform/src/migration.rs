//! The tables the platform keeps in every service's database: the outbox, the relay lease,
//! the processed-event log of idempotent consumers and the stored results of idempotent calls.
//! Each service lists [`PlatformTables`] first in its migrator, and the later platform
//! migrations ([`OutboxProgress`]) after its own.

use sea_orm_migration::{prelude::*, schema::*};

/// Creates `outbox`, `relay_lease`, `processed_events` and `idempotency_keys`.
pub struct PlatformTables;

impl MigrationName for PlatformTables {
    fn name(&self) -> &str {
        "m0001_platform_tables"
    }
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    EventId,
    Subject,
    Payload,
    CreatedAt,
    PublishedAt,
}

#[derive(DeriveIden)]
enum RelayLease {
    Table,
    Name,
    Holder,
    ExpiresAt,
    PublishedUpTo,
    Gaps,
}

#[derive(DeriveIden)]
enum ProcessedEvents {
    Table,
    Consumer,
    EventId,
    Outcome,
    ProcessedAt,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    Scope,
    Key,
    Request,
    Response,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for PlatformTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Outbox::Id))
                    .col(string_len_uniq(Outbox::EventId, 64))
                    .col(string_len(Outbox::Subject, 255))
                    .col(blob(Outbox::Payload))
                    .col(timestamp_with_time_zone(Outbox::CreatedAt))
                    .col(timestamp_with_time_zone_null(Outbox::PublishedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("outbox_published_at")
                    .table(Outbox::Table)
                    .col(Outbox::PublishedAt)
                    .col(Outbox::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RelayLease::Table)
                    .if_not_exists()
                    .col(string_len(RelayLease::Name, 64).primary_key())
                    .col(string_len(RelayLease::Holder, 64))
                    .col(timestamp_with_time_zone(RelayLease::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ProcessedEvents::Table)
                    .if_not_exists()
                    .col(string_len(ProcessedEvents::Consumer, 64))
                    .col(string_len(ProcessedEvents::EventId, 64))
                    .col(string_len(ProcessedEvents::Outcome, 512))
                    .col(timestamp_with_time_zone(ProcessedEvents::ProcessedAt))
                    .primary_key(
                        Index::create()
                            .col(ProcessedEvents::Consumer)
                            .col(ProcessedEvents::EventId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("processed_events_processed_at")
                    .table(ProcessedEvents::Table)
                    .col(ProcessedEvents::ProcessedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .if_not_exists()
                    .col(string_len(IdempotencyKeys::Scope, 64))
                    .col(string_len(IdempotencyKeys::Key, 200))
                    .col(blob(IdempotencyKeys::Request))
                    .col(blob(IdempotencyKeys::Response))
                    .col(timestamp_with_time_zone(IdempotencyKeys::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(IdempotencyKeys::Scope)
                            .col(IdempotencyKeys::Key),
                    )
                    .to_owned(),
            )
            .await
    }
}

/// The relay keeps its place with its lease instead of marking every row: outbox rows are
/// written once and never updated (no `published_at`, no index on it); old rows are found by
/// their creation time. A relay starting on a database migrated here sends the outbox it finds
/// once more (consumers skip what they applied).
pub struct OutboxProgress;

impl MigrationName for OutboxProgress {
    fn name(&self) -> &str {
        "m0100_outbox_progress"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for OutboxProgress {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(RelayLease::Table)
                    .add_column(big_integer(RelayLease::PublishedUpTo).default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(RelayLease::Table)
                    .add_column(text(RelayLease::Gaps).default(""))
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("outbox_published_at")
                    .table(Outbox::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    .drop_column(Outbox::PublishedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("outbox_created_at")
                    .table(Outbox::Table)
                    .col(Outbox::CreatedAt)
                    .to_owned(),
            )
            .await
    }
}
