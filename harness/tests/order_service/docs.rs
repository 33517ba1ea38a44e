//! order-service's interactive documentation renders every operation.

use harness::browser;
use harness::order_service::OrderServiceTest;

#[tokio::test]
async fn the_docs_page_renders_every_order_service_operation() {
    if !browser::available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install chromium (.ci/run does)"
        );
        eprintln!("SKIPPED: /usr/bin/chromium is not installed (apt-get install chromium)");
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

    assert_eq!(rendered.len(), 7);
    test.cleanup().await;
}
