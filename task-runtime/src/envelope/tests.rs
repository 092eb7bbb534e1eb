//! The wire format's unit tests.

use super::*;
use serde_json::json;

#[test]
fn a_group_s_children_are_spread_over_its_shards_in_turn() {
    let child = |index| GroupRef { id: "g".into(), index, total: 7, shards: 3, window: None };
    let shards: Vec<u32> = (0..7).map(|i| child(i).shard()).collect();
    assert_eq!(shards, [0, 1, 2, 0, 1, 2, 0]);
    assert_eq!((child(0).shard_size(0), child(0).shard_size(1), child(0).shard_size(2)), (3, 2, 2));
    assert_eq!((child(0).used_shards(), GroupRef { id: "g".into(), index: 0, total: 2, shards: 3, window: None }.used_shards()), (3, 2));
    assert_eq!(child(5).child_id(), "g.5");
}

#[test]
fn a_child_s_end_is_the_turn_of_the_child_a_window_later_while_there_is_one() {
    let child = |index, window| GroupRef { id: "g".into(), index, total: 10, shards: 1, window };
    assert_eq!(child(6, Some(3)).next_in_turn(), Some(9));
    assert_eq!(child(7, Some(3)).next_in_turn(), None, "child 10 does not exist");
    assert_eq!(child(0, None).next_in_turn(), None, "no window: every child was sent at once");
}

#[test]
fn a_message_without_capture_or_retries_reads_as_captured_with_two_retries() {
    let bare = json!({"task_runtime": 1, "task": "t", "id": "1", "args": {}});
    let Incoming::Task(env) = Incoming::classify(&bare) else { panic!("a task message") };
    assert_eq!((env.capture, env.retries), (true, 2));
}

#[test]
fn version_zero_is_refused_and_version_one_is_read() {
    let message = |v: u64| json!({"task_runtime": v, "task": "t", "id": "1", "args": {}});
    let Incoming::Bad(err) = Incoming::classify(&message(0)) else { panic!("version 0 is no version") };
    assert_eq!(err.kind, FailureKind::BadEnvelope);
    assert!(err.message.contains("positive integer version"), "{}", err.message);
    assert!(matches!(Incoming::classify(&message(1)), Incoming::Task(_)));
}

#[test]
fn ids_and_task_names_up_to_the_limit_are_read_and_longer_ones_refused() {
    let message = |id: &str, task: &str| json!({"task_runtime": 1, "task": task, "id": id, "args": {}});
    let (at, over) = ("i".repeat(MAX_NAME_BYTES), "i".repeat(MAX_NAME_BYTES + 1));
    assert!(matches!(Incoming::classify(&message(&at, &at)), Incoming::Task(_)));
    for (id, task) in [(&over, &at), (&at, &over)] {
        let Incoming::Bad(err) = Incoming::classify(&message(id, task)) else { panic!("over the limit") };
        assert!(err.message.contains("longer than 1024 bytes"), "{}", err.message);
    }
}

#[test]
fn a_payload_of_exactly_the_limit_is_sent() {
    let mut env = Envelope::new("t", Map::new(), true, 2);
    let base = env.to_payload().map(|p| p.len()).unwrap_or(usize::MAX);
    // A string argument grows the payload by its length plus `"x":""` (and a comma).
    env.args.insert("x".into(), json!(""));
    let with_empty = env.to_payload().map(|p| p.len()).unwrap_or(usize::MAX);
    env.args.insert("x".into(), json!("y".repeat(MAX_ASYNC_PAYLOAD_BYTES - with_empty)));
    assert_eq!(env.to_payload().map(|p| p.len()), Ok(MAX_ASYNC_PAYLOAD_BYTES));
    env.args.insert("x".into(), json!("y".repeat(MAX_ASYNC_PAYLOAD_BYTES - with_empty + 1)));
    assert_eq!(env.to_payload().map(|p| p.len()), Err((MAX_ASYNC_PAYLOAD_BYTES + 1, MAX_ASYNC_PAYLOAD_BYTES)));
    assert!(base < with_empty);
}

