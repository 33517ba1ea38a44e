//! Waiting, the one way the tests wait: look again and again until a
//! condition holds, give up at a deadline, and on giving up say what was
//! waited for and what was last seen.
//!
//! A check returns `Ok(value)` once the condition holds, or `Err(seen)`:
//! what it saw instead, in words. Every poll loop of the tests is one of
//! these (or a helper built on them, such as
//! [`crate::order_service::wait_for_order`]); no wait goes without a
//! deadline. A sleep anywhere else in test code is part of a scenario (a
//! lock held for a while, load paced, a window in which nothing may
//! happen) and says so in a `// Not a wait: …` comment: the test at the
//! end of this file holds that rule.

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

/// The rule, held by scanning the test code's sources: every sleep outside
/// this file is marked `// Not a wait: why` (on its line or in the comment
/// lines right above it); an unmarked one is a poll loop or a "sleep, then
/// assert" that should wait for its condition with [`wait_until`].
#[cfg(test)]
mod the_rule {
    use std::path::{Path, PathBuf};

    /// What marks a sleep as part of a scenario rather than a wait.
    const MARK: &str = "Not a wait:";

    /// Where test code lives: the harness, and the tests of every crate.
    fn test_sources(root: &Path) -> Vec<PathBuf> {
        let mut folders = vec![
            root.join("harness/src"),
            root.join("harness/tests"),
            root.join("harness/benches"),
        ];
        // Crates sit one level down (tools/x), or two (servers/apis/x).
        let mut groups = vec![
            root.join("tools"),
            root.join("clients"),
            root.join("servers"),
        ];
        while let Some(group) = groups.pop() {
            for entry in std::fs::read_dir(&group).expect("a folder of crates") {
                let path = entry.expect("a directory entry").path();
                if path.join("Cargo.toml").exists() {
                    folders.push(path.join("tests"));
                } else if path.is_dir() {
                    groups.push(path);
                }
            }
        }
        let mut files = Vec::new();
        while let Some(folder) = folders.pop() {
            let Ok(entries) = std::fs::read_dir(&folder) else {
                continue;
            };
            for entry in entries {
                let path = entry.expect("a directory entry").path();
                if path.is_dir() {
                    folders.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    files.push(path);
                }
            }
        }
        files.sort();
        files
    }

    /// Every sleep of `source` that is not marked, as `line: what it is`
    /// (lines counted from 1).
    fn unmarked_sleeps(source: &str) -> Vec<String> {
        let (code, comments) = split(source);
        let lines: Vec<&str> = code.split('\n').collect();
        let mut found = Vec::new();
        for (at, in_a_loop) in sleeps(&code) {
            let line = code[..at].matches('\n').count();
            let marked = comments[line].contains(MARK)
                || (0..line)
                    .rev()
                    .take_while(|&above| {
                        lines[above].trim().is_empty() && !comments[above].is_empty()
                    })
                    .any(|above| comments[above].contains(MARK));
            if !marked {
                let what = if in_a_loop {
                    "a sleep in a loop: a poll loop? wait with harness::wait_until \
                     (or a helper built on it, such as wait_for_order); if it paces a \
                     scenario, say why in a `// Not a wait: …` comment"
                } else {
                    "a fixed sleep: wait for what it waits for with harness::wait_until, \
                     or, if the pause is part of the scenario, say why in a \
                     `// Not a wait: …` comment"
                };
                found.push(format!(
                    "{}: `{}`: {what}",
                    line + 1,
                    source.lines().nth(line).unwrap_or_default().trim()
                ));
            }
        }
        found
    }

