//! One operation at a time over HTTP with wrk (Debian's package): a C load
//! generator with Lua scripting, cheap enough per request to leave the two
//! cores to the service and the database, and the tool the gap was first
//! measured with.

use crate::seed;
use anyhow::{Context, bail};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// What wrk measured.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// Responses received.
    pub requests: u64,
    pub requests_per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    /// Non-2xx answers and socket errors.
    pub errors: u64,
}

/// A wrk script for one operation. Scripts that use a row once number the
/// rows per wrk thread: thread `t` walks `first + t × stride + 1, …`.
pub struct Load {
    pub path: String,
    pub script: String,
}

/// Lua: the id of order or payment `n`, as the seed makes them.
const IDS: &str = r#"
local function uuid(prefix, n)
  local hex = prefix .. string.format("%0" .. (32 - #prefix) .. "x", n)
  return hex:sub(1, 8) .. "-" .. hex:sub(9, 12) .. "-" .. hex:sub(13, 16) .. "-"
    .. hex:sub(17, 20) .. "-" .. hex:sub(21, 32)
end
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
"#;

pub fn get_order() -> Load {
    Load {
        path: "/orders".into(),
        script: format!(
            "{IDS}\nfunction request()\n  return wrk.format(\"GET\", \"/orders/\" .. uuid(\"\", math.random(1, {})))\nend\n",
            seed::READ_ORDERS
        ),
    }
}

pub fn create_order() -> Load {
    Load {
        path: "/orders".into(),
        script: r#"
wrk.method = "POST"
wrk.body = '{"item_name":"bench item","quantity":2,"price":250}'
wrk.headers["Content-Type"] = "application/json"
"#
        .into(),
    }
}

pub fn list_orders() -> Load {
    Load {
        path: "/orders?limit=100".into(),
        script: String::new(),
    }
}

/// Pays the seeded orders from `first` on, each once.
pub fn create_payment(first: u64, stride: u64) -> Load {
    each_row_once(
        "/payments",
        first,
        stride,
        &format!(
            r#"local body = '{{"order_id":"' .. uuid("", n) .. '","amount":{},"provider":"bench"}}'
  return wrk.format("POST", "/payments", {{["Content-Type"] = "application/json"}}, body)"#,
            seed::TOTAL
        ),
    )
}

/// Settles the seeded payments from `first` on as successful, each once.
pub fn settle_payment(first: u64, stride: u64) -> Load {
    each_row_once(
        "/payments/success",
        first,
        stride,
        r#"return wrk.format("PUT", "/payments/success/" .. uuid("b", n))"#,
    )
}

/// A script whose every request works on the next row `n` of its thread's
/// run, with `request` the Lua that builds the request from `n`.
fn each_row_once(path: &str, first: u64, stride: u64, request: &str) -> Load {
    Load {
        path: path.into(),
        script: format!(
            r#"{IDS}
local n
function init(args)
  n = {first} + tid * {stride}
end
function request()
  n = n + 1
  {request}
end
"#
        ),
    }
}

/// Runs `load` against `base_url` with wrk for `duration`.
/// Runs `load` against `base_url`, every request sending `token` as a
/// bearer token if there is one.
#[allow(clippy::too_many_arguments)]
pub fn measure(
    base_url: &str,
    work_dir: &Path,
    name: &str,
    load: &Load,
    token: Option<&str>,
    threads: usize,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Figures> {
    let script = work_dir.join(format!("{name}.wrk.lua"));
    std::fs::write(&script, &load.script)?;
    let mut wrk = Command::new("wrk");
    if let Some(token) = token {
        wrk.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    let output = wrk
        .args(["-t", &threads.to_string(), "-c", &connections.to_string()])
        .args(["-d", &format!("{}s", duration.as_secs().max(1))])
        .args(["--timeout", "10s", "--latency", "-s"])
        .arg(&script)
        .arg(format!("{base_url}{}", load.path))
        .output()
        .context("cannot run wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "wrk failed for {name}: {}{text}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    parse(&text).with_context(|| format!("cannot read wrk's output:\n{text}"))
}

fn parse(text: &str) -> Option<Figures> {
    let mut figures = Figures::default();
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [count, "requests", "in", ..] => figures.requests = count.parse().ok()?,
            ["Requests/sec:", rate] => figures.requests_per_second = rate.parse().ok()?,
            ["Latency", _avg, _stdev, max, ..] => figures.max = duration(max)?,
            ["50%", value] => figures.p50 = duration(value)?,
            ["99%", value] => figures.p99 = duration(value)?,
            ["Non-2xx", "or", "3xx", "responses:", count] => {
                figures.errors += count.parse::<u64>().ok()?
            }
            ["Socket", "errors:", rest @ ..] => {
                figures.errors += rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>()
            }
            _ => {}
        }
    }
    (figures.requests_per_second > 0.0).then_some(figures)
}

/// wrk's durations: `812.00us`, `4.21ms`, `1.02s`, `1.50m`.
fn duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit {
        "us" => number / 1e6,
        "ms" => number / 1e3,
        "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return None,
    };
    Some(Duration::from_nanos((seconds * 1e9).round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_output() {
        let text = "\
Running 10s test @ http://127.0.0.1:8080/orders
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.47ms    1.53ms  29.68ms   78.99%
    Req/Sec     7.22k   591.08     8.33k    69.00%
  Latency Distribution
     50%  812.00us
     75%    5.04ms
     90%    6.12ms
     99%    1.02s
  143776 requests in 10.00s, 77.65MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 5
Requests/sec:  14376.56
Transfer/sec:      7.76MB
";
        let figures = parse(text).expect("parsed");
        assert_eq!(figures.requests, 143776);
        assert_eq!(figures.requests_per_second, 14376.56);
        assert_eq!(figures.p50, Duration::from_micros(812));
        assert_eq!(figures.p99, Duration::from_millis(1020));
        assert_eq!(figures.max, Duration::from_micros(29_680));
        assert_eq!(figures.errors, 8);
    }
}
