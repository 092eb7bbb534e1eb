use task_runtime::task;

#[task(retries = 8, retry_backoff = "1d", retry_backoff_max = "0s", retry_jitter = "no")]
async fn backoff_units() {}

#[task(concurrency = 0, concurrency_key = "acount")]
async fn sync_account(account: String) {}

#[task(rate_limit = "100/d")]
async fn send_sms(to: String) {}

#[task(rate_limit_key = "to")]
async fn keyed_without_limit(to: String) {}

fn main() {}
