use task_runtime::task;

struct Oven {
    heat: u32,
}

#[task]
async fn bake(oven: Oven) -> u32 {
    oven.heat
}

fn main() {}
