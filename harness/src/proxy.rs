//! A reverse proxy that sits in front of a service under test and checks
//! every response against the contract. Tests talk to the proxy, through
//! the generated clients or raw HTTP alike, so no response escapes the
//! check; what breaks the contract is collected for the test to assert on.
//! It also records when each request was in flight. In front of several
//! instances of a service it balances like a Kubernetes Service or a load
//! balancer: each request goes to the next instance in turn that passes its
//! readiness check (`/readyz`, polled every 50 ms), and a request no
//! instance could be connected to is tried on the next one.

use bytes::Bytes;
use conformance::Conformance;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Headers that describe one hop, not the message.
const HOP_BY_HOP: [&str; 5] = [
    "host",
    "connection",
    "content-length",
    "transfer-encoding",
    "keep-alive",
];

pub struct ConformanceProxy {
    address: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

/// One request the proxy forwarded, and when it was in flight.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: String,
    pub path: String,
    /// The `webhook-id` header, for signed internal calls.
    pub webhook_id: Option<String>,
    /// The request's `x-request-id` header.
    pub request_id: Option<String>,
    pub status: u16,
    /// Which upstream answered: its index in [`ConformanceProxy::balancing`]'s list.
    pub upstream: usize,
    pub started: Instant,
    pub finished: Instant,
}

impl ConformanceProxy {
    /// Starts proxying `127.0.0.1:<free port>` to `upstream` (`http://host:port`).
    pub async fn start(upstream: String) -> anyhow::Result<ConformanceProxy> {
        ConformanceProxy::balancing(vec![upstream]).await
    }

    /// Starts proxying `127.0.0.1:<free port>` to each of `upstreams` in turn.
    pub async fn balancing(upstreams: Vec<String>) -> anyhow::Result<ConformanceProxy> {
        anyhow::ensure!(!upstreams.is_empty(), "nothing to proxy to");
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared {
            ready: upstreams.iter().map(|_| AtomicBool::new(true)).collect(),
            upstreams,
            turn: AtomicUsize::new(0),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            contract: Conformance::shared(),
            violations: Mutex::new(Vec::new()),
            exchanges: Mutex::new(Vec::new()),
        });
        if shared.upstreams.len() > 1 {
            tokio::spawn(poll_readiness(Arc::downgrade(&shared)));
        }
        let serving = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = serving.clone();
                tokio::spawn(async move {
                    // When the upstream cannot be reached the proxy drops the
                    // connection, so clients see what they would see without it.
                    let service = service_fn(move |request| {
                        let shared = shared.clone();
                        async move { shared.forward(request).await }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(ConformanceProxy {
            address,
            shared,
            task,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// What broke the contract so far, one line each.
    pub fn violations(&self) -> Vec<String> {
        self.shared
            .violations
            .lock()
            .expect("violations lock")
            .clone()
    }

    /// Whether each upstream passed its last readiness check, in
    /// [`ConformanceProxy::balancing`]'s order (a single upstream is never
    /// checked and always reads ready).
    pub fn upstreams_ready(&self) -> Vec<bool> {
        self.shared
            .ready
            .iter()
            .map(|ready| ready.load(Ordering::Relaxed))
            .collect()
    }

    /// Every request answered so far, in the order they finished.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.shared
            .exchanges
            .lock()
            .expect("exchanges lock")
            .clone()
    }
}

impl Drop for ConformanceProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Shared {
    upstreams: Vec<String>,
    /// Whether each upstream passed its last readiness check.
    ready: Vec<AtomicBool>,
    turn: AtomicUsize,
    client: reqwest::Client,
    contract: Arc<Conformance>,
    violations: Mutex<Vec<String>>,
    exchanges: Mutex<Vec<Exchange>>,
}

/// Checks every upstream's readiness every 50 ms while the proxy lives.
async fn poll_readiness(shared: std::sync::Weak<Shared>) {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(500))
        .build()
        .expect("a client");
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(50));
    loop {
        tick.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        for (upstream, ready) in shared.upstreams.iter().zip(&shared.ready) {
            let passed = client
                .get(format!("{upstream}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            ready.store(passed, Ordering::Relaxed);
        }
    }
}

impl Shared {
    async fn forward(&self, request: Request<Incoming>) -> anyhow::Result<Response<Full<Bytes>>> {
        let started = Instant::now();
        let (parts, body) = request.into_parts();
        let body = body.collect().await?.to_bytes();
        let path_and_query = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let count = self.upstreams.len();
        let first = self.turn.fetch_add(1, Ordering::Relaxed);
        let mut order: Vec<usize> = (first..first + count).map(|i| i % count).collect();
        // Ready ones first, in turn; the others only if none is.
        order.sort_by_key(|&i| !self.ready[i].load(Ordering::Relaxed));
        let mut attempts = order.into_iter().peekable();
        let (upstream, reply) = loop {
            let upstream = attempts.next().expect("at least one upstream");
            let mut outgoing = self.client.request(
                parts.method.clone(),
                format!("{}{path_and_query}", self.upstreams[upstream]),
            );
            for (name, value) in &parts.headers {
                if !HOP_BY_HOP.contains(&name.as_str()) {
                    outgoing = outgoing.header(name, value);
                }
            }
            match outgoing.body(body.clone()).send().await {
                // Nothing reached that instance: another may take it.
                Err(error) if error.is_connect() && attempts.peek().is_some() => continue,
                reply => break (upstream, reply?),
            }
        };
        let status = reply.status();
        let headers = reply.headers().clone();
        let bytes = reply.bytes().await?;

        let method = parts.method.as_str();
        let path = parts.uri.path();
        let problems = self
            .contract
            .check(method, path, status.as_u16(), &headers, &bytes);
        self.violations
            .lock()
            .expect("violations lock")
            .extend(problems);
        self.exchanges
            .lock()
            .expect("exchanges lock")
            .push(Exchange {
                method: method.to_string(),
                path: path.to_string(),
                webhook_id: header(&parts.headers, "webhook-id"),
                request_id: header(&parts.headers, "x-request-id"),
                status: status.as_u16(),
                upstream,
                started,
                finished: Instant::now(),
            });

        let mut response = Response::new(Full::new(bytes));
        *response.status_mut() = status;
        for (name, value) in &headers {
            if !HOP_BY_HOP.contains(&name.as_str()) {
                response.headers_mut().append(name, value.clone());
            }
        }
        Ok(response)
    }
}

fn header(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}
