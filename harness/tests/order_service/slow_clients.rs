//! Slow and abusive clients: one that sends its headers or its body a byte
//! at a time, or hundreds of connections held open and idle, do not delay
//! anyone else. Each connection is a task of its own; nothing is shared
//! that a silent connection could hold. (Bounding how long such a client
//! may take is a front proxy's job: see the README.)

use harness::order_service::OrderServiceTest;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const BODY: &str = r#"{"item_name":"Lamp","quantity":1,"price":100}"#;

/// Writes `bytes` one at a time, `gap` apart, until done or dropped.
async fn trickle(mut stream: TcpStream, bytes: Vec<u8>, gap: Duration) {
    for byte in bytes {
        if stream.write_all(&[byte]).await.is_err() {
            return;
        }
        // Not a wait: a slow client's pace.
        tokio::time::sleep(gap).await;
    }
}

/// Twenty creates by other clients, each answered.
async fn others_are_served(test: &OrderServiceTest<'_>) {
    for _ in 0..20 {
        let response = test
            .http
            .post(test.url("/orders"))
            .header("content-type", "application/json")
            .body(BODY)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
}

/// Others are served while `slow` is still sending.
async fn others_are_served_meanwhile(
    test: &OrderServiceTest<'_>,
    slow: tokio::task::JoinHandle<()>,
) {
    let started = Instant::now();
    others_are_served(test).await;
    assert!(
        !slow.is_finished(),
        "the slow client finished first ({:?}), so this shows nothing",
        started.elapsed()
    );
    slow.abort();
}

#[tokio::test]
async fn a_client_sending_its_headers_a_byte_at_a_time_delays_no_one() {
    let test = OrderServiceTest::start().await;
    let stream = TcpStream::connect(test.direct_addr()).await.unwrap();
    let request = format!(
        "POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let slow = tokio::spawn(trickle(
        stream,
        request.into_bytes(),
        Duration::from_millis(100),
    ));
    others_are_served_meanwhile(&test, slow).await;
    test.cleanup().await;
}

#[tokio::test]
async fn a_client_sending_its_body_a_byte_at_a_time_delays_no_one() {
    let test = OrderServiceTest::start().await;
    let mut stream = TcpStream::connect(test.direct_addr()).await.unwrap();
    let head = format!(
        "POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        BODY.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let slow = tokio::spawn(trickle(
        stream,
        BODY.as_bytes().to_vec(),
        Duration::from_millis(100),
    ));
    others_are_served_meanwhile(&test, slow).await;
    test.cleanup().await;
}

#[tokio::test]
async fn hundreds_of_idle_connections_delay_no_one() {
    let test = OrderServiceTest::start().await;
    let mut idle = Vec::new();
    for _ in 0..500 {
        idle.push(TcpStream::connect(test.direct_addr()).await.unwrap());
    }
    // And as many more that sent half a request and went quiet.
    for _ in 0..500 {
        let mut stream = TcpStream::connect(test.direct_addr()).await.unwrap();
        stream
            .write_all(b"GET /orders HTTP/1.1\r\nHo")
            .await
            .unwrap();
        idle.push(stream);
    }
    others_are_served(&test).await;
    drop(idle);
    test.cleanup().await;
}
