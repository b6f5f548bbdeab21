//! Passkeys as the biometric step-up of high-value orders (webauthn-rs does the ceremony):
//! a buyer enrols passkeys (user verification required: the device's biometric or PIN
//! unlocks a key that never leaves it); a held order gets a challenge bound to it — its id,
//! its total, single use, short-lived — and an answer is checked for the origin and RP id,
//! the user-verified flag, the challenge, the signature and the signature counter.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, SubsecRound, Utc};
use oms_platform::{error::ApiError, events::to_timestamp};
use oms_proto::order::v1 as pb;
use webauthn_rs::prelude::{
    Credential, CredentialID, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Url, Webauthn, WebauthnBuilder,
};

use crate::{
    domain::{OrderError, verification},
    store::{
        Store,
        passkeys::{passkey, registration},
    },
};

/// Where passkeys may be used, and how strictly.
#[derive(Debug, Clone)]
pub struct PasskeySettings {
    /// The relying party id: the domain passkeys are bound to.
    pub rp_id: String,
    /// Origins answers may come from; the first is a web origin on `rp_id`.
    pub origins: Vec<String>,
    /// Accept those origins on any port (development).
    pub any_port: bool,
    /// How long a challenge (registration or order) may be answered.
    pub challenge_ttl: Duration,
    /// Failed answers a held order survives.
    pub max_attempts: u32,
}

/// Why an answer to an order's challenge was not taken.
#[derive(Debug)]
pub enum AnswerError {
    /// No challenge to answer: never begun, already answered, or expired.
    NoChallenge(String),
    /// The answer was checked and refused (counted).
    Refused {
        /// Why, for the buyer.
        reason: String,
        /// Failed answers so far, this one included.
        failures: u32,
    },
    /// Anything else (storage).
    Failed(OrderError),
}

impl From<sea_orm::DbErr> for AnswerError {
    fn from(error: sea_orm::DbErr) -> Self {
        AnswerError::Failed(error.into())
    }
}

/// The passkey use cases.
pub struct Passkeys {
    webauthn: Webauthn,
    store: Store,
    settings: PasskeySettings,
}

fn corrupt(what: &str, error: serde_json::Error) -> OrderError {
    OrderError::Corrupt(format!("{what}: {error}"))
}

fn json<T: serde::Serialize>(what: &str, value: &T) -> Result<String, OrderError> {
    serde_json::to_string(value).map_err(|e| corrupt(what, e))
}

/// A credential id as the apps see it (base64url, as `PublicKeyCredential.id`).
fn credential_text(id: &CredentialID) -> String {
    URL_SAFE_NO_PAD.encode(id)
}

fn expiry(ttl: Duration) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::minutes(5))
}

fn passkey_proto(row: &passkey::Model) -> pb::Passkey {
    pb::Passkey {
        credential_id: row.credential_id.clone(),
        name: row.name.clone(),
        created_at: Some(to_timestamp(row.created_at)),
        last_used_at: row.last_used_at.map(to_timestamp),
    }
}

impl Passkeys {
    /// The use cases for `settings`; a configuration webauthn-rs refuses (an origin that is not
    /// a URL, a first origin not on the RP id) is an error at start.
    pub fn new(store: Store, settings: PasskeySettings) -> Result<Self, String> {
        let mut origins = settings.origins.iter().map(|origin| {
            Url::parse(origin.trim()).map_err(|e| format!("passkey origin {origin:?}: {e}"))
        });
        let first = origins
            .next()
            .ok_or("--passkey-origins: at least one web origin is needed")??;
        let mut builder = WebauthnBuilder::new(&settings.rp_id, &first)
            .map_err(|e| {
                format!(
                    "passkey RP id {:?} and origin {first}: {e} (the origin's host must be the RP id or under it)",
                    settings.rp_id
                )
            })?
            .rp_name("OMS")
            .allow_any_port(settings.any_port)
            .timeout(settings.challenge_ttl);
        for origin in origins {
            builder = builder.append_allowed_origin(&origin?);
        }
        let webauthn = builder.build().map_err(|e| format!("passkeys: {e}"))?;
        Ok(Self {
            webauthn,
            store,
            settings,
        })
    }

    /// How many failed answers a held order survives.
    pub fn max_attempts(&self) -> u32 {
        self.settings.max_attempts
    }

    async fn stored_passkeys(
        &self,
        user_id: &str,
    ) -> Result<Vec<(passkey::Model, Passkey)>, OrderError> {
        let rows = self.store.passkeys_of(user_id).await?;
        rows.into_iter()
            .map(|row| {
                let key: Passkey =
                    serde_json::from_str(&row.passkey).map_err(|e| corrupt("passkey", e))?;
                Ok((row, key))
            })
            .collect()
    }

