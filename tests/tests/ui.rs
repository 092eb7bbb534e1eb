//! Every input `#[task]` and `#[on_event]` reject, with the error the user sees (`ui/*.stderr`).

#[test]
fn rejected_inputs() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/*.rs");
}
