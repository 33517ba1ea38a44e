//! Who calls: every public operation takes an OAuth 2.0 bearer token (RFC
//! 6750), a JWT access token (RFC 9068) from the operator's identity
//! provider, checked as RFC 8725 asks; then the operation's [`Access`] rule
//! decides what the caller may do and whose resources it sees.
//!
//! - `keys`: the issuer's signing keys (JWKS), fetched, cached, refreshed.
//! - `tokens`: verification of one token, and the cache of verified ones.

mod keys;
mod tokens;

use api_common::{Access, ApiError, ErrorCode, Scope};
use http::{HeaderMap, StatusCode};
use keys::{KeySource, KeyStore};
use std::sync::Arc;
use std::time::Duration;
use tokens::{TokenError, Verifier};
use tokio_util::task::AbortOnDropHandle;

/// How callers are authenticated.
#[derive(Clone, Debug, clap::Args)]
pub struct AuthSettings {
    /// The identity provider's issuer URL: tokens' `iss` must equal it, and its signing keys are found by OpenID discovery at `<issuer>/.well-known/openid-configuration` unless AUTH_JWKS_URL is set. Required unless AUTH_DISABLED.
    #[arg(long, env = "AUTH_ISSUER")]
    pub issuer: Option<String>,
    /// The audience tokens must be issued for: their `aud` must contain it. Required unless AUTH_DISABLED.
    #[arg(long, env = "AUTH_AUDIENCE")]
    pub audience: Option<String>,
    /// Where the issuer publishes its signing keys (a JWKS), instead of discovering it.
    #[arg(long, env = "AUTH_JWKS_URL")]
    pub jwks_url: Option<String>,
    /// Seconds between fetches of the signing keys, so keys the issuer removed stop being accepted. A token signed by a key not yet fetched fetches them at once (at most every 10 seconds).
    #[arg(long, env = "AUTH_KEYS_REFRESH_SECS", default_value_t = 300)]
    pub keys_refresh_secs: u64,
    /// Serve the original system's open interface: no caller is authenticated and every caller may do everything. Only for a trusted network and old clients.
    #[arg(long, env = "AUTH_DISABLED", default_value_t = false)]
    pub disabled: bool,
}

impl AuthSettings {
    /// Authentication on, trusting `issuer`'s tokens for `audience`.
    pub fn issuer(issuer: &str, audience: &str) -> Self {
        AuthSettings {
            issuer: Some(issuer.to_string()),
            audience: Some(audience.to_string()),
            jwks_url: None,
            keys_refresh_secs: 300,
            disabled: false,
        }
    }

    /// The open interface.
    pub fn open() -> Self {
        AuthSettings {
            issuer: None,
            audience: None,
            jwks_url: None,
            keys_refresh_secs: 300,
            disabled: true,
        }
    }
}

/// The realm named in every challenge.
const REALM: &str = "orders-and-payments";

/// Authenticates callers, or lets everyone in when authentication is disabled.
#[derive(Clone)]
pub struct Authenticator {
    mode: Mode,
}

#[derive(Clone)]
enum Mode {
    Open,
    Bearer {
        verifier: Arc<Verifier>,
        /// Refreshes the keys while the service runs.
        _refresher: Arc<AbortOnDropHandle<()>>,
    },
}

/// The caller of an operation, once authenticated and allowed.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's `sub`; `None` when authentication is disabled.
    subject: Option<Arc<str>>,
    /// Whether the operation acts on every customer's resources for it.
    sees_all: bool,
}

impl Caller {
    /// Who owns what this caller creates: its subject, or nobody when
    /// authentication is disabled.
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    /// Whose resources the operation may touch: `None` for everyone's (a
    /// scope that sees all, or authentication disabled), else the caller's.
    pub fn owner_filter(&self) -> Option<&str> {
        if self.sees_all { None } else { self.subject() }
    }
}