#[test]
fn canonical_form_separates_every_element_and_member() {
    let v = json!({"b": [1, 2, 3], "a": {"y": true, "x": null}});
    assert_eq!(String::from_utf8(canonical(&v)).ok().as_deref(), Some(r#"{"a":{"x":null,"y":true},"b":[1,2,3]}"#));
}

#[test]
fn round_trips_and_matches_the_documented_shape() {
    let env = Envelope::new("q::make_pie", json!({"flavor": "apple"}).as_object().cloned().unwrap_or_default(), true, 2);
    let v = serde_json::to_value(&env).unwrap_or_default();
    assert_eq!(v["task_runtime"], 1);
    assert_eq!(v["args"]["flavor"], "apple");
    assert!(v.get("sig").is_none());
    assert_eq!(Incoming::classify(&v), Incoming::Task(env));
}

#[test]
fn a_put_off_delivery_keeps_its_count_and_a_fresh_one_sends_none() {
    // The count sets how long the next put-off waits (`flow::deferral_gap`)
    // and names its schedule (`schedule_key`): a re-sent delivery that lost
    // it would wait the first, shortest wait every time.
    let mut env = Envelope::new("q::make_pie", Map::new(), true, 2);
    assert!(serde_json::to_value(&env).unwrap_or_default().get("deferred").is_none());
    env.deferred = 3;
    let v = serde_json::to_value(&env).unwrap_or_default();
    assert_eq!(v["deferred"], 3);
    assert_eq!(Incoming::classify(&v), Incoming::Task(env));
}

#[test]
fn no_two_sendings_of_one_call_share_a_schedule_name() {
    // Scheduler refuses a second schedule of a name that exists (409
    // ConflictException, https://docs.aws.amazon.com/scheduler/latest/APIReference/API_CreateSchedule.html;
    // task-local/src/scheduler.rs does the same), so each
    // sending the runtime makes of one call (first, retry N, put off N
    // times) needs its own name, and the first is the call's id.
    let mut env = Envelope::new("t", Map::new(), true, 8);
    env.id = "7".into();
    let mut names = vec![env.schedule_key()];
    for deferred in 1..=2 {
        env.deferred = deferred;
        names.push(env.schedule_key());
    }
    for resend in 1..=2 {
        env.resend = Some(resend);
        for deferred in 0..=2 {
            env.deferred = deferred;
            names.push(env.schedule_key());
        }
    }
    assert_eq!(names[..4], ["7", "7.wait1", "7.wait2", "7.retry1"]);
    let distinct: std::collections::HashSet<&String> = names.iter().collect();
    assert_eq!(distinct.len(), names.len(), "{names:?}");
}

#[test]
fn malformed_messages_name_the_field() {
    let cases = [
        (json!({"task_runtime": "one"}), "task_runtime"),
        (json!({"task_runtime": 1, "task": 5, "id": "x", "args": {}}), "invalid type"),
        (json!({"task_runtime": 1, "task": "t", "args": {}}), "missing field `id`"),
        (json!({"task_runtime": 1, "task": "t", "id": "x", "args": [1]}), "invalid type"),
        (json!({"task_runtime": 1, "task": "t", "id": "", "args": {}}), "`id` is empty"),
    ];
    for (event, expected) in cases {
        match Incoming::classify(&event) {
            Incoming::Bad(e) => {
                assert_eq!(e.kind, FailureKind::BadEnvelope, "{event}");
                assert!(e.message.contains(expected), "{event}: {}", e.message);
            }
            other => panic!("{event} classified as {other:?}"),
        }
    }
}

#[test]
fn newer_version_is_unsupported_and_keeps_the_id() {
    let e = json!({"task_runtime": 2, "task": "t", "id": "abc", "args": {}, "new_field": true});
    match Incoming::classify(&e) {
        Incoming::Bad(err) => {
            assert_eq!(err.kind, FailureKind::UnsupportedVersion);
            assert_eq!(err.id.as_deref(), Some("abc"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn signatures_verify_only_with_the_same_key_and_message() {
    let mut env = Envelope::new("t", Map::new(), true, 2);
    assert_eq!(env.verify(b"k"), Err("the message has no signature (`sig`)"));
    env.sign(b"k");
    assert_eq!(env.verify(b"k"), Ok(()));
    assert!(env.verify(b"other").is_err());
    env.task = "evil".into();
    assert!(env.verify(b"k").is_err());
}

#[test]
fn the_signature_covers_the_canonical_form_whatever_the_key_order() {
    // A message as a caller built with serde_json's `preserve_order`
    // sends it: keys in the order they were inserted, not sorted.
    let text = r#"{"task_runtime":1,"task":"t","id":"7","args":{"slices":8,"flavor":"apple"},"capture":true,"retries":2,"sent_at_ms":5}"#;
    let unsorted: Value = serde_json::from_str(text).unwrap_or_default();
    let env = Envelope::deserialize(&unsorted).expect("decodes");
    // The canonical bytes, and their HMAC-SHA256 under "k", computed
    // independently with Python:
    //   json.dumps(m, sort_keys=True, separators=(",", ":"))
    //   hmac.new(b"k", that, hashlib.sha256).hexdigest()
    let canonical_text = r#"{"args":{"flavor":"apple","slices":8},"capture":true,"id":"7","retries":2,"sent_at_ms":5,"task":"t","task_runtime":1}"#;
    assert_eq!(String::from_utf8_lossy(&canonical(&unsorted)), canonical_text);
    let mut signed = env.clone();
    signed.sign(b"k");
    assert_eq!(signed.sig.as_deref(), Some(CANONICAL_TEST_SIG));
    // The bytes as sent, keys unsorted, still verify.
    let mut sent = unsorted.clone();
    sent["sig"] = json!(CANONICAL_TEST_SIG);
    let received = Envelope::deserialize(&sent).expect("decodes");
    assert_eq!(received.verify(b"k"), Ok(()));
}

/// See `the_signature_covers_the_canonical_form_whatever_the_key_order`.
const CANONICAL_TEST_SIG: &str = "98a82f34a8798da1455bb0f3c7bb560a675c7889a00ae11037ce056364a982cc";

#[test]
fn ids_and_task_names_too_long_to_store_are_refused() {
    let long = "x".repeat(MAX_NAME_BYTES + 1);
    for event in [json!({"task_runtime": 1, "task": "t", "id": long, "args": {}}), json!({"task_runtime": 1, "task": long, "id": "1", "args": {}})] {
        match Incoming::classify(&event) {
            Incoming::Bad(e) => {
                assert!(e.message.contains("longer than 1024 bytes"), "{}", e.message);
                assert!(e.id.as_ref().is_none_or(|id| id.len() <= MAX_NAME_BYTES) && e.task.as_ref().is_none_or(|t| t.len() <= MAX_NAME_BYTES));
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn oversized_payload_reports_size_and_limit() {
    let mut args = Map::new();
    args.insert("blob".into(), Value::String("x".repeat(MAX_ASYNC_PAYLOAD_BYTES)));
    let env = Envelope::new("t", args, true, 2);
    let (size, limit) = env.to_payload().err().unwrap_or_default();
    assert!(size > MAX_ASYNC_PAYLOAD_BYTES);
    assert_eq!(limit, MAX_ASYNC_PAYLOAD_BYTES);
}

#[test]
fn a_signature_covers_the_reference_to_arguments_kept_in_s3() {
    let mut env = Envelope::new("t", Map::new(), true, 2);
    env.args_ref = Some(PayloadRef { bucket: "b".into(), key: "payloads/7/args-ab".into(), size: 5_000_000, sha256: "ab".repeat(32) });
    env.sign(b"key");
    assert!(env.verify(b"key").is_ok());
    for tamper in [
        |r: &mut PayloadRef| r.sha256 = "cd".repeat(32),
        |r: &mut PayloadRef| r.key = "payloads/8/args-ab".into(),
        |r: &mut PayloadRef| r.bucket = "theirs".into(),
        |r: &mut PayloadRef| r.size = 5,
    ] {
        let mut forged = env.clone();
        if let Some(r) = forged.args_ref.as_mut() {
            tamper(r);
        }
        assert!(forged.verify(b"key").is_err(), "{:?}", forged.args_ref);
    }
    // It travels: a message with a reference decodes with it.
    let back = match Incoming::classify(&serde_json::to_value(&env).unwrap_or_default()) {
        Incoming::Task(m) => m,
        other => panic!("{other:?}"),
    };
    assert_eq!(back.args_ref, env.args_ref);
}
