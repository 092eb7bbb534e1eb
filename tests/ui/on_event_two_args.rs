use task_runtime::aws_lambda_events::event::s3::S3Event;
use task_runtime::on_event;

#[on_event]
async fn uploaded(event: S3Event, extra: u32) {
    let _ = (event, extra);
}

#[on_event]
fn not_async(event: S3Event) {
    let _ = event;
}

fn main() {}
