//! Two `#[on_event]` handlers of one kind of event in one binary: the
//! worker does not start, and the error names both.

use task_runtime::aws_lambda_events::event::s3::S3Event;
use task_runtime::worker::Worker;
use task_runtime::{Config, on_event};

#[on_event]
async fn thumbnails(_event: S3Event) {}

#[on_event]
async fn virus_scan(_event: S3Event) {}

#[test]
fn two_handlers_of_one_kind_fail_the_worker_s_start_naming_both() {
    Config::local().install().expect("install");
    let err = Worker::from_runtime().expect_err("two S3 handlers").to_string();
    assert!(err.contains("thumbnails") && err.contains("virus_scan"), "{err}");
    assert!(err.contains("S3") || err.contains("s3"), "{err}");
}
