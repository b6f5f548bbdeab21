//! The fulfillment database schema.

use oms_platform::migration::{OutboxProgress, PlatformTables};
use sea_orm_migration::{prelude::*, schema::*};

/// Migrations of the fulfillment database, in order.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(PlatformTables),
            Box::new(FulfillmentTables),
            Box::new(OutboxProgress),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("fulfillment_migrations").into_iden()
    }
}

struct FulfillmentTables;

impl MigrationName for FulfillmentTables {
    fn name(&self) -> &str {
        "m0002_fulfillment"
    }
}

#[derive(DeriveIden)]
enum Centers {
    Table,
    CenterId,
    Definition,
    Active,
    CurrentLoad,
    LoadDate,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Quotes {
    Table,
    QuoteId,
    UserId,
    Quote,
    ExpiresAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Shipments {
    Table,
    ShipmentId,
    OrderId,
    UserId,
    Carrier,
    TrackingNumber,
    Status,
    Snapshot,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum CarrierReports {
    Table,
    Carrier,
    EventId,
    ShipmentId,
    ReceivedAt,
}

#[derive(DeriveIden)]
enum TaxRules {
    Table,
    CountryCode,
    Region,
    Rule,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for FulfillmentTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Centers::Table)
                    .if_not_exists()
                    .col(string_len(Centers::CenterId, 64).primary_key())
                    .col(blob(Centers::Definition))
                    .col(boolean(Centers::Active))
                    .col(integer(Centers::CurrentLoad))
                    .col(string_len(Centers::LoadDate, 10))
                    .col(timestamp_with_time_zone(Centers::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Quotes::Table)
                    .if_not_exists()
                    .col(string_len(Quotes::QuoteId, 64).primary_key())
                    .col(string_len(Quotes::UserId, 64))
                    .col(blob(Quotes::Quote))
                    .col(timestamp_with_time_zone(Quotes::ExpiresAt))
                    .col(timestamp_with_time_zone(Quotes::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Shipments::Table)
                    .if_not_exists()
                    .col(string_len(Shipments::ShipmentId, 64).primary_key())
                    .col(string_len(Shipments::OrderId, 64))
                    .col(string_len(Shipments::UserId, 64))
                    .col(string_len(Shipments::Carrier, 32))
                    .col(string_len(Shipments::TrackingNumber, 64))
                    .col(string_len(Shipments::Status, 32))
                    .col(blob(Shipments::Snapshot))
                    .col(big_integer(Shipments::Version))
                    .col(timestamp_with_time_zone(Shipments::CreatedAt))
                    .col(timestamp_with_time_zone(Shipments::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("shipments_order")
                    .table(Shipments::Table)
                    .col(Shipments::OrderId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("shipments_tracking")
                    .table(Shipments::Table)
                    .col(Shipments::Carrier)
                    .col(Shipments::TrackingNumber)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CarrierReports::Table)
                    .if_not_exists()
                    .col(string_len(CarrierReports::Carrier, 32))
                    .col(string_len(CarrierReports::EventId, 128))
                    .col(string_len(CarrierReports::ShipmentId, 64))
                    .col(timestamp_with_time_zone(CarrierReports::ReceivedAt))
                    .primary_key(
                        Index::create()
                            .col(CarrierReports::Carrier)
                            .col(CarrierReports::EventId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(TaxRules::Table)
                    .if_not_exists()
                    .col(string_len(TaxRules::CountryCode, 2))
                    .col(string_len(TaxRules::Region, 8))
                    .col(text(TaxRules::Rule))
                    .col(timestamp_with_time_zone(TaxRules::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(TaxRules::CountryCode)
                            .col(TaxRules::Region),
                    )
                    .to_owned(),
            )
            .await
    }
}
