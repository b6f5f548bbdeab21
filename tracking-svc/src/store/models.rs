//! Trained delivery-time models: every version with its scores, the model itself (JSON), and
//! the one that serves.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
    sea_query::{Expr, ExprTrait},
};

use super::Store;
use crate::domain::TrackingError;

/// One trained model.
pub mod eta_model {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "eta_models")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub version: i64,
        pub trained_at: DateTimeUtc,
        pub trained_rows: i32,
        pub held_out: i32,
        pub mae_min: f64,
        pub p90_abs_err_min: f64,
        pub p90_coverage: f64,
        pub baseline_mae_min: f64,
        pub serving: bool,
        pub note: String,
        /// The model file (oms-eta-model JSON).
        pub model: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A version's figures (the model file left out).
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    /// The number.
    pub version: i64,
    /// When.
    pub trained_at: DateTime<Utc>,
    /// Rows learned from.
    pub trained_rows: i32,
    /// Rows scored on.
    pub held_out: i32,
    /// Its MAE, minutes.
    pub mae_min: f64,
    /// 90th percentile of its absolute error, minutes.
    pub p90_abs_err_min: f64,
    /// Share within its P90.
    pub p90_coverage: f64,
    /// The baseline's MAE on the same rows.
    pub baseline_mae_min: f64,
    /// Serving now.
    pub serving: bool,
    /// Why it was or was not promoted.
    pub note: String,
}

impl From<&eta_model::Model> for Version {
    fn from(row: &eta_model::Model) -> Self {
        Version {
            version: row.version,
            trained_at: row.trained_at,
            trained_rows: row.trained_rows,
            held_out: row.held_out,
            mae_min: row.mae_min,
            p90_abs_err_min: row.p90_abs_err_min,
            p90_coverage: row.p90_coverage,
            baseline_mae_min: row.baseline_mae_min,
            serving: row.serving,
            note: row.note.clone(),
        }
    }
}

impl Store {
    /// Keeps a newly trained model as the next version (serving it when `serve`); returns
    /// its number.
    pub async fn add_eta_model(
        &self,
        mut version: Version,
        model_json: String,
        serve: bool,
    ) -> Result<i64, TrackingError> {
        let txn = self.db.begin().await?;
        let last = eta_model::Entity::find()
            .select_only()
            .column_as(eta_model::Column::Version.max(), "version")
            .into_tuple::<Option<i64>>()
            .one(&txn)
            .await?
            .flatten()
            .unwrap_or(0);
        version.version = last + 1;
        if serve {
            eta_model::Entity::update_many()
                .col_expr(eta_model::Column::Serving, Expr::value(false))
                .exec(&txn)
                .await?;
        }
        eta_model::Entity::insert(eta_model::ActiveModel {
            version: Set(version.version),
            trained_at: Set(version.trained_at),
            trained_rows: Set(version.trained_rows),
            held_out: Set(version.held_out),
            mae_min: Set(version.mae_min),
            p90_abs_err_min: Set(version.p90_abs_err_min),
            p90_coverage: Set(version.p90_coverage),
            baseline_mae_min: Set(version.baseline_mae_min),
            serving: Set(serve),
            note: Set(version.note.clone()),
            model: Set(model_json),
        })
        .exec_without_returning(&txn)
        .await?;
        txn.commit().await?;
        Ok(version.version)
    }

    /// Every version, newest first.
    pub async fn eta_models(&self) -> Result<Vec<Version>, TrackingError> {
        Ok(eta_model::Entity::find()
            .order_by_desc(eta_model::Column::Version)
            .all(&self.db)
            .await?
            .iter()
            .map(Version::from)
            .collect())
    }

    /// The serving version's number (without reading its model file).
    pub async fn serving_eta_version(&self) -> Result<Option<i64>, TrackingError> {
        Ok(eta_model::Entity::find()
            .select_only()
            .column(eta_model::Column::Version)
            .filter(eta_model::Column::Serving.eq(true))
            .into_tuple::<i64>()
            .one(&self.db)
            .await?)
    }

    /// The serving version with its model file.
    pub async fn serving_eta_model(&self) -> Result<Option<(Version, String)>, TrackingError> {
        Ok(eta_model::Entity::find()
            .filter(eta_model::Column::Serving.eq(true))
            .one(&self.db)
            .await?
            .map(|row| (Version::from(&row), row.model)))
    }

    /// Serves `version` instead of the current one; its model file, or `None` when there is
    /// no such version.
    pub async fn serve_eta_model(
        &self,
        version: i64,
    ) -> Result<Option<(Version, String)>, TrackingError> {
        let txn = self.db.begin().await?;
        let Some(row) = eta_model::Entity::find_by_id(version).one(&txn).await? else {
            return Ok(None);
        };
        eta_model::Entity::update_many()
            .col_expr(
                eta_model::Column::Serving,
                ExprTrait::eq(Expr::col(eta_model::Column::Version), version),
            )
            .exec(&txn)
            .await?;
        txn.commit().await?;
        let mut version = Version::from(&row);
        version.serving = true;
        Ok(Some((version, row.model)))
    }
}
