//! Passkeys of buyers, registrations under way, and the verification of each held order: its
//! WebAuthn challenge (single use: taken atomically) and its failed answers.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, TryInsertResult,
    sea_query::{Expr, ExprTrait, OnConflict},
};

use super::Store;

/// A buyer's passkey.
pub mod passkey {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "passkeys")]
    pub struct Model {
        /// base64url.
        #[sea_orm(primary_key, auto_increment = false)]
        pub credential_id: String,
        pub user_id: String,
        pub name: String,
        /// webauthn-rs's `Passkey` as JSON: the public key and the last signature counter.
        pub passkey: String,
        pub created_at: DateTimeUtc,
        pub last_used_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A registration between its options and the authenticator's answer.
pub mod registration {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "passkey_registrations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub registration_id: String,
        pub user_id: String,
        /// webauthn-rs's `PasskeyRegistration` as JSON (the challenge).
        pub state: String,
        pub expires_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The verification of one held order.
pub mod verification {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "order_verifications")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub order_id: String,
        pub user_id: String,
        /// The order's total when the challenge was made ("2500.00 EUR").
        pub bound_total: String,
        /// webauthn-rs's `PasskeyAuthentication` as JSON; none once answered.
        pub state: Option<String>,
        pub expires_at: Option<DateTimeUtc>,
        pub failures: i32,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

impl Store {
    /// A buyer's passkeys, oldest first.
    pub async fn passkeys_of(&self, user_id: &str) -> Result<Vec<passkey::Model>, DbErr> {
        passkey::Entity::find()
            .filter(passkey::Column::UserId.eq(user_id))
            .order_by_asc(passkey::Column::CreatedAt)
            .all(&self.db)
            .await
    }

    /// Keeps a new passkey; false when its credential id is already registered (to anyone).
    pub async fn add_passkey(&self, row: passkey::Model) -> Result<bool, DbErr> {
        let inserted = passkey::Entity::insert(passkey::ActiveModel::from(row))
            .on_conflict_do_nothing_on([passkey::Column::CredentialId])
            .exec_without_returning(&self.db)
            .await?;
        Ok(matches!(inserted, TryInsertResult::Inserted(1)))
    }

    /// Removes one of `user_id`'s passkeys; false when they have none with that id.
    pub async fn remove_passkey(&self, user_id: &str, credential_id: &str) -> Result<bool, DbErr> {
        let deleted = passkey::Entity::delete_many()
            .filter(passkey::Column::CredentialId.eq(credential_id))
            .filter(passkey::Column::UserId.eq(user_id))
            .exec(&self.db)
            .await?;
        Ok(deleted.rows_affected == 1)
    }

    /// Records a passkey's use: its new counter (inside `passkey`) and when.
    pub async fn passkey_used(
        &self,
        credential_id: &str,
        passkey: String,
        at: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        passkey::Entity::update_many()
            .col_expr(passkey::Column::Passkey, Expr::value(passkey))
            .col_expr(passkey::Column::LastUsedAt, Expr::value(Some(at)))
            .filter(passkey::Column::CredentialId.eq(credential_id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Keeps a registration until its answer comes (forgetting the expired ones).
    pub async fn save_registration(&self, row: registration::Model) -> Result<(), DbErr> {
        registration::Entity::delete_many()
            .filter(registration::Column::ExpiresAt.lt(Utc::now()))
            .exec(&self.db)
            .await?;
        registration::Entity::insert(registration::ActiveModel::from(row))
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }

    /// Takes `user_id`'s registration out (each is answered once).
    pub async fn take_registration(
        &self,
        registration_id: &str,
        user_id: &str,
    ) -> Result<Option<registration::Model>, DbErr> {
        let taken = registration::Entity::delete_many()
            .filter(registration::Column::RegistrationId.eq(registration_id))
            .filter(registration::Column::UserId.eq(user_id))
            .exec_with_returning(&self.db)
            .await?;
        Ok(taken.into_iter().next())
    }

    /// An order's verification, if one was begun.
    pub async fn verification(&self, order_id: &str) -> Result<Option<verification::Model>, DbErr> {
        verification::Entity::find_by_id(order_id.to_owned())
            .one(&self.db)
            .await
    }

    /// Sets an order's challenge (replacing an unanswered one); failures are kept.
    pub async fn save_challenge(
        &self,
        order_id: &str,
        user_id: &str,
        bound_total: &str,
        state: String,
        expires_at: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        let row = verification::ActiveModel {
            order_id: Set(order_id.to_owned()),
            user_id: Set(user_id.to_owned()),
            bound_total: Set(bound_total.to_owned()),
            state: Set(Some(state)),
            expires_at: Set(Some(expires_at)),
            failures: Set(0),
        };
        verification::Entity::insert(row)
            .on_conflict(
                OnConflict::column(verification::Column::OrderId)
                    .update_columns([
                        verification::Column::BoundTotal,
                        verification::Column::State,
                        verification::Column::ExpiresAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }

    /// Takes an order's challenge out, so it is answered at most once: read, then cleared only
    /// if it is still the one read (two answers racing: one gets it). `None` when there is
    /// none to answer.
    pub async fn take_challenge(
        &self,
        order_id: &str,
    ) -> Result<Option<verification::Model>, DbErr> {
        let Some(row) = self.verification(order_id).await? else {
            return Ok(None);
        };
        let Some(state) = row.state.clone() else {
            return Ok(None);
        };
        let cleared = verification::Entity::update_many()
            .col_expr(
                verification::Column::State,
                Expr::value(Option::<String>::None),
            )
            .filter(verification::Column::OrderId.eq(order_id))
            .filter(verification::Column::State.eq(state))
            .exec(&self.db)
            .await?;
        Ok((cleared.rows_affected == 1).then_some(row))
    }

    /// Counts a failed answer; returns the failures so far.
    pub async fn count_failure(&self, order_id: &str) -> Result<i32, DbErr> {
        let counted = verification::Entity::update_many()
            .col_expr(
                verification::Column::Failures,
                Expr::col(verification::Column::Failures).add(1),
            )
            .filter(verification::Column::OrderId.eq(order_id))
            .exec_with_returning(&self.db)
            .await?;
        Ok(counted.first().map_or(1, |row| row.failures))
    }
}
