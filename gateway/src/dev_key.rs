//! DEVELOPMENT ONLY: a local ES256 signing key standing in for an identity provider, so that
//! `oms dev` has working auth and `oms token` can mint tokens. Production gateways take the
//! real provider's JWKS (`--jwks-url` / `--jwks-file`) and never see a private key.

use std::path::{Path, PathBuf};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use ring::{
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair},
};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Issuer of dev tokens (and the gateway's default expected issuer).
pub const DEV_ISSUER: &str = "https://oms.dev.local";
/// Audience of dev tokens (and the gateway's default expected audience).
pub const DEV_AUDIENCE: &str = "oms-mobile";

/// The dev key and its public half as a JWKS.
pub struct DevKey {
    pkcs8: Vec<u8>,
    kid: String,
    /// The JWKS a gateway verifies dev tokens with.
    pub jwks: String,
    /// Where the JWKS was written.
    pub jwks_path: PathBuf,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    scope: &'a str,
    iat: i64,
    nbf: i64,
    exp: i64,
}

/// Loads the dev key from `dir` (creating it the first time) and writes its JWKS beside it.
pub fn ensure(dir: &Path) -> Result<DevKey, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let key_path = dir.join("dev-signing-key.p8");
    let pkcs8 = match std::fs::read(&key_path) {
        Ok(bytes) => bytes,
        Err(_) => {
            let document = EcdsaKeyPair::generate_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                &SystemRandom::new(),
            )
            .map_err(|_| "generating the dev key failed".to_owned())?;
            std::fs::write(&key_path, document.as_ref())
                .map_err(|e| format!("{}: {e}", key_path.display()))?;
            document.as_ref().to_vec()
        }
    };
    let pair = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &pkcs8,
        &SystemRandom::new(),
    )
    .map_err(|_| format!("{} is not an ES256 key", key_path.display()))?;
    // Uncompressed point: 0x04 || x (32 bytes) || y (32 bytes).
    let point = pair.public_key().as_ref();
    let (x, y) = (
        point.get(1..33).unwrap_or_default(),
        point.get(33..65).unwrap_or_default(),
    );
    let kid = format!("dev-{}", &hex::encode(Sha256::digest(point))[..16]);
    let jwks = serde_json::json!({
        "keys": [{"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid, "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)}]
    })
    .to_string();
    let jwks_path = dir.join("dev-jwks.json");
    std::fs::write(&jwks_path, &jwks).map_err(|e| format!("{}: {e}", jwks_path.display()))?;
    Ok(DevKey {
        pkcs8,
        kid,
        jwks,
        jwks_path,
    })
}

impl DevKey {
    /// A token for `user` with `scopes` (space-separated), valid for `ttl`.
    pub fn mint(
        &self,
        user: &str,
        scopes: &str,
        ttl: std::time::Duration,
    ) -> Result<String, String> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: DEV_ISSUER,
            aud: DEV_AUDIENCE,
            sub: user,
            scope: scopes,
            iat: now,
            nbf: now,
            exp: now + i64::try_from(ttl.as_secs()).unwrap_or(3600),
        };
        let header = Header {
            kid: Some(self.kid.clone()),
            ..Header::new(Algorithm::ES256)
        };
        encode(&header, &claims, &EncodingKey::from_ec_der(&self.pkcs8)).map_err(|e| e.to_string())
    }
}
