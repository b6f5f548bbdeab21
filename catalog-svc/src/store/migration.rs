//! The catalog database schema.

use oms_platform::migration::{OutboxProgress, PlatformTables};
use sea_orm_migration::{prelude::*, schema::*};

/// Migrations of the catalog database, in order.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(PlatformTables),
            Box::new(OutboxProgress),
            Box::new(CatalogTables),
            Box::new(TasteTables),
        ]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("catalog_migrations").into_iden()
    }
}

struct CatalogTables;

impl MigrationName for CatalogTables {
    fn name(&self) -> &str {
        "m0001_catalog"
    }
}

#[derive(DeriveIden)]
enum Products {
    Table,
    Sku,
    Product,
    Active,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum StockLevels {
    Table,
    Sku,
    LocationId,
    Available,
    Version,
}

#[derive(DeriveIden)]
enum Centers {
    Table,
    CenterId,
    Center,
}

#[async_trait::async_trait]
impl MigrationTrait for CatalogTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Products::Table)
                    .if_not_exists()
                    .col(string_len(Products::Sku, 64).primary_key())
                    .col(blob(Products::Product))
                    .col(boolean(Products::Active))
                    .col(timestamp_with_time_zone(Products::UpdatedAt))
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
                    .col(big_integer(StockLevels::Available))
                    .col(big_integer(StockLevels::Version))
                    .primary_key(
                        Index::create()
                            .col(StockLevels::Sku)
                            .col(StockLevels::LocationId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Centers::Table)
                    .if_not_exists()
                    .col(string_len(Centers::CenterId, 64).primary_key())
                    .col(blob(Centers::Center))
                    .to_owned(),
            )
            .await
    }
}

/// What recommendations learn from: purchases, interactions, and who opted out.
struct TasteTables;

impl MigrationName for TasteTables {
    fn name(&self) -> &str {
        "m0002_tastes"
    }
}

#[derive(DeriveIden)]
enum Purchases {
    Table,
    OrderId,
    UserId,
    Lat,
    Lng,
    At,
    Skus,
}

#[derive(DeriveIden)]
enum Interactions {
    Table,
    Id,
    UserId,
    Sku,
    Kind,
    At,
}

#[derive(DeriveIden)]
enum OptOuts {
    Table,
    UserId,
    At,
}

#[async_trait::async_trait]
impl MigrationTrait for TasteTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Purchases::Table)
                    .if_not_exists()
                    .col(string_len(Purchases::OrderId, 64).primary_key())
                    .col(string_len(Purchases::UserId, 128))
                    .col(double_null(Purchases::Lat))
                    .col(double_null(Purchases::Lng))
                    .col(timestamp_with_time_zone(Purchases::At))
                    .col(text(Purchases::Skus))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Interactions::Table)
                    .if_not_exists()
                    .col(big_integer(Interactions::Id).primary_key().auto_increment())
                    .col(string_len(Interactions::UserId, 128))
                    .col(string_len(Interactions::Sku, 64))
                    .col(string_len(Interactions::Kind, 16))
                    .col(timestamp_with_time_zone(Interactions::At))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("interactions_user")
                    .table(Interactions::Table)
                    .col(Interactions::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OptOuts::Table)
                    .if_not_exists()
                    .col(string_len(OptOuts::UserId, 128).primary_key())
                    .col(timestamp_with_time_zone(OptOuts::At))
                    .to_owned(),
            )
            .await
    }
}
