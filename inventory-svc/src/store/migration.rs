//! The inventory database schema.

use oms_platform::migration::{OutboxProgress, PlatformTables};
use sea_orm_migration::{prelude::*, schema::*};

/// Migrations of the inventory database, in order.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(PlatformTables),
            Box::new(StockTables),
            Box::new(ReservationKeys),
            Box::new(OutboxProgress),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("inventory_migrations").into_iden()
    }
}

struct StockTables;

impl MigrationName for StockTables {
    fn name(&self) -> &str {
        "m0002_inventory_stock"
    }
}

#[derive(DeriveIden)]
enum Skus {
    Table,
    Sku,
    Name,
    WeightGrams,
    HsCode,
    OriginCountry,
    LowStockThreshold,
    Available,
    Version,
    ChangeSeq,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Locations {
    Table,
    LocationId,
    Name,
    Lat,
    Lng,
    CountryCode,
}

#[derive(DeriveIden)]
enum StockLevels {
    Table,
    Sku,
    LocationId,
    OnHand,
    Reserved,
    Version,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Movements {
    Table,
    Id,
    Sku,
    LocationId,
    Kind,
    OnHandDelta,
    ReservedDelta,
    Reference,
    Reason,
    CreatedAt,
    ChangeSeq,
}

#[derive(DeriveIden)]
enum Reservations {
    Table,
    ReservationId,
    OrderId,
    Kind,
    UserId,
    Status,
    ExpiresAt,
    CreatedAt,
    UpdatedAt,
    IdempotencyKey,
}

/// A reservation carries the caller's idempotency key itself: a retry finds the reservation,
/// and reserving writes no separate key row.
struct ReservationKeys;

impl MigrationName for ReservationKeys {
    fn name(&self) -> &str {
        "m0003_reservation_keys"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for ReservationKeys {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Reservations::Table)
                    .add_column(string_len_null(Reservations::IdempotencyKey, 200))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("reservations_idempotency_key")
                    .table(Reservations::Table)
                    .col(Reservations::IdempotencyKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Release by order (a placement that lost its answer) finds the reservation directly.
        index(
            manager,
            "reservations_order",
            Reservations::Table,
            [Reservations::OrderId],
        )
        .await
    }
}

#[derive(DeriveIden)]
enum ReservationLines {
    Table,
    ReservationId,
    Sku,
    LocationId,
    Quantity,
    Committed,
    Released,
    ClientOpId,
}

#[derive(DeriveIden)]
enum Counters {
    Table,
    Name,
    Value,
}

#[async_trait::async_trait]
impl MigrationTrait for StockTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Skus::Table)
                    .if_not_exists()
                    .col(string_len(Skus::Sku, 64).primary_key())
                    .col(string_len(Skus::Name, 200))
                    .col(integer(Skus::WeightGrams))
                    .col(string_len(Skus::HsCode, 16))
                    .col(string_len(Skus::OriginCountry, 2))
                    .col(integer(Skus::LowStockThreshold))
                    .col(big_integer(Skus::Available).default(0))
                    .col(big_integer(Skus::Version).default(0))
                    .col(big_integer(Skus::ChangeSeq).default(0))
                    .col(timestamp_with_time_zone(Skus::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        index(manager, "skus_change_seq", Skus::Table, [Skus::ChangeSeq]).await?;
        manager
            .create_table(
                Table::create()
                    .table(Locations::Table)
                    .if_not_exists()
                    .col(string_len(Locations::LocationId, 64).primary_key())
                    .col(string_len(Locations::Name, 200))
                    .col(double(Locations::Lat))
                    .col(double(Locations::Lng))
                    .col(string_len(Locations::CountryCode, 2))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(StockLevels::Table)
                    .if_not_exists()
                    .col(string_len(StockLevels::Sku, 64))
                    .col(string_len(StockLevels::LocationId, 64))
                    .col(big_integer(StockLevels::OnHand))
                    .col(big_integer(StockLevels::Reserved))
                    .col(big_integer(StockLevels::Version))
                    .col(timestamp_with_time_zone(StockLevels::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(StockLevels::Sku)
                            .col(StockLevels::LocationId),
                    )
                    // The invariant itself, enforced by the database as a last line of defence.
                    .check(Expr::cust("reserved >= 0 AND reserved <= on_hand"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Movements::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Movements::Id))
                    .col(string_len(Movements::Sku, 64))
                    .col(string_len(Movements::LocationId, 64))
                    .col(string_len(Movements::Kind, 16))
                    .col(big_integer(Movements::OnHandDelta))
                    .col(big_integer(Movements::ReservedDelta))
                    .col(string_len(Movements::Reference, 200))
                    .col(string_len(Movements::Reason, 500))
                    .col(timestamp_with_time_zone(Movements::CreatedAt))
                    .col(big_integer_null(Movements::ChangeSeq))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "movements_change_seq",
            Movements::Table,
            [Movements::ChangeSeq],
        )
        .await?;
        index(
            manager,
            "movements_level",
            Movements::Table,
            [Movements::Sku, Movements::LocationId, Movements::Id],
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(Reservations::Table)
                    .if_not_exists()
                    .col(string_len(Reservations::ReservationId, 80).primary_key())
                    .col(string_len(Reservations::OrderId, 64))
                    .col(string_len(Reservations::Kind, 8))
                    .col(string_len(Reservations::UserId, 64))
                    .col(string_len(Reservations::Status, 16))
                    .col(timestamp_with_time_zone_null(Reservations::ExpiresAt))
                    .col(timestamp_with_time_zone(Reservations::CreatedAt))
                    .col(timestamp_with_time_zone(Reservations::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "reservations_expiry",
            Reservations::Table,
            [Reservations::Status, Reservations::ExpiresAt],
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(ReservationLines::Table)
                    .if_not_exists()
                    .col(string_len(ReservationLines::ReservationId, 80))
                    .col(string_len(ReservationLines::Sku, 64))
                    .col(string_len(ReservationLines::LocationId, 64))
                    .col(big_integer(ReservationLines::Quantity))
                    .col(big_integer(ReservationLines::Committed))
                    .col(big_integer(ReservationLines::Released))
                    .col(string_len(ReservationLines::ClientOpId, 128).default(""))
                    .primary_key(
                        Index::create()
                            .col(ReservationLines::ReservationId)
                            .col(ReservationLines::Sku)
                            .col(ReservationLines::LocationId),
                    )
                    .check(Expr::cust(
                        "committed >= 0 AND released >= 0 AND committed + released <= quantity",
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Counters::Table)
                    .if_not_exists()
                    .col(string_len(Counters::Name, 32).primary_key())
                    .col(big_integer(Counters::Value))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(Counters::Table)
                    .columns([Counters::Name, Counters::Value])
                    .values_panic(["change_seq".into(), 0i64.into()])
                    .on_conflict(OnConflict::column(Counters::Name).do_nothing().to_owned())
                    .to_owned(),
            )
            .await
    }
}

async fn index<T, C, const N: usize>(
    manager: &SchemaManager<'_>,
    name: &str,
    table: T,
    columns: [C; N],
) -> Result<(), DbErr>
where
    T: IntoIden + 'static,
    C: IntoIden + 'static,
{
    let mut statement = Index::create();
    statement.if_not_exists().name(name).table(table);
    for column in columns {
        statement.col(column);
    }
    manager.create_index(statement.to_owned()).await
}
