//! A token issuer on loopback, for development (devstack) and tests: it
//! holds an Ed25519 signing key, serves its OpenID discovery document and
//! JWKS over HTTP, and mints RFC 9068 access tokens. It is not an identity
//! provider: it authenticates nobody, and hands a token to whoever asks
//! the process that runs it.

use anyhow::Context;
use bytes::Bytes;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, spki::der::pem::LineEnding};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm,
    OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// A signing key and what the issuer publishes about it.
pub struct SigningIdentity {
    key: EncodingKey,
    pem: String,
    /// The public key, base64url: the JWK's `x`.
    public: String,
    kid: String,
}

impl SigningIdentity {
    /// A new random Ed25519 key.
    pub fn generate() -> anyhow::Result<SigningIdentity> {
        let secret: [u8; 32] = rand::random();
        let pem = SigningKey::from_bytes(&secret)
            .to_pkcs8_pem(LineEnding::LF)
            .context("cannot encode the signing key")?
            .to_string();
        SigningIdentity::from_pem(&pem)
    }

    /// The key in PKCS#8 PEM, as [`SigningIdentity::pem`] writes it.
    pub fn from_pem(pem: &str) -> anyhow::Result<SigningIdentity> {
        let key = EncodingKey::from_ed_pem(pem.as_bytes()).context("not an Ed25519 PKCS#8 key")?;
        let verifying = SigningKey::from_pkcs8_pem(pem)
            .context("not an Ed25519 PKCS#8 key")?
            .verifying_key();
        let public = base64url(verifying.as_bytes());
        Ok(SigningIdentity {
            key,
            pem: pem.to_string(),
            kid: format!("ed25519-{}", &public[..12]),
            public,
        })
    }

    /// The key kept in `file`, or a new one written there.
    pub fn load_or_create(file: &Path) -> anyhow::Result<SigningIdentity> {
        if let Ok(pem) = std::fs::read_to_string(file) {
            return SigningIdentity::from_pem(&pem)
                .with_context(|| format!("{} holds no usable key", file.display()));
        }
        let identity = SigningIdentity::generate()?;
        std::fs::write(file, &identity.pem)
            .with_context(|| format!("cannot write {}", file.display()))?;
        Ok(identity)
    }

    pub fn pem(&self) -> &str {
        &self.pem
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK, with its `kid`, `alg` and `use`.
    pub fn jwk(&self) -> Jwk {
        Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(KeyAlgorithm::EdDSA),
                key_id: Some(self.kid.clone()),
                ..CommonParameters::default()
            },
            algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                key_type: OctetKeyPairType::OctetKeyPair,
                curve: EllipticCurve::Ed25519,
                x: self.public.clone(),
            }),
        }
    }

    /// `claims` signed with this key, `header`'s `alg` and `kid` set to it.
    pub fn sign(&self, mut header: Header, claims: &serde_json::Value) -> String {
        header.alg = Algorithm::EdDSA;
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).expect("claims that serialise")
    }
}

/// An issuer serving its discovery document and keys on loopback.
pub struct Issuer {
    url: String,
    audience: String,
    signing: Arc<SigningIdentity>,
}

impl Issuer {
    /// Serves `signing`'s keys on `address` (port 0 picks one) until the
    /// runtime stops, as the issuer `url` (by default the address it
    /// listens on, for clients on this machine); tokens are for `audience`.
    pub async fn serve(
        address: SocketAddr,
        url: Option<&str>,
        signing: SigningIdentity,
        audience: &str,
    ) -> anyhow::Result<Issuer> {
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("the token issuer cannot listen on {address}"))?;
        let url = match url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{}", listener.local_addr()?),
        };
        let signing = Arc::new(signing);
        let documents = Arc::new(Documents::new(&url, &signing)?);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let documents = documents.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request: hyper::Request<_>| {
                        let documents = documents.clone();
                        async move { Ok::<_, hyper::Error>(documents.answer(request.uri().path())) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Issuer {
            url,
            audience: audience.to_string(),
            signing,
        })
    }

    /// The issuer URL: tokens' `iss`, and where discovery starts.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    pub fn signing(&self) -> &SigningIdentity {
        &self.signing
    }

    /// An access token for `subject` with the space-separated `scopes`,
    /// valid for `lifetime`.
    pub fn token(&self, subject: &str, scopes: &str, lifetime: Duration) -> String {
        let grant = Grant {
            issuer: &self.url,
            audience: &self.audience,
            subject,
            scopes,
            lifetime,
        };
        grant.sign(&self.signing)
    }
}

