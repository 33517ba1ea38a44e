//! `token-issuer`: a token issuer for development and demonstration
//! deployments (docker-compose, the Kubernetes dev overlay). It serves
//! OpenID discovery and a JWKS for a key kept in `--data-dir`, and mints
//! access tokens with that key. It is not an identity provider: whoever
//! can run `token-issuer token` beside it gets any token. Production
//! points the services at a real one.

use clap::Parser;
use local_issuer::KeptIssuer;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Serves a development token issuer, or mints a token from it.
#[derive(Parser)]
#[command(name = "token-issuer")]
struct Options {
    /// Where the issuer's key, URL and audience are kept.
    #[arg(long, env = "TOKEN_ISSUER_DATA_DIR", default_value = "/data")]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Serve the discovery document and the JWKS until stopped.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "TOKEN_ISSUER_LISTEN", default_value = "0.0.0.0:8079")]
        listen: SocketAddr,
        /// The issuer URL as the services reach it: tokens' `iss`, and the services' AUTH_ISSUER.
        #[arg(long, env = "TOKEN_ISSUER_URL")]
        url: String,
        /// The audience tokens are for: the services' AUTH_AUDIENCE.
        #[arg(
            long,
            env = "TOKEN_ISSUER_AUDIENCE",
            default_value = "orders-and-payments"
        )]
        audience: String,
    },
    /// Print a new access token from the issuer served from --data-dir.
    Token {
        /// The caller: the token's `sub`, who owns what it creates.
        #[arg(long)]
        subject: String,
        /// Space-separated scopes: orders:read orders:write payments:read payments:write payments:settle admin.
        #[arg(long)]
        scope: String,
        /// Seconds until the token expires.
        #[arg(long, default_value_t = 3600)]
        lifetime_secs: u64,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let options = Options::parse();
    let kept = KeptIssuer::at(&options.data_dir);
    let result = match options.command {
        Command::Serve {
            listen,
            url,
            audience,
        } => serve(&kept, listen, &url, &audience).await,
        Command::Token {
            subject,
            scope,
            lifetime_secs,
        } => kept
            .token(&subject, &scope, Duration::from_secs(lifetime_secs))
            .map(|token| println!("{token}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("token-issuer: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(
    kept: &KeptIssuer,
    listen: SocketAddr,
    url: &str,
    audience: &str,
) -> anyhow::Result<()> {
    let issuer = kept.serve(listen, Some(url), audience).await?;
    println!(
        "token issuer {} (audience {}) on {listen}; `token-issuer token --subject S --scope \"...\"` prints a token",
        issuer.url(),
        issuer.audience()
    );
    // Until SIGTERM (a container stopping) or SIGINT (Ctrl-C).
    use tokio::signal::unix::{SignalKind, signal};
    let (mut terminate, mut interrupt) = (
        signal(SignalKind::terminate())?,
        signal(SignalKind::interrupt())?,
    );
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    Ok(())
}
