//! Idempotent calls: a retry with the same key returns the first result.
//!
//! A handler first asks [`IdempotentCall::replay`] whether the key already has a stored
//! response (returning it), then does its work in a transaction and
//! [`IdempotentCall::remember`]s the response in that same transaction. Two concurrent first attempts race on the primary key; the loser's transaction
//! fails with a unique violation ([`is_conflict`]) and it replays the winner's response.
//! Only successes are stored: a refused call (out of stock, …) may succeed when retried later.
//! Reusing a key for a different request is refused.

use chrono::Utc;
use prost::Message;
use sea_orm::{ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait};

use crate::error::ApiError;

/// The `idempotency_keys` table.
pub mod entity {
    use sea_orm::entity::prelude::*;

    /// The stored result of one idempotent call.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "idempotency_keys")]
    pub struct Model {
        /// The operation (`reserve`, `place_order:<user>`, …).
        #[sea_orm(primary_key, auto_increment = false)]
        pub scope: String,
        /// The caller's key.
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        /// The encoded request, to refuse a key reused for something else.
        pub request: Vec<u8>,
        /// The encoded response.
        pub response: Vec<u8>,
        /// When.
        pub created_at: DateTimeUtc,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Longest accepted idempotency key.
pub const MAX_KEY_LEN: usize = 200;

/// Checks the shape of a key (required, bounded).
pub fn check_key(field: &str, key: &str) -> Result<(), ApiError> {
    if key.trim().is_empty() {
        return Err(ApiError::invalid(
            field,
            "required: a retry with the same key returns the first result",
        ));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(ApiError::invalid(
            field,
            format!("at most {MAX_KEY_LEN} bytes"),
        ));
    }
    Ok(())
}

/// One idempotent call: its scope, its key and its encoded request.
#[derive(Debug, Clone)]
pub struct IdempotentCall {
    scope: String,
    key: String,
    request: Vec<u8>,
}

impl IdempotentCall {
    /// The call `request` with `key` in `scope` (an operation, or operation and user).
    pub fn new(scope: impl Into<String>, key: &str, request: &impl Message) -> Self {
        Self {
            scope: scope.into(),
            key: key.to_owned(),
            request: request.encode_to_vec(),
        }
    }

    /// The stored response, if this call was made before with the same request.
    pub async fn replay<C: ConnectionTrait, R: Message + Default>(
        &self,
        conn: &C,
    ) -> Result<Option<R>, ApiError> {
        let stored = entity::Entity::find_by_id((self.scope.clone(), self.key.clone()))
            .one(conn)
            .await
            .map_err(ApiError::internal)?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        if stored.request != self.request {
            return Err(ApiError::FailedPrecondition {
                message: format!(
                    "idempotency key {:?} was already used for a different request",
                    self.key
                ),
                violations: Vec::new(),
            });
        }
        R::decode(stored.response.as_slice())
            .map(Some)
            .map_err(ApiError::internal)
    }

    /// Stores the response of a successful call inside the call's transaction.
    pub async fn remember<C: ConnectionTrait, R: Message>(
        &self,
        conn: &C,
        response: &R,
    ) -> Result<(), DbErr> {
        let row = entity::ActiveModel {
            scope: Set(self.scope.clone()),
            key: Set(self.key.clone()),
            request: Set(self.request.clone()),
            response: Set(response.encode_to_vec()),
            created_at: Set(Utc::now()),
        };
        entity::Entity::insert(row)
            .exec_without_returning(conn)
            .await?;
        Ok(())
    }
}

/// Forgets results stored longer ago than `retention`.
pub async fn prune<C: ConnectionTrait>(
    conn: &C,
    retention: std::time::Duration,
) -> Result<u64, DbErr> {
    use sea_orm::{ColumnTrait, QueryFilter};
    let cutoff = Utc::now()
        - chrono::Duration::from_std(retention).unwrap_or_else(|_| chrono::Duration::days(7));
    let deleted = entity::Entity::delete_many()
        .filter(entity::Column::CreatedAt.lt(cutoff))
        .exec(conn)
        .await?;
    Ok(deleted.rows_affected)
}

/// Whether a failed transaction lost the race to a concurrent call with the same key.
pub fn is_conflict(error: &DbErr) -> bool {
    crate::db::is_unique_violation(error)
}