impl Authenticator {
    /// Starts fetching the issuer's keys (in the background: a provider that
    /// is down delays readiness, not the start) per `settings`.
    pub fn start(settings: &AuthSettings, log: &slog::Logger) -> anyhow::Result<Authenticator> {
        if settings.disabled {
            slog::warn!(
                log,
                "AUTHENTICATION IS DISABLED (AUTH_DISABLED): every caller may read, \
                change, pay and settle every order; use only on a trusted network"
            );
            return Ok(Authenticator { mode: Mode::Open });
        }
        let (Some(issuer), Some(audience)) = (&settings.issuer, &settings.audience) else {
            anyhow::bail!(
                "set AUTH_ISSUER and AUTH_AUDIENCE (the identity provider whose access tokens \
                 callers send), or AUTH_DISABLED=true for the open interface on a trusted network"
            );
        };
        let source = match &settings.jwks_url {
            Some(url) => KeySource::Jwks(url.clone()),
            None => KeySource::Discovery(issuer.clone()),
        };
        let keys = Arc::new(KeyStore::new(source)?);
        let refresher = keys.clone().spawn_refresher(
            Duration::from_secs(settings.keys_refresh_secs.max(1)),
            log.clone(),
        );
        let verifier = Verifier::new(issuer.clone(), audience.clone(), keys);
        Ok(Authenticator {
            mode: Mode::Bearer {
                verifier: Arc::new(verifier),
                _refresher: Arc::new(refresher),
            },
        })
    }

    /// The caller of an operation whose rule is `access`, from the request's
    /// `Authorization` header; a refusal carries its `WWW-Authenticate`
    /// challenge. An operation without a rule is refused to everyone.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        access: Option<Access>,
    ) -> Result<Caller, ApiError> {
        let Some(access) = access else {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::InternalError,
                "this operation has no access rule; it is refused to everyone",
            ));
        };
        let verifier = match &self.mode {
            Mode::Open => {
                return Ok(Caller {
                    subject: None,
                    sees_all: true,
                });
            }
            Mode::Bearer { verifier, .. } => verifier,
        };
        let Some(token) = bearer_token(headers)? else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthorized,
                format!(
                    "this operation needs a bearer token with scope {}: send Authorization: \
                     Bearer <access token>, a token from the identity provider {} for the \
                     audience {}",
                    alternatives(access.any_of),
                    verifier.issuer(),
                    verifier.audience()
                ),
            )
            .with_challenge(format!("Bearer realm=\"{REALM}\"")));
        };
        let verified = verifier.verify(token).await.map_err(invalid_token)?;
        if !access.any_of.iter().any(|s| verified.scopes.contains(s)) {
            let needed = access.any_of.first().map_or("", |s| s.as_str());
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::InsufficientScope,
                format!(
                    "this operation needs a token with scope {}; this one has {}",
                    alternatives(access.any_of),
                    if verified.scopes.is_empty() {
                        "none".to_string()
                    } else {
                        verified
                            .scopes
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(" ")
                    }
                ),
            )
            .with_challenge(format!(
                "Bearer realm=\"{REALM}\", error=\"insufficient_scope\", scope=\"{needed}\""
            )));
        }
        let sees_all = access.sees_all.iter().any(|s| verified.scopes.contains(s));
        Ok(Caller {
            subject: Some(verified.subject.clone()),
            sees_all,
        })
    }

    /// Whether every caller is let in (AUTH_DISABLED).
    pub fn is_open(&self) -> bool {
        matches!(self.mode, Mode::Open)
    }

    /// For `/readyz`: whether tokens can be verified (the keys are loaded),
    /// and a loud note when authentication is disabled.
    pub fn readiness(&self) -> Result<&'static str, String> {
        match &self.mode {
            Mode::Open => Ok("DISABLED: every caller may do everything (AUTH_DISABLED)"),
            Mode::Bearer { verifier, .. } => verifier.keys_loaded(),
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header; `None` without
/// the header. Another scheme, or a header that is not one token, is refused.
fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(invalid_token(TokenError::Malformed(
            "send one Authorization header".into(),
        )));
    }
    let text = value.to_str().map_err(|_| {
        invalid_token(TokenError::Malformed(
            "the Authorization header is not visible ASCII".into(),
        ))
    })?;
    match text.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err(invalid_token(TokenError::Malformed(
            "the Authorization header must be `Bearer <access token>`".into(),
        ))),
    }
}

fn invalid_token(error: TokenError) -> ApiError {
    let message = error.to_string();
    // error_description is a quoted string of visible ASCII without quotes
    // or backslashes (RFC 6750 §3).
    let description: String = message
        .chars()
        .filter(|c| (' '..='~').contains(c) && *c != '"' && *c != '\\')
        .collect();
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        ErrorCode::InvalidToken,
        format!("the bearer token was refused: {message}"),
    )
    .with_challenge(format!(
        "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{description}\""
    ))
}

fn alternatives(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" or ")
}
