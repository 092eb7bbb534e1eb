use task_runtime::task;

struct Oven;

impl Oven {
    #[task]
    fn bake(self) -> u32 {
        1
    }
}

fn main() {}
