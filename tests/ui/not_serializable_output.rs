use task_runtime::task;

struct Pie;

#[task]
async fn bake(slices: u32) -> Pie {
    let _ = slices;
    Pie
}

fn main() {}
