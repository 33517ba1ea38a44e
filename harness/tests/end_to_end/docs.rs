//! payment-service's interactive documentation renders every operation.

use crate::System;
use harness::browser;

#[tokio::test]
async fn the_docs_page_renders_every_payment_service_operation() {
    if !browser::available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install chromium (.ci/run does)"
        );
        eprintln!("SKIPPED: /usr/bin/chromium is not installed (apt-get install chromium)");
        return;
    }
    let system = System::start().await;
    let page = system.payments.url("/docs");

    let dom = tokio::task::spawn_blocking({
        let page = page.clone();
        move || browser::rendered_dom(&page)
    })
    .await
    .unwrap()
    .unwrap();

    let operations = browser::operations_of(&["payments"]);
    assert_eq!(operations.len(), 4);
    for (tag, id) in operations {
        assert!(
            dom.contains(&format!("id=\"operations-{tag}-{id}\"")),
            "{id} not rendered"
        );
    }
    let screenshot =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("docs-payment-service.png");
    tokio::task::spawn_blocking(move || browser::screenshot(&page, &screenshot))
        .await
        .unwrap()
        .unwrap();
    system.cleanup().await;
}
