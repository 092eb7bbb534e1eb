use std::borrow::Cow;
use task_runtime::task;

#[task]
async fn greet(name: Cow<'static, str>) -> String {
    format!("hello {name}")
}

fn main() {}
