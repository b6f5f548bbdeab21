//! The embedded ledger's own database: kept apart from the orders, as an external provider's
//! books would be (and so a ledger call never waits for an order transaction's connection).

use sea_orm_migration::{prelude::*, schema::*};

/// One row per authorisation with its running figures.
pub mod payment {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "payments")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub authorization_id: String,
        pub order_id: String,
        pub currency_code: String,
        pub authorized: String,
        pub captured: String,
        pub refunded: String,
        pub voided: String,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Every movement of the embedded payment ledger; (authorization, key) makes each idempotent.
pub mod payment_entry {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "payment_entries")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub authorization_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub idempotency_key: String,
        /// authorize, capture, void or refund.
        pub kind: String,
        pub amount: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Migrations of the ledger database.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(LedgerTables)]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("payment_migrations").into_iden()
    }
}

struct LedgerTables;

impl MigrationName for LedgerTables {
    fn name(&self) -> &str {
        "m0001_payment_ledger"
    }
}

#[derive(DeriveIden)]
enum Payments {
    Table,
    AuthorizationId,
    OrderId,
    CurrencyCode,
    Authorized,
    Captured,
    Refunded,
    Voided,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PaymentEntries {
    Table,
    AuthorizationId,
    IdempotencyKey,
    Kind,
    Amount,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for LedgerTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Payments::Table)
                    .if_not_exists()
                    .col(string_len(Payments::AuthorizationId, 64).primary_key())
                    .col(string_len(Payments::OrderId, 64))
                    .col(string_len(Payments::CurrencyCode, 3))
                    .col(string_len(Payments::Authorized, 40))
                    .col(string_len(Payments::Captured, 40))
                    .col(string_len(Payments::Refunded, 40))
                    .col(string_len(Payments::Voided, 40))
                    .col(timestamp_with_time_zone(Payments::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PaymentEntries::Table)
                    .if_not_exists()
                    .col(string_len(PaymentEntries::AuthorizationId, 64))
                    .col(string_len(PaymentEntries::IdempotencyKey, 200))
                    .col(string_len(PaymentEntries::Kind, 16))
                    .col(string_len(PaymentEntries::Amount, 40))
                    .col(timestamp_with_time_zone(PaymentEntries::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(PaymentEntries::AuthorizationId)
                            .col(PaymentEntries::IdempotencyKey),
                    )
                    .to_owned(),
            )
            .await
    }
}
