//! `token-issuer` as compose and the Kubernetes dev overlay run it: `serve`
//! publishes discovery and keys under the URL it is given, and `token`,
//! beside it, mints tokens that verify with those keys.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test]
async fn a_token_from_beside_the_issuer_verifies_with_the_keys_it_serves() {
    let data = std::env::temp_dir().join(format!("token-issuer-{}", uuid::Uuid::new_v4()));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let mut server = Command::new(env!("CARGO_BIN_EXE_token-issuer"))
        .args(["--data-dir", data.to_str().unwrap(), "serve"])
        .args(["--listen", &format!("127.0.0.1:{port}"), "--url", &url])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let discovery: serde_json::Value = harness::wait_until(
        "the issuer to serve discovery",
        Duration::from_secs(30),
        async || match reqwest::get(format!("{url}/.well-known/openid-configuration")).await {
            Ok(answer) => Ok(answer.json().await.unwrap()),
            Err(error) => {
                assert!(server.try_wait().unwrap().is_none(), "the issuer exited");
                Err(error.to_string())
            }
        },
    )
    .await;
    assert_eq!(discovery["issuer"], url.as_str());
    let keys: JwkSet = reqwest::get(discovery["jwks_uri"].as_str().unwrap())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let minted = Command::new(env!("CARGO_BIN_EXE_token-issuer"))
        .args(["--data-dir", data.to_str().unwrap(), "token"])
        .args(["--subject", "customer-1", "--scope", "orders:read"])
        .output()
        .unwrap();
    assert!(
        minted.status.success(),
        "{}",
        String::from_utf8_lossy(&minted.stderr)
    );
    let token = String::from_utf8(minted.stdout).unwrap();
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&[&url]);
    validation.set_audience(&["orders-and-payments"]);
    let key = DecodingKey::from_jwk(&keys.keys[0]).unwrap();
    let claims = jsonwebtoken::decode::<serde_json::Value>(token.trim(), &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["sub"], "customer-1");
    assert_eq!(claims["scope"], "orders:read");

    stop(&mut server);
    let _ = std::fs::remove_dir_all(&data);
}

/// Stops the server: SIGTERM, as a container runtime does, then waits.
fn stop(server: &mut std::process::Child) {
    let pid = server.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = harness::wait_until_blocking(
        "the issuer to exit after SIGTERM",
        Duration::from_secs(10),
        || match server.try_wait().unwrap() {
            Some(status) => Ok(status),
            None => Err("still running".to_string()),
        },
    );
    assert!(status.success(), "exits 0 on SIGTERM");
}
