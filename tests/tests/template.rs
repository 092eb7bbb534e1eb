//! `deploy/template.yaml` is what `tasks template` makes of `examples/worker`
//! today: a change to the worker's tasks, schedules, handlers or keep-warm
//! that is not regenerated fails here. (`scripts/test` runs cfn-lint on it.)

mod common;

use common::task_local;

#[test]
fn the_committed_template_is_generated_from_the_worker_s_manifest() {
    let worker = task_local::built("examples/worker");
    let out = std::process::Command::new(task_local::built("tasks"))
        .args(["template", "--worker"])
        .arg(&worker)
        .output()
        .expect("run tasks template");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let generated = String::from_utf8(out.stdout).expect("UTF-8");
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/template.yaml")).expect("deploy/template.yaml");
    assert!(
        generated == committed,
        "deploy/template.yaml is out of date; regenerate it with\n  cargo build --example worker -p examples && cargo run -p task-cli -- template --worker target/debug/examples/worker > deploy/template.yaml"
    );
    for expected in [
        "ScheduleWorkerHourlyReport:",
        "ScheduleExpression: \"rate(1 hour)\"",
        "schedule:worker::hourly_report:<aws.scheduler.execution-id>",
        "KeepWarm:",
        "task_runtime_warmup",
        "AttributeName: ttl",
        "IndexName: failed-by-day",
        "Type: SQS",
        "RetentionInDays: 14",
    ] {
        assert!(committed.contains(expected), "the template lacks {expected:?}");
    }
}
