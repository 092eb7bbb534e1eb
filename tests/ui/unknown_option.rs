use task_runtime::task;

#[task(nmae = "pies.bake", timeout = 3)]
async fn bake(slices: u32) -> u32 {
    slices
}

fn main() {}
