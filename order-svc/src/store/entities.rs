//! sea-orm entities of the order database.

/// Orders: the searchable columns plus the whole order as encoded `oms.order.v1.Order`.
pub mod order {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "orders")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub order_id: String,
        pub user_id: String,
        pub channel: i32,
        pub status: i32,
        /// The buyer's (or channel's) key: (user_id, idempotency_key) is unique.
        pub idempotency_key: String,
        /// Hash of the placement request, to refuse a key reused for a different order.
        pub request_hash: String,
        /// The inventory reservation, once made.
        pub reservation_id: String,
        /// Whether inventory has been told to keep the reservation past its TTL.
        pub reservation_confirmed: bool,
        /// Encoded `oms.order.v1.Order`.
        pub snapshot: Vec<u8>,
        /// Bumps on every change (optimistic concurrency).
        pub version: i64,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Which order a return belongs to.
pub mod order_return {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "order_returns")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub return_id: String,
        pub order_id: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The price list: a SKU's sellable price per currency.
pub mod price {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "prices")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub sku: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub currency_code: String,
        pub name: String,
        /// Decimal string at the currency's minor units.
        pub amount: String,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Customers' account state and limits.
pub mod customer {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "customers")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        /// Encoded `oms.order.v1.Customer`.
        pub record: Vec<u8>,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Channel payloads that could not become orders, kept for operators.
pub mod rejected_intake {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "rejected_intakes")]
    pub struct Model {
        /// UUIDv7: time-ordered, so it doubles as the paging cursor.
        #[sea_orm(primary_key, auto_increment = false)]
        pub intake_id: String,
        pub channel: i32,
        pub payload: Vec<u8>,
        pub reason: String,
        pub received_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
