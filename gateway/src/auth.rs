//! OAuth2 resource server: bearer JWT access tokens checked against the identity provider's
//! JWKS (a file, or a URL fetched with caching and re-fetched when an unknown key id shows
//! up, so keys rotate without a restart). Only RS256 and ES256 are accepted — never `none`,
//! never HS* (an HMAC "signed" with a public key is the classic forgery) — and a key is only
//! used with the algorithm it was published for. `iss`, `aud`, `exp` and `nbf` are checked with
//! a small leeway.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Mutex, PoisonError, RwLock},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use jsonwebtoken::{
    Algorithm, DecodingKey, Validation, decode, decode_header,
    jwk::{AlgorithmParameters, JwkSet},
};
use serde::Deserialize;
use sha2::{Digest, Sha256};

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The scopes of the public API.
pub mod scope {
    /// Read one's own orders, quotes, stock, the live stream.
    pub const READ: &str = "orders:read";
    /// Place, cancel, return, hold stock; register devices, set notification preferences.
    pub const WRITE: &str = "orders:write";
    /// A courier's app: report positions of the shipments assigned to the token's subject.
    pub const COURIER: &str = "courier";
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's subject: the user.
    pub user_id: String,
    /// Granted scopes.
    pub scopes: BTreeSet<String>,
}

/// Why a token was refused (the message goes to the client: it names the check, not secrets).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `authorization: Bearer …`.
    #[error("missing bearer token")]
    Missing,
    /// The token failed a check.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The JWKS could not be read.
    #[error("signing keys unavailable: {0}")]
    Keys(String),
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    scope: String,
    /// Expiry, seconds since the epoch.
    exp: u64,
}

/// A token checked before, until it expires.
struct Checked {
    caller: Caller,
    /// Seconds since the epoch after which the token is refused (its `exp` plus the leeway).
    until: u64,
}

/// Tokens remembered at most; beyond it expired ones are dropped, then all.
const MAX_CHECKED: usize = 100_000;

/// Where the keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A JWKS JSON file.
    File(std::path::PathBuf),
    /// A JWKS URL (`http://`; TLS terminates in front of the identity provider's proxy).
    Url(String),
}

struct Keys {
    by_kid: HashMap<String, (DecodingKey, Algorithm)>,
    fetched: Instant,
}

/// Checks access tokens.
pub struct Verifier {
    source: KeySource,
    issuer: String,
    audience: String,
    leeway: Duration,
    refetch_every: Duration,
    keys: RwLock<Keys>,
    /// Tokens whose signature and claims were checked, by their SHA-256: an app sends the
    /// same token with every call until it expires, and a signature check (ES256 or RS256)
    /// costs a large share of a call's CPU. Forgotten whenever the keys are read again.
    checked: Mutex<HashMap<[u8; 32], Checked>>,
}

fn parse_jwks(json: &str) -> Result<HashMap<String, (DecodingKey, Algorithm)>, String> {
    let set: JwkSet = serde_json::from_str(json).map_err(|e| format!("not a JWKS: {e}"))?;
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        // The algorithm follows from the key type; nothing else is accepted for it.
        let algorithm = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Algorithm::RS256,
            AlgorithmParameters::EllipticCurve(ec)
                if ec.curve == jsonwebtoken::jwk::EllipticCurve::P256 =>
            {
                Algorithm::ES256
            }
            _ => continue,
        };
        let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("key {kid}: {e}"))?;
        keys.insert(kid, (key, algorithm));
    }
    if keys.is_empty() {
        return Err("no RS256 or ES256 key with a key id".into());
    }
    Ok(keys)
}

async fn load(source: &KeySource) -> Result<HashMap<String, (DecodingKey, Algorithm)>, String> {
    let json = match source {
        KeySource::File(path) => tokio::fs::read_to_string(path)
            .await
            .map_err(|e| format!("{}: {e}", path.display()))?,
        KeySource::Url(url) => fetch(url).await?,
    };
    parse_jwks(&json)
}