    /// `source`'s code with every comment removed and the inside of every
    /// string and character literal blanked (lines kept), and the text of
    /// the comments on each line.
    fn split(source: &str) -> (String, Vec<String>) {
        let chars: Vec<char> = source.chars().collect();
        let mut code = String::new();
        let mut comments = vec![String::new()];
        let mut i = 0;
        let blank = |c: char, code: &mut String| code.push(if c == '\n' { '\n' } else { ' ' });
        while i < chars.len() {
            let c = chars[i];
            let next = chars.get(i + 1).copied();
            let identifier = |at: usize| chars[at].is_alphanumeric() || chars[at] == '_';
            // Whether `c` continues an identifier (the `r` of `br"…"` does not).
            let after_identifier = i > 0
                && identifier(i - 1)
                && !(c == 'r' && chars[i - 1] == 'b' && (i < 2 || !identifier(i - 2)));
            if c == '\n' {
                code.push('\n');
                comments.push(String::new());
                i += 1;
            } else if c == '/' && next == Some('/') {
                while i < chars.len() && chars[i] != '\n' {
                    comments.last_mut().unwrap().push(chars[i]);
                    i += 1;
                }
            } else if c == '/' && next == Some('*') {
                let mut depth = 0;
                while i < chars.len() {
                    if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                        depth += 1;
                        i += 2;
                    } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        if chars[i] == '\n' {
                            code.push('\n');
                            comments.push(String::new());
                        } else {
                            comments.last_mut().unwrap().push(chars[i]);
                        }
                        i += 1;
                    }
                }
            } else if c == 'r'
                && !after_identifier
                && matches!(next, Some('"' | '#'))
                && chars[i + 1..].iter().find(|&&c| c != '#') == Some(&'"')
            {
                // A raw string: r"…" or r#"…"#, as many #s at the end.
                let hashes = chars[i + 1..].iter().take_while(|&&c| c == '#').count();
                i += 2 + hashes;
                code.push_str("r\"");
                while i < chars.len() {
                    if chars[i] == '"'
                        && chars[i + 1..]
                            .iter()
                            .take(hashes)
                            .filter(|&&c| c == '#')
                            .count()
                            == hashes
                    {
                        i += 1 + hashes;
                        break;
                    }
                    blank(chars[i], &mut code);
                    if chars[i] == '\n' {
                        comments.push(String::new());
                    }
                    i += 1;
                }
                code.push('"');
            } else if c == '"' {
                code.push('"');
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    let escaped = chars[i] == '\\';
                    for _ in 0..if escaped { 2 } else { 1 } {
                        if let Some(&c) = chars.get(i) {
                            blank(c, &mut code);
                            if c == '\n' {
                                comments.push(String::new());
                            }
                        }
                        i += 1;
                    }
                }
                code.push('"');
                i += 1;
            } else if c == '\'' && next == Some('\\') {
                // An escaped character: '\n', '\'', '\u{…}'.
                let end = chars[i + 2..].iter().position(|&c| c == '\'').unwrap_or(0);
                code.push_str("' '");
                i += 3 + end + 1;
            } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
                code.push_str("' '");
                i += 3;
            } else {
                // Code, a lifetime or a label included.
                code.push(c);
                i += 1;
            }
        }
        (code, comments)
    }

    /// Where `code` calls a sleep (`sleep(…)`, `sleep_until(…)`, by any
    /// path), and whether that is inside the body of a loop.
    fn sleeps(code: &str) -> Vec<(usize, bool)> {
        let mut found = Vec::new();
        // For each open brace: whether it opens a loop's body.
        let mut braces: Vec<bool> = Vec::new();
        let mut statement = 0;
        let bytes = code.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'{' => {
                    braces.push(is_loop_header(&code[statement..i]));
                    statement = i + 1;
                }
                b'}' => {
                    braces.pop();
                    statement = i + 1;
                }
                b';' => statement = i + 1,
                b's' if i == 0 || !is_identifier(bytes[i - 1]) => {
                    let rest = &code[i..];
                    if rest.starts_with("sleep") {
                        let name_end = rest
                            .bytes()
                            .position(|b| !is_identifier(b))
                            .unwrap_or(rest.len());
                        let name = &rest[..name_end];
                        if (name == "sleep" || name == "sleep_until")
                            && rest[name_end..].trim_start().starts_with('(')
                        {
                            found.push((i, braces.iter().any(|&body| body)));
                        }
                        i += name_end;
                        continue;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        found
    }

    fn is_identifier(byte: u8) -> bool {
        byte.is_ascii_alphanumeric() || byte == b'_'
    }

    /// Whether `header`, the code before a `{`, opens a loop's body.
    fn is_loop_header(header: &str) -> bool {
        let words: Vec<&str> = header
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
            .collect();
        words.last() == Some(&"loop")
            || words.contains(&"while")
            || (words.contains(&"for")
                && words.contains(&"in")
                && !matches!(words.first(), Some(&("impl" | "fn"))))
    }

    #[test]
    fn every_sleep_in_test_code_outside_the_wait_helpers_is_marked_as_no_wait() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the workspace");
        let helpers = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/waiting.rs");
        let sources = test_sources(root);
        assert!(
            sources
                .iter()
                .any(|f| f.ends_with("harness/tests/end_to_end/main.rs")),
            "the scan found the tests: {sources:?}"
        );
        let mut unmarked = Vec::new();
        for file in sources.iter().filter(|f| **f != helpers) {
            let source = std::fs::read_to_string(file).expect("a readable source");
            for found in unmarked_sleeps(&source) {
                unmarked.push(format!(
                    "{}:{found}",
                    file.strip_prefix(root).unwrap_or(file).display()
                ));
            }
        }
        assert!(
            unmarked.is_empty(),
            "test code waits outside harness::wait_until:\n{}",
            unmarked.join("\n")
        );
    }

    #[test]
    fn the_scan_tells_a_poll_loop_and_a_fixed_sleep_from_a_marked_pause() {
        let source = r##"
fn poll() {
    let url = "http://example/{"; // a string with a brace and no sleep(
    loop {
        if ready() { break; }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
fn settle() {
    std::thread::sleep(Duration::from_secs(2));
    assert!(done());
}
fn hold(c: char) {
    let quote = '"';
    // Not a wait: the lock is held for `hold`, which is the fault.
    tokio::time::sleep(hold).await;
    for byte in bytes {
        write(byte);
        sleep(gap).await; // Not a wait: a slow client's pace.
    }
    let text = r#"tokio::time::sleep(x)"#;
    /* sleep(1) */
}
"##;
        let found = unmarked_sleeps(source);
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(
            found[0].starts_with(
                "6: `tokio::time::sleep(Duration::from_millis(20)).await;`: a sleep in a loop"
            ),
            "{}",
            found[0]
        );
        assert!(
            found[1]
                .starts_with("10: `std::thread::sleep(Duration::from_secs(2));`: a fixed sleep"),
            "{}",
            found[1]
        );
    }
}
