use task_runtime::on_event;

#[on_event]
async fn anything(event: String) {
    let _ = event;
}

fn main() {}
