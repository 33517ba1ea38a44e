//! The token issuer every service under test trusts: a [`local_issuer`]
//! on loopback, one per test binary, serving from a thread of its own so
//! that it outlives each test's runtime. Tests mint what they need: the
//! caller every client sends by default, other customers, and tokens
//! broken in every way a client could break one.

use local_issuer::{Issuer, SigningIdentity};
use service_support::auth::AuthSettings;
use std::sync::OnceLock;
use std::time::Duration;

/// The audience the services under test expect.
pub const AUDIENCE: &str = "orders-and-payments-tests";

/// The subject of [`caller_token`].
pub const CALLER: &str = "test-customer";

/// Every scope there is.
pub const ALL_SCOPES: &str =
    "orders:read orders:write payments:read payments:write payments:settle admin";

/// The shared issuer.
pub fn issuer() -> &'static Issuer {
    static ISSUER: OnceLock<Issuer> = OnceLock::new();
    ISSUER.get_or_init(|| {
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("token-issuer".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime for the token issuer");
                runtime.block_on(async move {
                    let signing = SigningIdentity::generate().expect("a signing key");
                    let issuer = Issuer::serve(([127, 0, 0, 1], 0).into(), None, signing, AUDIENCE)
                        .await
                        .expect("the token issuer starts");
                    sender.send(issuer).expect("the test waits for the issuer");
                    std::future::pending::<()>().await;
                });
            })
            .expect("a thread for the token issuer");
        receiver.recv().expect("the token issuer starts")
    })
}

/// The authentication settings of a service under test: the shared issuer,
/// found by discovery.
pub fn auth_settings() -> AuthSettings {
    AuthSettings::issuer(issuer().url(), AUDIENCE)
}

/// A token for `subject` with the space-separated `scopes`, valid an hour.
pub fn token(subject: &str, scopes: &str) -> String {
    issuer().token(subject, scopes, Duration::from_secs(3600))
}

/// The token clients send unless a test says otherwise: [`CALLER`], with
/// every scope.
pub fn caller_token() -> String {
    token(CALLER, ALL_SCOPES)
}

/// A plain HTTP client that sends `token` on every request.
pub fn http_client_with(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().expect("a header value"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("an HTTP client")
}
