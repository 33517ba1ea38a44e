//! Creating, reading, replacing and deleting orders.

use crate::{create_order, error_body, order_request, send_json};
use harness::order_service::OrderServiceTest;
use order_client::types::OrderStatus;
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn a_created_order_is_pending_with_its_total_and_can_be_read_back() {
    let test = OrderServiceTest::start().await;

    let created = test
        .client
        .create_order(None, &order_request("Keyboard", 3, 4_999))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((created.code, created.status.as_str()), (200, "OK"));
    let order = created.data;
    assert_eq!(order.item_name, "Keyboard");
    assert_eq!(
        (order.quantity, order.price, order.total_amount),
        (3, 4_999, 14_997)
    );
    assert_eq!(order.status, OrderStatus::Pending);
    assert_eq!(order.payment_id, None);

    let fetched = test.order(&order.id).await;
    assert_eq!(fetched.id, order.id);
    assert_eq!(fetched.total_amount, 14_997);
    assert_eq!(fetched.created_at, order.created_at);

    test.cleanup().await;
}

#[tokio::test]
async fn the_original_wire_format_works_over_raw_http() {
    let test = OrderServiceTest::start().await;

    let (status, body) = send_json(
        &test,
        Method::POST,
        "/orders",
        r#"{"item_name":"Pen","quantity":2,"price":150}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["code"], 200);
    assert_eq!(body["status"], "OK");
    assert_eq!(body["data"]["total_amount"], 300);
    assert_eq!(body["data"]["status"], "pending");
    let created_at = body["data"]["created_at"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(created_at).is_ok(),
        "{created_at} is not RFC 3339"
    );

    test.cleanup().await;
}

#[tokio::test]
async fn replacing_a_pending_order_recomputes_its_total() {
    let test = OrderServiceTest::start().await;
    let order = create_order(&test, "Mug", 1, 800).await;

    let updated = test
        .client
        .update_order(&order.id, &order_request("Mug, large", 4, 950))
        .await
        .unwrap()
        .into_inner()
        .data;

    assert_eq!(updated.id, order.id);
    assert_eq!(updated.item_name, "Mug, large");
    assert_eq!(updated.total_amount, 3_800);
    assert!(updated.updated_at > order.updated_at);
    assert_eq!(test.order(&order.id).await.total_amount, 3_800);
    test.cleanup().await;
}

#[tokio::test]
async fn a_deleted_order_is_gone_from_reads() {
    let test = OrderServiceTest::start().await;
    let order = create_order(&test, "Lamp", 1, 2_000).await;

    let deleted = test
        .client
        .delete_order(&order.id)
        .await
        .unwrap()
        .into_inner()
        .data;
    assert_eq!(deleted.id, order.id);

    let (status, error) = error_body(test.client.get_order(&order.id).await);
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error.data.error_code, "ORDER_NOT_FOUND");
    let (status, _) = error_body(test.client.delete_order(&order.id).await);
    assert_eq!(status, StatusCode::NOT_FOUND);
    let listed = test
        .client
        .list_orders(None, None, None)
        .await
        .unwrap()
        .into_inner();
    assert!(listed.data.iter().all(|o| o.id != order.id));
    test.cleanup().await;
}

#[tokio::test]
async fn an_unknown_order_is_a_404_for_every_operation() {
    let test = OrderServiceTest::start().await;
    let id = uuid::Uuid::new_v4();

    for result in [
        test.client.get_order(&id).await.map(|_| ()),
        test.client
            .update_order(&id, &order_request("x", 1, 1))
            .await
            .map(|_| ()),
        test.client.delete_order(&id).await.map(|_| ()),
    ] {
        let (status, error) = error_body(result);
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(error.data.error_code, "ORDER_NOT_FOUND");
        assert!(
            error.data.message.contains(&id.to_string()),
            "{}",
            error.data.message
        );
    }
    test.cleanup().await;
}
