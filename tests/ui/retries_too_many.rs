use task_runtime::task;

#[task(retries = 101)]
async fn bake(slices: u32) -> u32 {
    slices
}

fn main() {}
