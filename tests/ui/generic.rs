use task_runtime::task;

#[task]
async fn echo<T: serde::Serialize>(value: T) -> T {
    value
}

fn main() {}