async fn fetch(url: &str) -> Result<String, String> {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::{client::legacy::Client, rt::TokioExecutor};
    let uri: http::Uri = url.parse().map_err(|e| format!("JWKS URL {url}: {e}"))?;
    let client: Client<_, Empty<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let response = tokio::time::timeout(Duration::from_secs(5), client.get(uri))
        .await
        .map_err(|_| format!("{url}: no answer within 5 s"))?
        .map_err(|e| format!("{url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{url} answered {}", response.status()));
    }
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    String::from_utf8(body.to_vec()).map_err(|e| e.to_string())
}

impl Verifier {
    /// Loads the keys once (a bad source is an error at start, not at the first request).
    /// An unknown key id re-reads them, at most once per `refetch_every` (a flood of forged
    /// key ids must not hammer the identity provider).
    pub async fn new(
        source: KeySource,
        issuer: String,
        audience: String,
        refetch_every: Duration,
    ) -> Result<Self, AuthError> {
        let by_kid = load(&source).await.map_err(AuthError::Keys)?;
        Ok(Self {
            source,
            issuer,
            audience,
            leeway: Duration::from_secs(30),
            refetch_every,
            keys: RwLock::new(Keys {
                by_kid,
                fetched: Instant::now(),
            }),
            checked: Mutex::default(),
        })
    }

    fn key(&self, kid: &str) -> Option<(DecodingKey, Algorithm)> {
        self.keys.read().ok()?.by_kid.get(kid).cloned()
    }

    /// Re-reads the keys if an unknown key id may mean they rotated.
    async fn refresh(&self) -> Result<(), AuthError> {
        let stale = self
            .keys
            .read()
            .map(|k| k.fetched.elapsed() >= self.refetch_every)
            .unwrap_or(true);
        if !stale {
            return Ok(());
        }
        let by_kid = load(&self.source).await.map_err(AuthError::Keys)?;
        if let Ok(mut keys) = self.keys.write() {
            *keys = Keys {
                by_kid,
                fetched: Instant::now(),
            };
        }
        // A key may have been withdrawn: check every token again.
        self.checked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        Ok(())
    }

    /// Checks a bearer token and says who is calling.
    pub async fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = unix_now();
        if let Some(checked) = self
            .checked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&digest)
            && now <= checked.until
        {
            return Ok(checked.caller.clone());
        }
        let (caller, exp) = self.check(token).await?;
        let mut checked = self.checked.lock().unwrap_or_else(PoisonError::into_inner);
        if checked.len() >= MAX_CHECKED {
            checked.retain(|_, c| now <= c.until);
            if checked.len() >= MAX_CHECKED {
                checked.clear();
            }
        }
        checked.insert(
            digest,
            Checked {
                caller: caller.clone(),
                until: exp.saturating_add(self.leeway.as_secs()),
            },
        );
        Ok(caller)
    }

    /// Checks signature and claims; the caller and the token's expiry.
    async fn check(&self, token: &str) -> Result<(Caller, u64), AuthError> {
        let header =
            decode_header(token).map_err(|e| AuthError::Invalid(format!("malformed: {e}")))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(AuthError::Invalid(format!(
                "algorithm {:?} is not accepted (RS256 or ES256 only)",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| AuthError::Invalid("no key id (kid)".into()))?;
        let (key, algorithm) = match self.key(&kid) {
            Some(found) => found,
            None => {
                self.refresh().await?;
                self.key(&kid)
                    .ok_or_else(|| AuthError::Invalid(format!("unknown key id {kid:?}")))?
            }
        };
        if algorithm != header.alg {
            return Err(AuthError::Invalid(format!(
                "key {kid:?} is not an {:?} key",
                header.alg
            )));
        }
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.leeway = self.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = decode::<Claims>(token, &key, &validation)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        let claims = data.claims;
        if claims.sub.is_empty()
            || claims.sub.len() > oms_platform::error::MAX_ID_LEN
            || !oms_platform::bus::is_subject_token(&claims.sub)
        {
            return Err(AuthError::Invalid("subject is not a usable user id".into()));
        }
        let caller = Caller {
            user_id: claims.sub,
            scopes: claims.scope.split_whitespace().map(str::to_owned).collect(),
        };
        Ok((caller, claims.exp))
    }
}
