//! The order database schema.

use oms_platform::migration::{OutboxProgress, PlatformTables};
use sea_orm_migration::{prelude::*, schema::*};

/// Migrations of the order database, in order.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(PlatformTables),
            Box::new(OrderTables),
            Box::new(OutboxProgress),
            Box::new(PasskeyTables),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("order_migrations").into_iden()
    }
}

struct OrderTables;

impl MigrationName for OrderTables {
    fn name(&self) -> &str {
        "m0002_orders"
    }
}

#[derive(DeriveIden)]
enum Orders {
    Table,
    OrderId,
    UserId,
    Channel,
    Status,
    IdempotencyKey,
    RequestHash,
    ReservationId,
    ReservationConfirmed,
    Snapshot,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum OrderReturns {
    Table,
    ReturnId,
    OrderId,
}

#[derive(DeriveIden)]
enum Prices {
    Table,
    Sku,
    CurrencyCode,
    Name,
    Amount,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Customers {
    Table,
    UserId,
    Record,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum RejectedIntakes {
    Table,
    IntakeId,
    Channel,
    Payload,
    Reason,
    ReceivedAt,
}

async fn index(
    manager: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden,
    columns: &[DynIden],
    unique: bool,
) -> Result<(), DbErr> {
    let mut index = Index::create();
    index.if_not_exists().name(name).table(table);
    for column in columns {
        index.col(column.clone());
    }
    if unique {
        index.unique();
    }
    manager.create_index(index.to_owned()).await
}

#[async_trait::async_trait]
impl MigrationTrait for OrderTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Orders::Table)
                    .if_not_exists()
                    .col(string_len(Orders::OrderId, 64).primary_key())
                    .col(string_len(Orders::UserId, 64))
                    .col(integer(Orders::Channel))
                    .col(integer(Orders::Status))
                    .col(string_len(Orders::IdempotencyKey, 200))
                    .col(string_len(Orders::RequestHash, 64))
                    .col(string_len(Orders::ReservationId, 64))
                    .col(boolean(Orders::ReservationConfirmed))
                    .col(blob(Orders::Snapshot))
                    .col(big_integer(Orders::Version))
                    .col(timestamp_with_time_zone(Orders::CreatedAt))
                    .col(timestamp_with_time_zone(Orders::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "orders_idempotency",
            Orders::Table,
            &[
                Orders::UserId.into_iden(),
                Orders::IdempotencyKey.into_iden(),
            ],
            true,
        )
        .await?;
        index(
            manager,
            "orders_user_created",
            Orders::Table,
            &[Orders::UserId.into_iden(), Orders::CreatedAt.into_iden()],
            false,
        )
        .await?;
        index(
            manager,
            "orders_created",
            Orders::Table,
            &[Orders::CreatedAt.into_iden()],
            false,
        )
        .await?;
        index(
            manager,
            "orders_status_updated",
            Orders::Table,
            &[Orders::Status.into_iden(), Orders::UpdatedAt.into_iden()],
            false,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(OrderReturns::Table)
                    .if_not_exists()
                    .col(string_len(OrderReturns::ReturnId, 64).primary_key())
                    .col(string_len(OrderReturns::OrderId, 64))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Prices::Table)
                    .if_not_exists()
                    .col(string_len(Prices::Sku, 64))
                    .col(string_len(Prices::CurrencyCode, 3))
                    .col(string_len(Prices::Name, 200))
                    .col(string_len(Prices::Amount, 40))
                    .col(timestamp_with_time_zone(Prices::UpdatedAt))
                    .primary_key(Index::create().col(Prices::Sku).col(Prices::CurrencyCode))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Customers::Table)
                    .if_not_exists()
                    .col(string_len(Customers::UserId, 64).primary_key())
                    .col(blob(Customers::Record))
                    .col(timestamp_with_time_zone(Customers::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RejectedIntakes::Table)
                    .if_not_exists()
                    .col(string_len(RejectedIntakes::IntakeId, 36).primary_key())
                    .col(integer(RejectedIntakes::Channel))
                    .col(blob(RejectedIntakes::Payload))
                    .col(text(RejectedIntakes::Reason))
                    .col(timestamp_with_time_zone(RejectedIntakes::ReceivedAt))
                    .to_owned(),
            )
            .await
    }
}

/// Passkeys (WebAuthn credentials) of buyers, registrations under way, and the challenge and
/// failed answers of each order held for verification.
struct PasskeyTables;

impl MigrationName for PasskeyTables {
    fn name(&self) -> &str {
        "m0003_passkeys"
    }
}

#[derive(DeriveIden)]
enum Passkeys {
    Table,
    CredentialId,
    UserId,
    Name,
    Passkey,
    CreatedAt,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum PasskeyRegistrations {
    Table,
    RegistrationId,
    UserId,
    State,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum OrderVerifications {
    Table,
    OrderId,
    UserId,
    BoundTotal,
    State,
    ExpiresAt,
    Failures,
}

#[async_trait::async_trait]
impl MigrationTrait for PasskeyTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Passkeys::Table)
                    .if_not_exists()
                    .col(text(Passkeys::CredentialId).primary_key())
                    .col(string_len(Passkeys::UserId, 64))
                    .col(string_len(Passkeys::Name, 100))
                    .col(text(Passkeys::Passkey))
                    .col(timestamp_with_time_zone(Passkeys::CreatedAt))
                    .col(timestamp_with_time_zone_null(Passkeys::LastUsedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "passkeys_user",
            Passkeys::Table,
            &[Passkeys::UserId.into_iden()],
            false,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(PasskeyRegistrations::Table)
                    .if_not_exists()
                    .col(string_len(PasskeyRegistrations::RegistrationId, 64).primary_key())
                    .col(string_len(PasskeyRegistrations::UserId, 64))
                    .col(text(PasskeyRegistrations::State))
                    .col(timestamp_with_time_zone(PasskeyRegistrations::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OrderVerifications::Table)
                    .if_not_exists()
                    .col(string_len(OrderVerifications::OrderId, 64).primary_key())
                    .col(string_len(OrderVerifications::UserId, 64))
                    .col(string_len(OrderVerifications::BoundTotal, 64))
                    .col(text_null(OrderVerifications::State))
                    .col(timestamp_with_time_zone_null(OrderVerifications::ExpiresAt))
                    .col(integer(OrderVerifications::Failures).default(0))
                    .to_owned(),
            )
            .await
    }
}
