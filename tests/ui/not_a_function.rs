use task_runtime::task;

#[task]
struct Pie;

fn main() {}
