//! The README's `examples/client.rs` session, run as the README shows it:
//! the client against task-local serving `examples/worker`, with DynamoDB
//! Local. What it prints is what the README prints.

mod common;

use std::process::Command;

use common::task_local::{self, TaskLocal};

#[test]
fn the_client_example_sends_three_calls_and_follows_each_to_its_end() {
    let table = common::table_name("client");
    let tl = TaskLocal::start([
        "--no-schedules".to_owned(),
        "--function".into(),
        format!("worker={}", task_local::built("examples/worker").display()),
        "--retry-delays".into(),
        "200ms,400ms".into(),
        "--env".into(),
        format!("TASK_RESPONSE_TABLE={table}"),
        "--env".into(),
        format!("AWS_ENDPOINT_URL_DYNAMODB={}", common::dynamodb_endpoint()),
    ]);
    let out = common::loopback_aws(&mut Command::new(task_local::built("examples/client")), &tl.endpoint)
        .env("TASK_FUNCTION", "worker")
        .env("TASK_RESPONSE_TABLE", &table)
        .output()
        .expect("run the client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}\n{}", tl.tail(20));
    assert!(stdout.starts_with(&format!("table {table} ready\n")), "{stdout}");
    for task in ["worker::word_count", "worker::flaky", "worker::refuse"] {
        assert!(stdout.contains(&format!("sent {task} as ")), "{stdout}");
    }
    // The outcomes the README shows, in order.
    let outcomes: Vec<&str> = stdout.lines().filter(|l| l.trim_start().starts_with("-> ")).map(str::trim).collect();
    assert_eq!(
        outcomes,
        ["-> 4 after 1 attempt(s)", "-> 2 after 2 attempt(s)", "-> failed after 1 attempt(s): [failed] out of flour"],
        "{stdout}"
    );
}
