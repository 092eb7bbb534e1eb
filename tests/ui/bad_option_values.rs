use task_runtime::task;

#[task(name = 5, capture_response = "yes", function = "")]
async fn bake(slices: u32) -> u32 {
    slices
}

fn main() {}
