//! Headless Chromium (Debian's `chromium` package), to load the services'
//! documentation pages as a person's browser would.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

const CHROMIUM: &str = "/usr/bin/chromium";

/// Whether Chromium is installed. CI installs it (`.ci/run`); elsewhere a
/// test may skip, saying so, when it is missing.
pub fn available() -> bool {
    Path::new(CHROMIUM).exists()
}

/// The DOM after the page's scripts ran (up to 10 s of page time).
pub fn rendered_dom(url: &str) -> anyhow::Result<String> {
    let profile = profile_dir()?;
    let output = chromium(&profile)
        .arg("--dump-dom")
        .arg(url)
        .output()
        .context("cannot run chromium")?;
    let _ = std::fs::remove_dir_all(&profile);
    if !output.status.success() {
        bail!(
            "chromium failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A PNG of the page, 1280 pixels wide, at `file`.
pub fn screenshot(url: &str, file: &Path) -> anyhow::Result<()> {
    let profile = profile_dir()?;
    let status = chromium(&profile)
        .arg(format!("--screenshot={}", file.display()))
        .arg("--window-size=1280,1800")
        .arg(url)
        .output()
        .context("cannot run chromium")?
        .status;
    let _ = std::fs::remove_dir_all(&profile);
    if !status.success() || !file.exists() {
        bail!("chromium made no screenshot at {}", file.display());
    }
    Ok(())
}

fn chromium(profile: &Path) -> Command {
    let mut command = Command::new(CHROMIUM);
    // No sandbox: tests may run as root. No background networking: this
    // machine reaches nothing but loopback.
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--virtual-time-budget=10000",
    ]);
    command.arg(format!("--user-data-dir={}", profile.display()));
    command
}

fn profile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "order-payment-chromium-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Loads a service's `/docs` page and checks that every operation of
/// `tags` is rendered (Swagger UI gives each the id
/// `operations-{tag}-{operationId}`) and no other tag's, and the
/// Authorize button that takes a bearer token for them; keeps a screenshot
/// at `screenshot`. Returns the operations found.
pub fn check_docs_page(
    page: &str,
    tags: &[&str],
    screenshot_at: &Path,
) -> anyhow::Result<Vec<String>> {
    let dom = rendered_dom(page)?;
    let operations = operations_of(tags);
    let mut found = Vec::new();
    for (tag, id) in &operations {
        if !dom.contains(&format!("id=\"operations-{tag}-{id}\"")) {
            bail!("{id} is not rendered at {page}");
        }
        found.push(id.clone());
    }
    // Tag sections are `operations-tag-{tag}`; operations are the rest.
    let others =
        dom.matches("id=\"operations-").count() - dom.matches("id=\"operations-tag-").count();
    if others != operations.len() {
        bail!(
            "{page} renders {others} operations, expected the {} of {tags:?}",
            operations.len()
        );
    }
    if !dom.contains("btn authorize") {
        bail!("{page} has no Authorize button for the bearer token");
    }
    screenshot(page, screenshot_at)?;
    Ok(found)
}

/// The operationIds of `tags` in the committed contract.
pub fn operations_of(tags: &[&str]) -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi.yaml");
    let text = std::fs::read_to_string(path).expect("openapi.yaml");
    let mut document: serde_json::Value = serde_yaml::from_str(&text).expect("YAML");
    openapi_part::keep_tags(&mut document, tags);
    let mut operations = Vec::new();
    for item in document["paths"]
        .as_object()
        .into_iter()
        .flat_map(|p| p.values())
    {
        for op in item.as_object().into_iter().flat_map(|o| o.values()) {
            if let (Some(id), Some(tag)) = (op["operationId"].as_str(), op["tags"][0].as_str()) {
                operations.push((tag.to_string(), id.to_string()));
            }
        }
    }
    operations.sort();
    operations
}
