//! How order-service shares its database connections: reads share
//! connections of their own, so they are answered even while every
//! connection for writes is taken.

use crate::{create_order, error_body, lock_order, order_request};
use futures::future::join_all;
use harness::order_service::OrderServiceTest;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use reqwest::StatusCode;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The test pool's connections: one is shared by reads, so writes can
/// have three.
const POOL: usize = 4;
const WRITE_CONNECTIONS: usize = POOL - 1;

#[tokio::test]
async fn reads_are_answered_while_every_connection_for_writes_waits_on_a_lock() {
    // A deadline long enough that the waiting writes are still waiting when
    // the reads are made, however slow the machine.
    let test = OrderServiceTest::start_with(|s| s.database.timeout_ms = 30_000).await;
    let locked = create_order(&test, "Lamp", 1, 100).await;
    let other = create_order(&test, "Desk", 1, 300).await;
    let mut holder = test.database().await;
    let lock = lock_order(&mut holder, locked.id).await;

    // As many writes as the pool has connections: all that writes can have
    // wait on the lock, and the last waits for one of them.
    let writes: Vec<_> = (0..POOL)
        .map(|_| {
            let client = test.client.clone();
            tokio::spawn(async move {
                client
                    .update_order(&locked.id, &order_request("Lamp", 2, 100))
                    .await
                    .map(|response| response.into_inner().data.total_amount)
            })
        })
        .collect();
    let inspector = test.database().await;
    let waiting_on_the_lock = async || harness::locks::waiting_on_locks(&inspector).await;
    harness::wait_until(
        "the writes to reach the lock",
        Duration::from_secs(10),
        async || match waiting_on_the_lock().await {
            waiting if waiting >= WRITE_CONNECTIONS as i64 => Ok(()),
            waiting => Err(format!("{waiting} waiting")),
        },
    )
    .await;

    let read = test.client.get_order(&other.id).await.unwrap();
    assert_eq!(read.into_inner().data.total_amount, 300);
    let read = test.client.get_order(&locked.id).await.unwrap();
    assert_eq!(read.into_inner().data.total_amount, 100, "the old row");
    let page = test.client.list_orders(None, None, None).await.unwrap();
    assert_eq!(page.into_inner().data.len(), 2);
    assert_eq!(
        waiting_on_the_lock().await,
        WRITE_CONNECTIONS as i64,
        "the reads were made while every connection for writes waited"
    );

    lock.rollback().await.unwrap();
    for write in writes {
        assert_eq!(write.await.unwrap().unwrap(), 200);
    }
    test.cleanup().await;
}

#[tokio::test]
async fn the_first_reads_arriving_together_are_all_answered() {
    let test = OrderServiceTest::start().await;
    let order = create_order(&test, "Lamp", 1, 100).await;

    // The connection for reads is opened by the first of them; the others
    // must wait for it, not for another the pool cannot give. Connected
    // first, then asked at once, so that they arrive together.
    let mut connections = Vec::new();
    for _ in 0..64 {
        connections.push(TcpStream::connect(test.direct_addr()).await.unwrap());
    }
    let request = format!(
        "GET /orders/{} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\
         Connection: close\r\n\r\n",
        order.id,
        harness::issuer::caller_token()
    );
    for connection in &mut connections {
        connection.write_all(request.as_bytes()).await.unwrap();
    }
    let answers = join_all(connections.into_iter().map(async |mut connection| {
        let mut answer = String::new();
        connection.read_to_string(&mut answer).await.unwrap();
        answer
    }))
    .await;
    for answer in answers {
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    test.cleanup().await;
}

/// Resumes a stopped PostgreSQL backend when dropped.
struct Stopped(Pid);

impl Stopped {
    fn backend(pid: i32) -> Stopped {
        let pid = Pid::from_raw(pid);
        kill(pid, Signal::SIGSTOP).expect("stop the backend");
        Stopped(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = kill(self.0, Signal::SIGCONT);
    }
}

#[tokio::test]
async fn a_connection_for_reads_that_stops_answering_is_replaced() {
    let test = OrderServiceTest::start().await;
    let order = create_order(&test, "Lamp", 1, 100).await;
    test.client.get_order(&order.id).await.unwrap();
    let reads_backend: i32 = test
        .database()
        .await
        .query_one(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
             AND query LIKE 'SELECT id, item_name%FROM orders WHERE id = $1 AND %owner = $2)'",
            &[],
        )
        .await
        .unwrap()
        .get(0);

    // As if the connection went into a network black hole: no error, no answer.
    let stopped = Stopped::backend(reads_backend);
    let (status, error) = error_body(test.client.get_order(&order.id).await);
    assert_eq!(
        (status, error.data.error_code.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE")
    );
    let read = test.client.get_order(&order.id).await;
    assert_eq!(
        read.expect("the next read goes to a new connection")
            .into_inner()
            .data
            .id,
        order.id
    );
    drop(stopped);
    test.cleanup().await;
}
