//! Listing orders: keyset pages in creation order, stable under inserts and
//! deletes, with an optional status filter.

use crate::order_request;
use harness::order_service::OrderServiceTest;
use order_client::types::{Order, OrderStatus, PaymentCallback, PaymentOutcome};
use std::collections::HashSet;
use std::num::{NonZeroU32, NonZeroU64};
use uuid::Uuid;

async fn create_orders(test: &OrderServiceTest<'_>, count: usize, prefix: &str) -> Vec<Uuid> {
    let mut ids = Vec::with_capacity(count);
    for i in 0..count {
        let request = order_request(&format!("{prefix} {i}"), 1, 100 + i as u64);
        ids.push(
            test.client
                .create_order(None, &request)
                .await
                .unwrap()
                .into_inner()
                .data
                .id,
        );
    }
    ids
}

/// Follows `next_page` from the first page; calls `between` after each page
/// that has a next one.
async fn walk(
    test: &OrderServiceTest<'_>,
    limit: u32,
    status: Option<OrderStatus>,
    mut between: impl AsyncFnMut(usize),
) -> Vec<Vec<Order>> {
    let mut pages = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = test
            .client
            .list_orders(NonZeroU32::new(limit), token.as_deref(), status)
            .await
            .unwrap()
            .into_inner();
        assert!(page.data.len() <= limit as usize);
        pages.push(page.data);
        match page.next_page {
            Some(next) => token = Some(next),
            None => return pages,
        }
        between(pages.len()).await;
    }
}

#[tokio::test]
async fn pages_cover_every_order_once_in_creation_order() {
    let test = OrderServiceTest::start().await;
    let ids = create_orders(&test, 25, "item").await;

    let pages = walk(&test, 10, None, async |_| {}).await;

    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [10, 10, 5]);
    let seen: Vec<Uuid> = pages.into_iter().flatten().map(|o| o.id).collect();
    assert_eq!(seen, ids);
    test.cleanup().await;
}

#[tokio::test]
async fn a_listing_that_fits_one_page_says_there_is_no_next_page() {
    let test = OrderServiceTest::start().await;
    create_orders(&test, 3, "item").await;
    let page = test
        .client
        .list_orders(NonZeroU32::new(3), None, None)
        .await
        .unwrap()
        .into_inner();
    assert_eq!((page.data.len(), page.next_page), (3, None));
    let empty = OrderServiceTest::start().await;
    let page = empty
        .client
        .list_orders(None, None, None)
        .await
        .unwrap()
        .into_inner();
    assert_eq!((page.data.len(), page.next_page), (0, None));
    empty.cleanup().await;
    test.cleanup().await;
}

#[tokio::test]
async fn the_default_page_holds_100_orders() {
    let test = OrderServiceTest::start().await;
    create_orders(&test, 101, "item").await;
    let page = test
        .client
        .list_orders(None, None, None)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.data.len(), 100);
    let rest = test
        .client
        .list_orders(None, page.next_page.as_deref(), None)
        .await
        .unwrap()
        .into_inner();
    assert_eq!((rest.data.len(), rest.next_page), (1, None));
    test.cleanup().await;
}

#[tokio::test]
async fn orders_created_or_deleted_during_a_walk_neither_skip_nor_repeat_others() {
    let test = OrderServiceTest::start().await;
    let original = create_orders(&test, 30, "original").await;
    let doomed = original[25];
    let mut added = Vec::new();

    let pages = walk(&test, 7, None, async |page| {
        added.extend(create_orders(&test, 3, &format!("added after page {page}")).await);
        if page == 2 {
            test.client.delete_order(&doomed).await.unwrap();
        }
    })
    .await;

    let seen: Vec<Uuid> = pages.into_iter().flatten().map(|o| o.id).collect();
    let unique: HashSet<Uuid> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "an order was listed twice");
    for id in original.iter().filter(|id| **id != doomed) {
        assert!(unique.contains(id), "order {id} was skipped");
    }
    assert!(!unique.contains(&doomed), "a deleted order was listed");
    // Orders created during the walk sort after the cursor, so they show up too.
    assert!(added.iter().all(|id| unique.contains(id)));
    test.cleanup().await;
}

#[tokio::test]
async fn the_status_filter_lists_only_orders_in_that_state() {
    let test = OrderServiceTest::start().await;
    let ids = create_orders(&test, 9, "item").await;
    for (i, id) in ids.iter().enumerate().filter(|(i, _)| i % 3 == 0) {
        let callback = PaymentCallback {
            order_id: *id,
            payment_id: Uuid::new_v4(),
            payment_status: PaymentOutcome::Success,
            amount: NonZeroU64::new(100 + i as u64).unwrap(),
        };
        test.client.payment_callback(&callback).await.unwrap();
    }

    let paid: Vec<Uuid> = walk(&test, 2, Some(OrderStatus::Paid), async |_| {})
        .await
        .into_iter()
        .flatten()
        .map(|o| o.id)
        .collect();
    let pending = walk(&test, 4, Some(OrderStatus::Pending), async |_| {})
        .await
        .concat();

    assert_eq!(paid, [ids[0], ids[3], ids[6]]);
    assert_eq!(pending.len(), 6);
    assert!(pending.iter().all(|o| o.status == OrderStatus::Pending));
    test.cleanup().await;
}