    /// Creation options for a new passkey of `user_id` (their existing ones excluded).
    pub async fn begin_registration(
        &self,
        user_id: &str,
        display_name: &str,
    ) -> Result<pb::BeginPasskeyRegistrationResponse, OrderError> {
        let existing = self.stored_passkeys(user_id).await?;
        let exclude: Vec<CredentialID> = existing
            .iter()
            .map(|(_, key)| key.cred_id().clone())
            .collect();
        let display_name = if display_name.trim().is_empty() {
            user_id
        } else {
            display_name.trim()
        };
        let (options, state) = self
            .webauthn
            .start_passkey_registration(
                verification::user_handle(user_id),
                user_id,
                display_name,
                (!exclude.is_empty()).then_some(exclude),
            )
            .map_err(|e| OrderError::Corrupt(format!("passkey registration: {e}")))?;
        let registration_id = uuid::Uuid::now_v7().to_string();
        let expires_at = expiry(self.settings.challenge_ttl);
        self.store
            .save_registration(registration::Model {
                registration_id: registration_id.clone(),
                user_id: user_id.to_owned(),
                state: json("registration", &state)?,
                expires_at,
            })
            .await?;
        Ok(pb::BeginPasskeyRegistrationResponse {
            registration_id,
            creation_options_json: json("creation options", &options)?,
            expires_at: Some(to_timestamp(expires_at)),
        })
    }

    /// Checks the authenticator's answer to a registration and keeps the passkey.
    pub async fn finish_registration(
        &self,
        request: &pb::FinishPasskeyRegistrationRequest,
    ) -> Result<pb::Passkey, OrderError> {
        let name = verification::passkey_name(&request.name)
            .map_err(|problem| ApiError::invalid("name", problem))?;
        let credential: RegisterPublicKeyCredential =
            serde_json::from_str(&request.credential_json).map_err(|e| {
                ApiError::invalid("credential_json", format!("not a PublicKeyCredential: {e}"))
            })?;
        let registration = self
            .store
            .take_registration(&request.registration_id, &request.user_id)
            .await?
            .filter(|r| r.expires_at > Utc::now())
            .ok_or_else(|| {
                OrderError::NotAllowed(format!(
                    "registration {} is unknown, answered or expired: begin again",
                    request.registration_id
                ))
            })?;
        let state: PasskeyRegistration =
            serde_json::from_str(&registration.state).map_err(|e| corrupt("registration", e))?;
        let key = self
            .webauthn
            .finish_passkey_registration(&credential, &state)
            .map_err(|e| OrderError::Forbidden(format!("the passkey was not accepted: {e}")))?;
        let row = passkey::Model {
            credential_id: credential_text(key.cred_id()),
            user_id: request.user_id.clone(),
            name,
            passkey: json("passkey", &key)?,
            // As the database keeps it (microseconds), so the answer matches a later list.
            created_at: Utc::now().trunc_subsecs(6),
            last_used_at: None,
        };
        if !self.store.add_passkey(row.clone()).await? {
            return Err(OrderError::NotAllowed(
                "this passkey is already registered".into(),
            ));
        }
        Ok(passkey_proto(&row))
    }

    /// `user_id`'s passkeys.
    pub async fn list(&self, user_id: &str) -> Result<Vec<pb::Passkey>, OrderError> {
        Ok(self
            .store
            .passkeys_of(user_id)
            .await?
            .iter()
            .map(passkey_proto)
            .collect())
    }

    /// Removes one of `user_id`'s passkeys.
    pub async fn remove(&self, user_id: &str, credential_id: &str) -> Result<bool, OrderError> {
        Ok(self.store.remove_passkey(user_id, credential_id).await?)
    }

