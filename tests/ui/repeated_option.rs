use task_runtime::task;

#[task(name = "a", retries = 1, name = "b")]
async fn bake(slices: u32) -> u32 {
    slices
}

fn main() {}
