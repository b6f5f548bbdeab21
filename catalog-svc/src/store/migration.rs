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