    /// A fresh challenge for a held order, bound to it; replaces an unanswered one.
    pub async fn challenge(
        &self,
        order: &pb::Order,
    ) -> Result<pb::BeginOrderVerificationResponse, OrderError> {
        let keys: Vec<Passkey> = self
            .stored_passkeys(&order.user_id)
            .await?
            .into_iter()
            .map(|(_, key)| key)
            .collect();
        if keys.is_empty() {
            return Err(OrderError::PasskeyRequired(format!(
                "order {} needs the buyer's biometric verification, and they have no passkey yet: enrol one (BeginPasskeyRegistration), then verify",
                order.order_id
            )));
        }
        let failures = self
            .store
            .verification(&order.order_id)
            .await?
            .map_or(0, |v| u32::try_from(v.failures).unwrap_or(u32::MAX));
        let (options, state) = self
            .webauthn
            .start_passkey_authentication(&keys)
            .map_err(|e| OrderError::Corrupt(format!("passkey challenge: {e}")))?;
        let expires_at = expiry(self.settings.challenge_ttl);
        self.store
            .save_challenge(
                &order.order_id,
                &order.user_id,
                &verification::bound_total(order),
                json("challenge", &state)?,
                expires_at,
            )
            .await?;
        Ok(pb::BeginOrderVerificationResponse {
            request_options_json: json("request options", &options)?,
            expires_at: Some(to_timestamp(expires_at)),
            attempts_left: self.settings.max_attempts.saturating_sub(failures),
        })
    }

    /// Checks an answer to `order`'s challenge. The challenge is used up either way; a refused
    /// answer is counted.
    pub async fn answer(&self, order: &pb::Order, assertion_json: &str) -> Result<(), AnswerError> {
        let challenge = self
            .store
            .take_challenge(&order.order_id)
            .await?
            .ok_or_else(|| {
                AnswerError::NoChallenge(format!(
                    "order {} has no open verification challenge (each is answered once): begin the verification",
                    order.order_id
                ))
            })?;
        if challenge.expires_at.is_none_or(|at| at <= Utc::now()) {
            return Err(AnswerError::NoChallenge(format!(
                "the verification challenge of order {} expired: begin the verification again",
                order.order_id
            )));
        }
        match self.check(order, &challenge, assertion_json).await {
            Ok(()) => Ok(()),
            Err(Refusal::Reason(reason)) => {
                let failures = self.store.count_failure(&order.order_id).await?;
                tracing::warn!(order_id = %order.order_id, user_id = %order.user_id, %reason, failures, "order verification refused");
                Err(AnswerError::Refused {
                    reason,
                    failures: u32::try_from(failures).unwrap_or(u32::MAX),
                })
            }
            Err(Refusal::Failed(error)) => Err(AnswerError::Failed(error)),
        }
    }

    async fn check(
        &self,
        order: &pb::Order,
        challenge: &crate::store::passkeys::verification::Model,
        assertion_json: &str,
    ) -> Result<(), Refusal> {
        if challenge.bound_total != verification::bound_total(order)
            || challenge.user_id != order.user_id
        {
            return Err(Refusal::Reason(
                "the challenge was made for another total: begin the verification again".into(),
            ));
        }
        let assertion: PublicKeyCredential = serde_json::from_str(assertion_json).map_err(|e| {
            Refusal::Reason(format!("assertion_json is not a PublicKeyCredential: {e}"))
        })?;
        let state: PasskeyAuthentication = challenge
            .state
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| Refusal::Failed(corrupt("challenge", e)))?
            .ok_or_else(|| Refusal::Reason("no challenge".into()))?;
        let result = self
            .webauthn
            .finish_passkey_authentication(&assertion, &state)
            .map_err(|e| Refusal::Reason(format!("the passkey answer was refused: {e}")))?;
        if !result.user_verified() {
            return Err(Refusal::Reason(
                "the authenticator did not verify the user (biometric or PIN)".into(),
            ));
        }
        // webauthn-rs compared the counter with the passkey as it was when the challenge was
        // made; an answer kept back while a later one was used must be compared with the
        // passkey as it is now.
        let used = credential_text(result.cred_id());
        let keys = self
            .stored_passkeys(&order.user_id)
            .await
            .map_err(Refusal::Failed)?;
        let Some((row, mut key)) = keys.into_iter().find(|(row, _)| row.credential_id == used)
        else {
            return Err(Refusal::Reason("the passkey was removed".into()));
        };
        let stored = Credential::from(key.clone()).counter;
        if (result.counter() > 0 || stored > 0) && result.counter() <= stored {
            return Err(Refusal::Reason(format!(
                "the passkey's signature counter went backwards ({} after {stored}): a cloned authenticator is suspected",
                result.counter()
            )));
        }
        key.update_credential(&result);
        let key = json("passkey", &key).map_err(Refusal::Failed)?;
        self.store
            .passkey_used(&row.credential_id, key, Utc::now())
            .await
            .map_err(|e| Refusal::Failed(e.into()))?;
        Ok(())
    }
}

/// Inside `check`: a refusal to count, or a failure of ours.
enum Refusal {
    Reason(String),
    Failed(OrderError),
}
