//! The catalog's tables: products (the encoded `Product`), and what inventory's level events
//! and fulfillment's center events said (each level kept at its newest version).

pub mod migration;
pub mod tastes;

use chrono::Utc;
use oms_proto::{
    catalog::v1::Product, fulfillment::v1::FulfillmentCenter, inventory::v1::StockLevel,
};
use prost::Message;
use sea_orm::{
    ActiveValue::Set,
    ConnectionTrait, DatabaseConnection, EntityTrait,
    sea_query::{Alias, Expr, ExprTrait, OnConflict},
};

use crate::domain::CatalogError;

/// The `products` table.
pub mod product {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "products")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub sku: String,
        /// Encoded `oms.catalog.v1.Product`.
        pub product: Vec<u8>,
        pub active: bool,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The `stock_levels` table.
pub mod level {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "stock_levels")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub sku: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub location_id: String,
        pub available: i64,
        pub version: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The `centers` table.
pub mod center {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "centers")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub center_id: String,
        /// Encoded `oms.fulfillment.v1.FulfillmentCenter`.
        pub center: Vec<u8>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

fn corrupt(error: prost::DecodeError) -> CatalogError {
    CatalogError::Corrupt(error.to_string())
}

/// Catalog persistence.
#[derive(Clone, Debug)]
pub struct Store {
    /// The catalog database.
    pub db: DatabaseConnection,
}

impl Store {
    /// Every product, active or not.
    pub async fn products(&self) -> Result<Vec<Product>, CatalogError> {
        product::Entity::find()
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| Product::decode(row.product.as_slice()).map_err(corrupt))
            .collect()
    }

    /// Products written at or after `since` (by any replica).
    pub async fn products_changed_since(
        &self,
        since: chrono::DateTime<Utc>,
    ) -> Result<Vec<Product>, CatalogError> {
        use sea_orm::{ColumnTrait, QueryFilter};
        product::Entity::find()
            .filter(product::Column::UpdatedAt.gte(since))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| Product::decode(row.product.as_slice()).map_err(corrupt))
            .collect()
    }

    /// Creates or replaces products (in one statement).
    pub async fn upsert_products(&self, products: &[Product]) -> Result<(), CatalogError> {
        if products.is_empty() {
            return Ok(());
        }
        let now = Utc::now();
        let rows = products.iter().map(|product| product::ActiveModel {
            sku: Set(product.sku.clone()),
            product: Set(product.encode_to_vec()),
            active: Set(product.active),
            updated_at: Set(now),
        });
        product::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::column(product::Column::Sku)
                    .update_columns([
                        product::Column::Product,
                        product::Column::Active,
                        product::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }

    /// Every stock level heard of.
    pub async fn levels(&self) -> Result<Vec<level::Model>, CatalogError> {
        Ok(level::Entity::find().all(&self.db).await?)
    }

    /// Keeps each level at its newest version (an older report changes nothing).
    pub async fn save_levels<C: ConnectionTrait>(
        &self,
        conn: &C,
        levels: &[StockLevel],
    ) -> Result<(), CatalogError> {
        if levels.is_empty() {
            return Ok(());
        }
        let rows = levels.iter().map(|l| level::ActiveModel {
            sku: Set(l.sku.clone()),
            location_id: Set(l.location_id.clone()),
            available: Set(l.available),
            version: Set(l.version),
        });
        let newer = Expr::col((level::Entity, level::Column::Version))
            .lt(Expr::col((Alias::new("excluded"), level::Column::Version)));
        level::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([level::Column::Sku, level::Column::LocationId])
                    .update_columns([level::Column::Available, level::Column::Version])
                    .action_and_where(newer)
                    .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
        Ok(())
    }

    /// Every center heard of.
    pub async fn centers(&self) -> Result<Vec<FulfillmentCenter>, CatalogError> {
        center::Entity::find()
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| FulfillmentCenter::decode(row.center.as_slice()).map_err(corrupt))
            .collect()
    }

    /// Creates or replaces centers.
    pub async fn save_centers<C: ConnectionTrait>(
        &self,
        conn: &C,
        centers: &[FulfillmentCenter],
    ) -> Result<(), CatalogError> {
        if centers.is_empty() {
            return Ok(());
        }
        let rows = centers.iter().map(|c| center::ActiveModel {
            center_id: Set(c.center_id.clone()),
            center: Set(c.encode_to_vec()),
        });
        center::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::column(center::Column::CenterId)
                    .update_column(center::Column::Center)
                    .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
        Ok(())
    }
}
