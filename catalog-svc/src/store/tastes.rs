//! The tables recommendations learn from: purchases (one row per confirmed order), buyers'
//! interactions, and who turned personalisation off.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
    sea_query::{Expr, OnConflict},
};

use super::Store;
use crate::{domain::CatalogError, recommend::Purchase};

/// The `purchases` table.
pub mod purchase {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "purchases")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub order_id: String,
        /// Empty once the buyer opted out.
        pub user_id: String,
        pub lat: Option<f64>,
        pub lng: Option<f64>,
        pub at: DateTimeUtc,
        /// The SKUs, comma-separated.
        pub skus: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The `interactions` table.
pub mod interaction {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "interactions")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub user_id: String,
        pub sku: String,
        /// "view" or "add_to_cart".
        pub kind: String,
        pub at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The `opt_outs` table.
pub mod opt_out {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "opt_outs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        pub at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

impl Store {
    /// Keeps a purchase (once per order).
    pub async fn save_purchases<C: ConnectionTrait>(
        &self,
        conn: &C,
        purchases: &[(String, Purchase)],
    ) -> Result<(), CatalogError> {
        if purchases.is_empty() {
            return Ok(());
        }
        let rows = purchases.iter().map(|(order_id, p)| purchase::ActiveModel {
            order_id: Set(order_id.clone()),
            user_id: Set(p.user_id.clone()),
            lat: Set(p.point.map(|x| x.0)),
            lng: Set(p.point.map(|x| x.1)),
            at: Set(p.at),
            skus: Set(p.skus.join(",")),
        });
        purchase::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::column(purchase::Column::OrderId)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
        Ok(())
    }

    /// Every purchase kept, oldest first, with its order id.
    pub async fn purchases(&self) -> Result<Vec<(String, Purchase)>, CatalogError> {
        Ok(purchase::Entity::find()
            .order_by_asc(purchase::Column::At)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| {
                let point = row.lat.zip(row.lng);
                let purchase = Purchase {
                    user_id: row.user_id,
                    point,
                    at: row.at,
                    skus: row.skus.split(',').map(str::to_owned).collect(),
                };
                (row.order_id, purchase)
            })
            .collect())
    }

    /// Keeps an interaction.
    pub async fn add_interaction(
        &self,
        user_id: &str,
        sku: &str,
        kind: &str,
        at: DateTime<Utc>,
    ) -> Result<(), CatalogError> {
        interaction::Entity::insert(interaction::ActiveModel {
            user_id: Set(user_id.to_owned()),
            sku: Set(sku.to_owned()),
            kind: Set(kind.to_owned()),
            at: Set(at),
            ..Default::default()
        })
        .exec_without_returning(&self.db)
        .await?;
        Ok(())
    }

    /// Every interaction kept, oldest first.
    pub async fn interactions(&self) -> Result<Vec<interaction::Model>, CatalogError> {
        Ok(interaction::Entity::find()
            .order_by_asc(interaction::Column::At)
            .all(&self.db)
            .await?)
    }

    /// Turns a buyer's personalisation off: their interactions deleted, their purchases no
    /// longer theirs, and a note that keeps it so. Returns the interactions deleted.
    pub async fn opt_out(&self, user_id: &str, at: DateTime<Utc>) -> Result<u64, CatalogError> {
        let txn = self.db.begin().await?;
        let deleted = interaction::Entity::delete_many()
            .filter(interaction::Column::UserId.eq(user_id))
            .exec(&txn)
            .await?
            .rows_affected;
        purchase::Entity::update_many()
            .col_expr(purchase::Column::UserId, Expr::value(""))
            .filter(purchase::Column::UserId.eq(user_id))
            .exec(&txn)
            .await?;
        opt_out::Entity::insert(opt_out::ActiveModel {
            user_id: Set(user_id.to_owned()),
            at: Set(at),
        })
        .on_conflict(
            OnConflict::column(opt_out::Column::UserId)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        txn.commit().await?;
        Ok(deleted)
    }

    /// Turns a buyer's personalisation back on (from now: nothing deleted comes back).
    pub async fn opt_in(&self, user_id: &str) -> Result<(), CatalogError> {
        opt_out::Entity::delete_many()
            .filter(opt_out::Column::UserId.eq(user_id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// The buyers who opted out.
    pub async fn opted_out(&self) -> Result<Vec<String>, CatalogError> {
        Ok(opt_out::Entity::find()
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| row.user_id)
            .collect())
    }
}
