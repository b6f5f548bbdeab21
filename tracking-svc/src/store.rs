//! The service's database schema: the platform's outbox tables for now.

use oms_platform::migration::PlatformTables;
use sea_orm_migration::{
    MigrationTrait, MigratorTrait,
    sea_query::{Alias, DynIden, IntoIden},
};

/// Migrations of the tracking database, in order.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(PlatformTables)]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("tracking_migrations").into_iden()
    }
}
