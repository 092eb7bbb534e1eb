use task_runtime::task;

#[task(schedule = "rate(1 hours)")]
async fn hourly() {}

#[task(schedule = "every monday")]
async fn weekly() {}

#[task(schedule = "rate(5 minutes)")]
async fn needs_args(title: String) -> String {
    title
}

#[task(schedule = "rate(5 minutes)", schedule_args = (1, 2))]
async fn wrong_type(title: String, n: u32) -> String {
    format!("{title} {n}")
}

fn main() {}
