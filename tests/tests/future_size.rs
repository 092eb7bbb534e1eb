//! A `#[task]` call's future is moved whole until whoever awaits it pins it,
//! and 32 calls in flight are 32 of them: every SDK future awaited in place
//! inside it adds several KB (an `Invoke`'s is 5.5 KB), which a profile of
//! dispatch shows as `memmove`. The runtime boxes each SDK call on the
//! dispatch path (`aws::boxed`); this keeps it so. A size, not a timing.

use task_runtime::task;

#[task(name = "size.add")]
async fn add(a: u32, b: u32) -> u32 {
    a + b
}

#[test]
fn a_task_call_s_future_holds_no_sdk_future_in_place() {
    let size = std::mem::size_of_val(&add(1, 2));
    // About 2.4 KB in a release build; one SDK future in place adds 5 KB or more.
    eprintln!("a #[task] call's future: {size} bytes");
    assert!(size < 4 * 1024, "a #[task] call's future is {size} bytes: an SDK future is awaited in place on the dispatch path (box it with aws::boxed)");
}
