//! payment-service's interactive documentation renders every operation.

use crate::System;
use harness::{browser, prerequisites};

#[tokio::test]
async fn the_docs_page_renders_every_payment_service_operation() {
    if !browser::available() {
        prerequisites::skip_without("/usr/bin/chromium", "apt-get install chromium");
        return;
    }
    let system = System::start().await;
    let page = system.payments.url("/docs");
    let screenshot =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("docs-payment-service.png");

    let rendered = tokio::task::spawn_blocking(move || {
        browser::check_docs_page(&page, &["payments"], &screenshot)
    })
    .await
    .unwrap()
    .unwrap();

    assert_eq!(rendered.len(), 4);
    system.cleanup().await;
}
