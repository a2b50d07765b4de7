//! The `clickhouse_reachable` health check against real servers: it passes when every configured
//! address answers `SELECT 1`, and otherwise fails naming each address that did not — refused, stopped
//! or frozen — and why, while the addresses that answered are not blamed. It asks each address
//! directly, so it turns green as soon as a restarted server answers.
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;

use luminate_clickhouse::testing::ClickhouseServer;
use luminate_clickhouse::{ClickhouseSettings, ClickhouseStore, REACHABLE_CHECK};
use luminate_model::MetricsStore;
use luminate_model::store::{CheckOutcome, CheckStatus};

/// Runs the store's checks; asserts there is exactly the reachability check and returns its outcome.
async fn reachability(store: &ClickhouseStore) -> CheckOutcome {
    let mut checks = store.checks();
    assert_eq!(
        checks.iter().map(|c| c.name).collect::<Vec<_>>(),
        [REACHABLE_CHECK]
    );
    checks.remove(0).probe.await
}

/// A loopback address where nothing listens.
fn closed_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    drop(listener);
    address
}

#[tokio::test]
async fn every_address_answering_passes_and_one_that_does_not_is_named() {
    let live = common::server().address();
    let store = common::store("reachability_one").await;
    assert_eq!(
        reachability(&store).await,
        CheckOutcome::pass().with_message(format!("SELECT 1 answered by {live}"))
    );

    let dead = closed_address();
    let settings = ClickhouseSettings {
        addresses: vec![live.clone(), dead.clone()],
        ..common::settings("reachability_two")
    };
    // Opening fails over to the live address; the check asks both.
    let store = ClickhouseStore::open(settings).await.unwrap();
    let outcome = reachability(&store).await;
    assert_eq!(outcome.status, CheckStatus::Fail);
    let message = outcome.message.unwrap();
    let expected = format!(
        "1 of 2 ClickHouse addresses did not answer SELECT 1: cannot connect to ClickHouse at {dead}: {dead}: "
    );
    assert!(message.starts_with(&expected), "{message}");
    assert!(!message.contains(&live), "{message}");
}

#[tokio::test]
async fn a_stopped_server_is_named_and_a_restarted_one_passes_at_once() {
    let mut server = ClickhouseServer::start();
    let address = server.address();
    let store = ClickhouseStore::open(server.settings("reachability_restart"))
        .await
        .unwrap();
    assert_eq!(reachability(&store).await.status, CheckStatus::Pass);

    server.kill();
    let outcome = reachability(&store).await;
    assert_eq!(outcome.status, CheckStatus::Fail);
    let message = outcome.message.unwrap();
    // The first ping may go out on a kept-alive connection the crash cut (broken mid-request); later
    // ones find nothing listening. Both name the address.
    let prefix = "1 of 1 ClickHouse addresses did not answer SELECT 1: ";
    let named = [
        format!("{prefix}cannot connect to ClickHouse at {address}: "),
        format!("{prefix}connection to ClickHouse at {address} failed mid-request: "),
    ];
    assert!(named.iter().any(|n| message.starts_with(n)), "{message}");
    let message = reachability(&store).await.message.unwrap();
    assert!(message.starts_with(&named[0]), "{message}");

    server.start_again();
    assert_eq!(
        reachability(&store).await,
        CheckOutcome::pass().with_message(format!("SELECT 1 answered by {address}"))
    );
}

#[tokio::test]
async fn a_frozen_server_is_named_after_the_ping_timeout() {
    let server = ClickhouseServer::start();
    let address = server.address();
    let store = ClickhouseStore::open(server.settings("reachability_frozen"))
        .await
        .unwrap();
    server.pause();
    let started = std::time::Instant::now();
    let outcome = reachability(&store).await;
    let took = started.elapsed();
    server.resume();
    assert_eq!(
        outcome,
        CheckOutcome::fail(format!(
            "1 of 1 ClickHouse addresses did not answer SELECT 1: {address}: no answer from ClickHouse within 3s"
        ))
    );
    // Below the server's 5 s bound on a check, so the route names the address instead of timing out.
    assert!(took < std::time::Duration::from_secs(5), "{took:?}");
    assert_eq!(reachability(&store).await.status, CheckStatus::Pass);
}
