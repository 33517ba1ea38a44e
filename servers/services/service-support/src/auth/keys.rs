//! The issuer's signing keys: fetched from its JWKS (found by OpenID
//! discovery or given), kept in memory, refreshed on a timer so removed
//! keys stop verifying, and refetched when a token names a key not yet
//! seen, at most every [`MIN_REFETCH`] so made-up key ids cannot hammer
//! the provider. A failed fetch keeps the keys there are.

use anyhow::{Context, bail};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio_util::task::AbortOnDropHandle;

/// The shortest time between two fetches caused by unknown key ids.
pub const MIN_REFETCH: Duration = Duration::from_secs(10);

/// How soon a failed fetch is tried again by the refresher.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(2);

/// How long one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

pub enum KeySource {
    /// `<issuer>/.well-known/openid-configuration` names the JWKS.
    Discovery(String),
    Jwks(String),
}

/// One verification key, and the algorithm its JWK pins, if any.
pub struct Key {
    pub key: DecodingKey,
    pub algorithm: Option<Algorithm>,
}

#[derive(Default)]
pub struct Keys {
    pub by_id: HashMap<String, Arc<Key>>,
    /// Keys published without a `kid`: usable by tokens without one.
    pub unnamed: Vec<Arc<Key>>,
}

pub struct KeyStore {
    source: KeySource,
    http: reqwest::Client,
    current: RwLock<Option<Arc<Keys>>>,
    /// When the last fetch for an unknown key id started.
    last_refetch: tokio::sync::Mutex<Option<Instant>>,
    /// Bumped whenever the keys are replaced, so verified tokens are
    /// checked again against the new keys.
    generation: std::sync::atomic::AtomicU64,
}

impl KeyStore {
    pub fn new(source: KeySource) -> anyhow::Result<KeyStore> {
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .context("cannot build the HTTP client for the identity provider")?;
        Ok(KeyStore {
            source,
            http,
            current: RwLock::new(None),
            last_refetch: tokio::sync::Mutex::new(None),
            generation: Default::default(),
        })
    }

    /// The keys as last fetched; `None` before the first fetch succeeded.
    pub fn current(&self) -> Option<Arc<Keys>> {
        self.current.read().expect("keys lock").clone()
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Fetches the keys again for a token naming a key not among them,
    /// unless another fetch for that reason started less than
    /// [`MIN_REFETCH`] ago. Whether a fetch happened and succeeded.
    pub async fn refetch_for_unknown_key(&self) -> bool {
        let mut last = self.last_refetch.lock().await;
        if last.is_some_and(|at| at.elapsed() < MIN_REFETCH) {
            return false;
        }
        *last = Some(Instant::now());
        self.fetch().await.is_ok()
    }

    /// Fetches the keys now, and every `interval` (sooner after a failure).
    pub fn spawn_refresher(
        self: Arc<Self>,
        interval: Duration,
        log: slog::Logger,
    ) -> AbortOnDropHandle<()> {
        AbortOnDropHandle::new(tokio::spawn(async move {
            let mut failing = false;
            loop {
                let wait = match self.fetch().await {
                    Ok(count) => {
                        if failing {
                            slog::info!(log, "the identity provider's keys are fetched again";
                                "keys" => count);
                        }
                        failing = false;
                        interval
                    }
                    Err(error) => {
                        if !failing {
                            slog::warn!(log, "cannot fetch the identity provider's keys; \
                                tokens signed by keys fetched before are still accepted";
                                "error" => format!("{error:#}"));
                        }
                        failing = true;
                        interval.min(RETRY_AFTER_FAILURE)
                    }
                };
                tokio::time::sleep(wait).await;
            }
        }))
    }

    /// Replaces the keys with the issuer's current ones; how many there are.
    async fn fetch(&self) -> anyhow::Result<usize> {
        let url = match &self.source {
            KeySource::Jwks(url) => url.clone(),
            KeySource::Discovery(issuer) => self.discover(issuer).await?,
        };
        let set: JwkSet = self
            .http
            .get(&url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .with_context(|| format!("GET {url}"))?
            .json()
            .await
            .with_context(|| format!("{url} is not a JWKS"))?;
        let keys = usable(&set);
        let count = keys.by_id.len() + keys.unnamed.len();
        *self.current.write().expect("keys lock") = Some(Arc::new(keys));
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Ok(count)
    }

    /// The `jwks_uri` of `issuer`'s discovery document, which must name
    /// the same issuer (OpenID Connect Discovery §4.3).
    async fn discover(&self, issuer: &str) -> anyhow::Result<String> {
        #[derive(serde::Deserialize)]
        struct Discovery {
            issuer: String,
            jwks_uri: String,
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let document: Discovery = self
            .http
            .get(&url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .with_context(|| format!("GET {url}"))?
            .json()
            .await
            .with_context(|| format!("{url} is not an OpenID discovery document"))?;
        if document.issuer != issuer {
            bail!(
                "{url} names the issuer {:?}, not {issuer:?}",
                document.issuer
            );
        }
        Ok(document.jwks_uri)
    }
}

/// The keys of `set` that can verify signatures: public keys only (a
/// symmetric `oct` key is never accepted, so no HMAC can pass for a public
/// key), for signing (`use` absent or `sig`).
fn usable(set: &JwkSet) -> Keys {
    let mut keys = Keys::default();
    for jwk in &set.keys {
        if let Some(key) = usable_key(jwk) {
            let key = Arc::new(key);
            match &jwk.common.key_id {
                Some(id) => {
                    keys.by_id.insert(id.clone(), key);
                }
                None => keys.unnamed.push(key),
            }
        }
    }
    keys
}

fn usable_key(jwk: &Jwk) -> Option<Key> {
    use jsonwebtoken::jwk::{AlgorithmParameters, PublicKeyUse};
    if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
        return None;
    }
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return None;
    }
    let algorithm = match jwk.common.key_algorithm {
        Some(algorithm) => Some(Algorithm::try_from(algorithm).ok()?),
        None => None,
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(Key { key, algorithm })
}
