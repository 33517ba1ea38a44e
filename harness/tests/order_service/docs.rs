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

    let dom = tokio::task::spawn_blocking({
        let page = page.clone();
        move || browser::rendered_dom(&page)
    })
    .await
    .unwrap()
    .unwrap();

    let operations = browser::operations_of(&["orders", "internal"]);
    assert_eq!(operations.len(), 6);
    for (tag, id) in operations {
        // Swagger UI's id for an operation block.
        assert!(
            dom.contains(&format!("id=\"operations-{tag}-{id}\"")),
            "{id} not rendered"
        );
    }
    assert!(
        !dom.contains("operations-payments-"),
        "payment operations belong to payment-service's page"
    );
    let screenshot =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("docs-order-service.png");
    tokio::task::spawn_blocking(move || browser::screenshot(&page, &screenshot))
        .await
        .unwrap()
        .unwrap();
    test.cleanup().await;
}
