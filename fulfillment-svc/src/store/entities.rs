//! sea-orm entities of the fulfillment database. Centers and shipments keep their full
//! protobuf form in one column and the fields queries need in their own columns.

/// Fulfillment centers.
pub mod center {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "centers")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub center_id: String,
        /// Encoded `oms.fulfillment.v1.FulfillmentCenter` (its `current_load` is not used).
        pub definition: Vec<u8>,
        pub active: bool,
        /// Shipments allocated on `load_date`.
        pub current_load: i32,
        /// `YYYY-MM-DD` (UTC) the load counts for; another day means no load yet.
        pub load_date: String,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Delivery quotes.
pub mod quote {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "quotes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub quote_id: String,
        pub user_id: String,
        /// Encoded `oms.fulfillment.v1.DeliveryQuote`.
        pub quote: Vec<u8>,
        pub expires_at: DateTimeUtc,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Parcels, outbound and returns.
pub mod shipment {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "shipments")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub shipment_id: String,
        pub order_id: String,
        pub user_id: String,
        pub carrier: String,
        pub tracking_number: String,
        pub status: String,
        /// Encoded `oms.fulfillment.v1.Shipment`, events included.
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

/// Carrier reports already applied (carriers repeat themselves).
pub mod carrier_report {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "carrier_reports")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub carrier: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub event_id: String,
        pub shipment_id: String,
        pub received_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The editable tax and customs table.
pub mod tax_rule {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tax_rules")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub country_code: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub region: String,
        /// The rule as JSON (`domain::tax::TaxRule`).
        pub rule: String,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