/// An issuer kept in a directory: its key (`issuer-key.pem`), and the URL
/// and audience it serves under (`issuer-url`, `issuer-audience`), so that
/// another process given the same directory mints tokens it accepts.
pub struct KeptIssuer {
    dir: std::path::PathBuf,
}

impl KeptIssuer {
    pub fn at(dir: &Path) -> KeptIssuer {
        KeptIssuer {
            dir: dir.to_path_buf(),
        }
    }

    /// The key kept there, or a new one written there.
    pub fn signing(&self) -> anyhow::Result<SigningIdentity> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        SigningIdentity::load_or_create(&self.dir.join("issuer-key.pem"))
    }

    /// Serves the kept key on `address`, under `url` if given (else the
    /// address it listens on), for `audience`; records both for [`KeptIssuer::token`].
    pub async fn serve(
        &self,
        address: SocketAddr,
        url: Option<&str>,
        audience: &str,
    ) -> anyhow::Result<Issuer> {
        let issuer = Issuer::serve(address, url, self.signing()?, audience).await?;
        std::fs::write(self.dir.join("issuer-url"), &issuer.url)?;
        std::fs::write(self.dir.join("issuer-audience"), audience)?;
        Ok(issuer)
    }

    /// A token from the issuer that served from this directory.
    pub fn token(&self, subject: &str, scopes: &str, lifetime: Duration) -> anyhow::Result<String> {
        let read = |name: &str| {
            std::fs::read_to_string(self.dir.join(name))
                .map(|text| text.trim().to_string())
                .with_context(|| {
                    format!(
                        "{} holds no issuer: serve one from it first",
                        self.dir.display()
                    )
                })
        };
        let (url, audience) = (read("issuer-url")?, read("issuer-audience")?);
        let grant = Grant {
            issuer: &url,
            audience: &audience,
            subject,
            scopes,
            lifetime,
        };
        Ok(grant.sign(&self.signing()?))
    }
}

/// What an access token says (RFC 9068).
pub struct Grant<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    pub subject: &'a str,
    /// Space-separated.
    pub scopes: &'a str,
    pub lifetime: Duration,
}

impl Grant<'_> {
    /// The access token, signed with `signing`: valid from now for the
    /// grant's lifetime, typed `at+jwt`.
    pub fn sign(&self, signing: &SigningIdentity) -> String {
        let now = unix_now();
        let claims = serde_json::json!({
            "iss": self.issuer,
            "aud": self.audience,
            "sub": self.subject,
            "scope": self.scopes,
            "iat": now,
            "nbf": now,
            "exp": now + self.lifetime.as_secs() as i64,
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some("at+jwt".to_string());
        signing.sign(header, &claims)
    }
}

fn base64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The seconds since 1970 now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

struct Documents {
    discovery: Bytes,
    jwks: Bytes,
}

impl Documents {
    fn new(url: &str, signing: &SigningIdentity) -> anyhow::Result<Documents> {
        let discovery = serde_json::json!({
            "issuer": url,
            "jwks_uri": format!("{url}/jwks.json"),
            "id_token_signing_alg_values_supported": ["EdDSA"],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
        });
        let jwks = JwkSet {
            keys: vec![signing.jwk()],
        };
        Ok(Documents {
            discovery: serde_json::to_vec(&discovery)?.into(),
            jwks: serde_json::to_vec(&jwks)?.into(),
        })
    }

    fn answer(&self, path: &str) -> hyper::Response<Full<Bytes>> {
        let body = match path {
            "/.well-known/openid-configuration" => Some(self.discovery.clone()),
            "/jwks.json" => Some(self.jwks.clone()),
            _ => None,
        };
        let mut response = hyper::Response::new(Full::new(body.clone().unwrap_or_default()));
        if body.is_none() {
            *response.status_mut() = hyper::StatusCode::NOT_FOUND;
        }
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        );
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_with_the_published_key_and_a_kept_key_is_the_same_key() {
        let signing = SigningIdentity::generate().unwrap();
        let token = signing.sign(
            Header::new(Algorithm::EdDSA),
            &serde_json::json!({"sub": "s", "exp": unix_now() + 60}),
        );
        let key = jsonwebtoken::DecodingKey::from_jwk(&signing.jwk()).unwrap();
        let mut validation = jsonwebtoken::Validation::new(Algorithm::EdDSA);
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation).unwrap();
        let again = SigningIdentity::from_pem(signing.pem()).unwrap();
        assert_eq!(again.jwk(), signing.jwk());
    }
}
