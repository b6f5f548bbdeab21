//! sea-orm entities of the inventory database.

/// Stock-keeping units and their SKU-wide figures (maintained by the change sequencer).
pub mod sku {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "skus")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub sku: String,
        pub name: String,
        pub weight_grams: i32,
        pub hs_code: String,
        pub origin_country: String,
        pub low_stock_threshold: i32,
        /// Sum of available over every location, as of `change_seq`.
        pub available: i64,
        /// Bumps on every sequenced change of any of the SKU's levels.
        pub version: i64,
        /// The sync cursor of the last change.
        pub change_seq: i64,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Places that hold stock (ids match fulfillment centers).
pub mod location {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "locations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub location_id: String,
        pub name: String,
        pub lat: f64,
        pub lng: f64,
        pub country_code: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Stock of one SKU at one location; `0 <= reserved <= on_hand` is a table constraint.
pub mod level {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "stock_levels")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub sku: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub location_id: String,
        pub on_hand: i64,
        pub reserved: i64,
        pub version: i64,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The append-only ledger: every change of a level, written in the same transaction.
pub mod movement {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "movements")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub sku: String,
        pub location_id: String,
        pub kind: String,
        pub on_hand_delta: i64,
        pub reserved_delta: i64,
        pub reference: String,
        pub reason: String,
        pub created_at: DateTimeUtc,
        /// Assigned after commit by the change sequencer; `None` until then.
        pub change_seq: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Reservations of orders and cart holds of users.
pub mod reservation {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "reservations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub reservation_id: String,
        pub order_id: String,
        /// `order` or `hold`.
        pub kind: String,
        pub user_id: String,
        /// `active`, `partial`, `committed`, `released` or `expired`.
        pub status: String,
        /// `None` once confirmed: it then lasts until committed or released.
        pub expires_at: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        /// The caller's key: a retry with it finds this reservation (holds have none).
        pub idempotency_key: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The lines of a reservation; what is still held is `quantity - committed - released`.
pub mod reservation_line {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "reservation_lines")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub reservation_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub sku: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub location_id: String,
        pub quantity: i64,
        pub committed: i64,
        pub released: i64,
        /// The app's last applied edit of this cart line (holds only).
        pub client_op_id: String,
    }

    impl Model {
        /// Units still held.
        pub fn remaining(&self) -> i64 {
            self.quantity - self.committed - self.released
        }
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Named counters (the change sequence).
pub mod counter {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "counters")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        pub value: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
