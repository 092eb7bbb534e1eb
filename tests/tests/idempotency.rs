//! Idempotent sends end to end under task-local and DynamoDB Local, with
//! Lambda delivering a third of its events twice (`--duplicate-deliveries
//! 0.3`): 1,000 concurrent sends of 100 idempotency keys are 100 calls,
//! each run once, and every handle's `wait` gives its key's first call's
//! result. An explicit id sent again is the same call with the same
//! arguments and an error with others; a key that cannot be read is an
//! error before anything is sent.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Value, json};
use task_runtime::{DispatchError, SendOptions, send, task};

use common::faults::Served as Setup;

const LIMIT: Duration = Duration::from_secs(120);

async fn setup() -> &'static Setup {
    static SETUP: tokio::sync::OnceCell<Setup> = tokio::sync::OnceCell::const_new();
    SETUP.get_or_init(|| Setup::start("idem")).await
}

/// The fault worker's `fault.keyed`, declared here to send it typed (its
/// key is read from the arguments on this side: the caller makes the id).
#[task(name = "fault.keyed", idempotency_key = "order")]
async fn keyed(order: String, n: u64) -> String {
    format!("{order}:{n}")
}

/// A key inside an argument, for the errors of a key that is not there.
#[task(name = "fault.keyed_inside", idempotency_key = "order.id")]
async fn keyed_inside(order: Value) -> Value {
    order
}

#[test]
fn a_thousand_concurrent_sends_of_a_hundred_keys_are_a_hundred_calls_each_run_once() {
    common::block_on(async {
        let s = setup().await;
        let (keys, sends) = (100u64, 1_000u64);
        // Every send at once: ten per key, each with its own `n`, so the
        // result tells which send's call ran.
        let handles = futures::future::join_all((0..sends).map(|i| keyed(format!("order-{}", i % keys), i))).await;
        let handles: Vec<_> = handles.into_iter().map(|h| h.expect("sent")).collect();

        let ids: BTreeSet<&str> = handles.iter().map(|h| h.id()).collect();
        assert_eq!(ids.len(), keys as usize, "one id per key");
        assert_eq!(handles.iter().filter(|h| !h.is_existing()).count(), keys as usize, "one send per key made the call");

        let mut by_key: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let waits = futures::future::join_all(handles.iter().map(|h| h.wait_timeout(LIMIT))).await;
        for (i, got) in (0..sends).zip(waits) {
            let got = got.unwrap_or_else(|e| panic!("send {i}: {e}"));
            by_key.entry(format!("order-{}", i % keys)).or_default().insert(got);
        }
        for (key, values) in &by_key {
            assert_eq!(values.len(), 1, "{key}: every handle waits for the same call: {values:?}");
            let value = values.iter().next().expect("one");
            let (order, n) = value.split_once(':').expect("ORDER:N");
            let n: u64 = n.parse().expect("a number");
            assert_eq!((order, format!("order-{}", n % keys)), (key.as_str(), key.clone()), "the key's own send ran: {value}");
        }
        for id in &ids {
            assert_eq!(s.runs(id), 1, "{id}: one body, duplicate deliveries and all");
        }
        println!("{sends} sends of {keys} keys: {} calls, {} bodies", ids.len(), ids.iter().map(|id| s.runs(id)).sum::<usize>());

        // The same key by hand (`SendOptions::idempotency_key`) is the same call.
        let again = send("fault.keyed", json!({"order": "order-7", "n": 99}), SendOptions::default().idempotency_key("order-7")).await.expect("sent");
        assert!(again.is_existing());
        assert_eq!(again.id(), keyed(format!("order-{}", 7), 3).await.expect("sent").id());
        assert_eq!(again.wait_timeout(LIMIT).await.expect("ran"), json!(by_key["order-7"].iter().next().expect("one")));
    });
}

#[test]
fn an_explicit_id_sent_again_is_the_same_call_with_the_same_arguments_and_an_error_with_others() {
    common::block_on(async {
        let s = setup().await;
        let id = format!("charge-{}", uuid::Uuid::new_v4().simple());
        let first = send("fault.ok", json!({"n": 5}), SendOptions::default().id(&id)).await.expect("sent");
        // The same arguments (in another order of keys would be the same too): a handle to the first call.
        let same = send("fault.ok", json!({"n": 5}), SendOptions::default().id(&id)).await.expect("the same call");
        assert!(!first.is_existing() && same.is_existing());
        assert_eq!(same.wait_timeout(LIMIT).await.expect("ran"), json!(5));

        let other = send("fault.ok", json!({"n": 6}), SendOptions::default().id(&id)).await.expect_err("other arguments");
        assert!(matches!(&other, DispatchError::IdTaken { holder, .. } if holder.contains("other arguments (complete)")), "{other}");
        assert!(other.to_string().contains(&format!("the id \"{id}\" is held by a call of this task with other arguments")), "{other}");
        let task = send("fault.slow", json!({"ms": 5}), SendOptions::default().id(&id)).await.expect_err("another task");
        assert!(task.to_string().contains("held by a call of task `fault.ok` (complete)"), "{task}");
        // Nothing ran again, and the first call's result stands.
        assert_eq!(s.runs(&id), 1);
        assert_eq!(first.wait_timeout(LIMIT).await.expect("ran"), json!(5));
    });
}

#[test]
fn a_key_that_cannot_be_read_or_kept_is_an_error_and_nothing_is_sent() {
    common::block_on(async {
        setup().await;
        let not_inside = keyed_inside(json!("A-17")).await.expect_err("a string has no field");
        assert!(matches!(not_inside, DispatchError::BadIdempotencyKey { .. }));
        assert!(not_inside.to_string().contains("`order.id`: the argument has no `id` (it is a string)"), "{not_inside}");
        let null = keyed_inside(json!({"id": null})).await.expect_err("a null key");
        assert!(null.to_string().contains("`order.id` is null"), "{null}");
        // The key lives on the call's item: a window past the response TTL (a day here) is refused.
        let week = SendOptions::default().idempotency_key("k").idempotency_window(Duration::from_secs(7 * 86_400));
        let long = send("fault.ok", json!({"n": 1}), week).await.expect_err("longer than the TTL");
        assert!(long.to_string().contains("window of 604800 s is longer than the response TTL of 86400 s (TASK_RESPONSE_TTL_SECS)"), "{long}");
        // And a caller may not choose an id a key would make.
        let bad = send("fault.ok", json!({"n": 1}), SendOptions::default().id("idem:fault.ok:00")).await.expect_err("reserved");
        assert!(matches!(bad, DispatchError::BadId { .. }), "{bad}");
    });
}
