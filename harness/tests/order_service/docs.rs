//! order-service's interactive documentation renders every operation.

use harness::order_service::OrderServiceTest;
use harness::{browser, prerequisites};

#[tokio::test]
async fn the_docs_page_renders_every_order_service_operation() {
    if !browser::available() {
        prerequisites::skip_without("/usr/bin/chromium", "apt-get install chromium");
        return;
    }
    let test = OrderServiceTest::start().await;
    let page = test.url("/docs");
    let screenshot =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("docs-order-service.png");

    let rendered = tokio::task::spawn_blocking(move || {
        browser::check_docs_page(&page, &["orders", "internal"], &screenshot)
    })
    .await
    .unwrap()
    .unwrap();

    assert_eq!(rendered.len(), 9);
    test.cleanup().await;
}
