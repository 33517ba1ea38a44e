//! Verifying one access token, and remembering verified ones until they
//! expire so that a client's requests after the first skip the signature
//! check.

use super::keys::{Key, KeyStore};
use api_common::Scope;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Clock skew allowed on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 60;

/// The signature algorithms accepted: asymmetric only, so neither `none`
/// nor an HMAC keyed with a public key can pass (RFC 8725 §3.1).
const ALLOWED: [Algorithm; 9] = [
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::EdDSA,
];

/// Verified tokens remembered at most; past it, expired ones are dropped,
/// and if that is not enough, all.
const CACHE_CAPACITY: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    Malformed(String),
    #[error(
        "signed with algorithm {0:?}; accepted: ES256, ES384, RS256, RS384, RS512, PS256, PS384, PS512, EdDSA"
    )]
    Algorithm(String),
    #[error("signed by a key the issuer does not publish (kid {0:?})")]
    UnknownKey(Option<String>),
    #[error("the issuer's keys are not loaded yet; retry shortly")]
    NoKeys,
    #[error("the signature does not verify")]
    Signature,
    #[error("the token has expired; get a new one")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token was issued by another issuer (iss); expected {0}")]
    Issuer(String),
    #[error("the token is not for this audience (aud); expected {0}")]
    Audience(String),
    #[error("the token lacks the claim {0}")]
    MissingClaim(String),
}

/// A caller's text as an answer repeats it: at most 64 characters.
fn shown(text: &str) -> String {
    text.chars().take(64).collect()
}

/// What a verified token says about its bearer.
pub struct Verified {
    pub subject: Arc<str>,
    pub scopes: Vec<Scope>,
    /// `exp`, in Unix seconds.
    expires: i64,
}

#[derive(serde::Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    #[serde(default)]
    scope: Option<String>,
}

pub struct Verifier {
    issuer: String,
    audience: String,
    keys: Arc<KeyStore>,
    /// Verified tokens by their text.
    cache: RwLock<HashMap<Box<str>, Remembered>>,
}

/// A verified token, and the generation of the keys it was verified with:
/// after the keys change it is verified again, so a removed key stops
/// vouching for it.
struct Remembered {
    verified: Arc<Verified>,
    generation: u64,
}

impl Verifier {
    pub fn new(issuer: String, audience: String, keys: Arc<KeyStore>) -> Verifier {
        Verifier {
            issuer,
            audience,
            keys,
            cache: RwLock::new(HashMap::new()),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    pub fn keys_loaded(&self) -> Result<&'static str, String> {
        match self.keys.current() {
            Some(_) => Ok("ok"),
            None => Err(format!(
                "the signing keys of the identity provider {} are not loaded yet",
                self.issuer
            )),
        }
    }

    /// The bearer of `token`, if the token is valid now.
    pub async fn verify(&self, token: &str) -> Result<Arc<Verified>, TokenError> {
        let now = chrono::Utc::now().timestamp();
        let generation = self.keys.generation();
        if let Some(remembered) = self.cache.read().expect("token cache").get(token)
            && remembered.generation == generation
            && now
                <= remembered
                    .verified
                    .expires
                    .saturating_add(LEEWAY_SECS as i64)
        {
            return Ok(remembered.verified.clone());
        }
        // Boxed: verifying may fetch the issuer's keys, a large future that
        // would otherwise make every request's future as large.
        let verified = Arc::new(Box::pin(self.verify_signed(token)).await?);
        let mut cache = self.cache.write().expect("token cache");
        if cache.len() >= CACHE_CAPACITY {
            cache.retain(|_, r| r.generation == generation && r.verified.expires > now);
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
        }
        let remembered = Remembered {
            verified: verified.clone(),
            generation,
        };
        cache.insert(token.into(), remembered);
        Ok(verified)
    }

    async fn verify_signed(&self, token: &str) -> Result<Verified, TokenError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| TokenError::Malformed("the bearer token is not a JWT".into()))?;
        if !ALLOWED.contains(&header.alg) {
            return Err(TokenError::Algorithm(format!("{:?}", header.alg)));
        }
        // RFC 9068 types access tokens `at+jwt`; many providers still type
        // them `JWT` or not at all, and an ID token passing for one is
        // stopped by the audience, which names this API, not a client.
        if let Some(typ) = &header.typ
            && !["at+jwt", "application/at+jwt", "jwt"].contains(&typ.to_ascii_lowercase().as_str())
        {
            return Err(TokenError::Malformed(format!(
                "a token of type {:?} is not an access token",
                shown(typ)
            )));
        }
        let key = self.key_for(header.kid.as_deref()).await?;
        if key.algorithm.is_some_and(|pinned| pinned != header.alg) {
            return Err(TokenError::Algorithm(format!("{:?}", header.alg)));
        }
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<Claims>(token, &key.key, &validation)
            .map_err(|error| self.explain(error.into_kind()))?
            .claims;
        if claims.sub.trim().is_empty() {
            return Err(TokenError::MissingClaim("sub".into()));
        }
        // The subject owns rows and scopes idempotency keys: text only
        // (PostgreSQL's text cannot hold NUL, and no provider means a
        // control character in a subject).
        if claims.sub.chars().any(char::is_control) {
            return Err(TokenError::Malformed(
                "the token's sub holds a control character".into(),
            ));
        }
        let scopes = claims
            .scope
            .as_deref()
            .unwrap_or("")
            .split(' ')
            .filter_map(Scope::parse)
            .collect();
        Ok(Verified {
            subject: claims.sub.into(),
            scopes,
            expires: claims.exp,
        })
    }

    /// The key a token names, fetching the keys again (rate-limited) if
    /// it is not among them.
    async fn key_for(&self, kid: Option<&str>) -> Result<Arc<Key>, TokenError> {
        let find = |keys: &super::keys::Keys| match kid {
            Some(kid) => keys.by_id.get(kid).cloned(),
            None => match (keys.unnamed.as_slice(), keys.by_id.len()) {
                ([only], 0) => Some(only.clone()),
                ([], 1) => keys.by_id.values().next().cloned(),
                _ => None,
            },
        };
        if let Some(key) = self.keys.current().as_deref().and_then(find) {
            return Ok(key);
        }
        self.keys.refetch_for_unknown_key().await;
        match self.keys.current() {
            None => Err(TokenError::NoKeys),
            Some(keys) => find(&keys).ok_or_else(|| TokenError::UnknownKey(kid.map(shown))),
        }
    }

    fn explain(&self, error: ErrorKind) -> TokenError {
        match error {
            ErrorKind::ExpiredSignature => TokenError::Expired,
            ErrorKind::ImmatureSignature => TokenError::NotYetValid,
            ErrorKind::InvalidIssuer => TokenError::Issuer(self.issuer.clone()),
            ErrorKind::InvalidAudience => TokenError::Audience(self.audience.clone()),
            ErrorKind::MissingRequiredClaim(claim) => TokenError::MissingClaim(claim),
            ErrorKind::InvalidSignature => TokenError::Signature,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                TokenError::Algorithm("mismatched with its key".into())
            }
            other => TokenError::Malformed(format!("the token cannot be read: {other:?}")),
        }
    }
}
