//! The protocol's Promela model (`harness/model/protocol.pml`) holds under
//! spin's exhaustive search, and the checker is not blind: each broken
//! variant is caught (an attachment that skips the amount check, a create
//! that attaches before recording its intent, a release that does not
//! remember the payment it released).

use harness::prerequisites;
use std::path::Path;
use std::process::Command;

const MODEL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/model/protocol.pml");

/// Runs spin on the model with `defines`, compiles the verifier and runs it;
/// returns the verifier's report, or `None` when spin is not installed.
fn verify(name: &str, defines: &[&str]) -> Option<String> {
    if !prerequisites::runs("spin", &["-V"]) {
        prerequisites::skip_without("spin", "apt-get install spin");
        return None;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("model-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let run = |program: &str, args: &[&str]| {
        let output = Command::new(program)
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), text)
    };
    let mut spin_args = defines.to_vec();
    spin_args.extend(["-a", MODEL]);
    let (ok, text) = run("spin", &spin_args);
    assert!(ok, "spin could not read the model:\n{text}");
    let (ok, text) = run("cc", &["-O2", "-DSAFETY", "-o", "pan", "pan.c"]);
    assert!(ok, "the verifier did not compile:\n{text}");
    let (_, report) = run("./pan", &["-m100000"]);
    Some(report)
}

#[test]
fn money_and_orders_agree_in_every_interleaving_of_the_model() {
    let Some(report) = verify("protocol", &[]) else {
        return;
    };
    assert!(report.contains("errors: 0"), "{report}");
    assert!(!report.contains("assertion violated"), "{report}");
    let states = report
        .lines()
        .find(|line| line.contains("states, stored"))
        .unwrap_or_default()
        .trim()
        .to_string();
    eprintln!("model checked: {states}");
}

#[test]
fn the_model_catches_an_attachment_without_the_amount_check() {
    let Some(report) = verify("broken", &["-DBROKEN"]) else {
        return;
    };
    assert!(report.contains("assertion violated"), "{report}");
    assert!(!report.contains("errors: 0"), "{report}");
}

/// The protocol before intents: a create whose attachment times out while
/// order-service still applies it later has recorded nothing, and the order
/// stays attached to a payment payment-service never heard of.
#[test]
fn the_model_catches_a_create_that_attaches_before_recording_its_intent() {
    let Some(report) = verify("broken-intent", &["-DBROKEN_INTENT"]) else {
        return;
    };
    assert!(report.contains("assertion violated"), "{report}");
    assert!(report.contains("prow==oattached"), "{report}");
    assert!(!report.contains("errors: 0"), "{report}");
}

/// A release that does not add the payment to `released_payments`: an
/// attachment still queued at order-service is applied after the intent
/// was released and deleted, and freezes the order.
#[test]
fn the_model_catches_a_release_that_does_not_remember_the_released_payment() {
    let Some(report) = verify("broken-release", &["-DBROKEN_RELEASE"]) else {
        return;
    };
    assert!(report.contains("assertion violated"), "{report}");
    assert!(report.contains("prow==oattached"), "{report}");
    assert!(!report.contains("errors: 0"), "{report}");
}
