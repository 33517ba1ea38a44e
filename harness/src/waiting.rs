//! Waiting, the one way the tests wait: look again and again until a
//! condition holds, give up at a deadline, and on giving up say what was
//! waited for and what was last seen.
//!
//! A check returns `Ok(value)` once the condition holds, or `Err(seen)`:
//! what it saw instead, in words. Every poll loop of the tests is one of
//! these (or a helper built on them, such as
//! [`crate::order_service::wait_for_order`]); no wait goes without a
//! deadline.

use std::time::{Duration, Instant};

/// How often [`wait_until`] and [`wait_until_blocking`] look again.
pub const POLL: Duration = Duration::from_millis(20);

/// Polls `check` every 20 ms until it gives a value, and returns it;
/// fails the test once `bound` has passed, naming what it waited for and
/// what `check` last saw (its `Err`).
pub async fn wait_until<T>(
    what: &str,
    bound: Duration,
    check: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    wait_until_every(what, bound, POLL, check).await
}

/// [`wait_until`], looking every `every` instead: for a wait whose length
/// is measured, where 20 ms would blur it.
///
/// A check still under way at the deadline is abandoned, so a check that
/// hangs (a request that is never answered) fails the wait at its deadline
/// instead of holding up the test.
pub async fn wait_until_every<T>(
    what: &str,
    bound: Duration,
    every: Duration,
    mut check: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let started = Instant::now();
    let mut seen = None;
    loop {
        let left = bound.saturating_sub(started.elapsed());
        assert!(
            !left.is_zero(),
            "waited {bound:?} for {what}; last seen: {}",
            seen.as_deref().unwrap_or("nothing (no check had finished)")
        );
        match tokio::time::timeout(left, check()).await {
            Ok(Ok(value)) => return value,
            Ok(Err(now)) => seen = Some(now),
            Err(_) => panic!(
                "waited {bound:?} for {what}; a check was still under way at the deadline; \
                 last seen: {}",
                seen.as_deref().unwrap_or("nothing (no check had finished)")
            ),
        }
        tokio::time::sleep(every.min(bound.saturating_sub(started.elapsed()))).await;
    }
}

/// [`wait_until`] for code outside a runtime (a thread waiting for a child
/// process): polls `check` every 20 ms, blocking the thread between looks.
/// Each check must return promptly (`try_wait`, reading a file): a blocking
/// check cannot be abandoned at the deadline.
pub fn wait_until_blocking<T>(
    what: &str,
    bound: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let started = Instant::now();
    loop {
        match check() {
            Ok(value) => return value,
            Err(seen) => assert!(
                started.elapsed() < bound,
                "waited {bound:?} for {what}; last seen: {seen}"
            ),
        }
        std::thread::sleep(POLL.min(bound.saturating_sub(started.elapsed())));
    }
}

