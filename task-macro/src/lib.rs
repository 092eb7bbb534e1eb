//! `#[task]`, the attribute of `task-runtime`. Use it through
//! `task_runtime::task`; see that crate for what it does.

mod check;
mod expand;
mod on_event;
mod options;
mod schedule;

use proc_macro::TokenStream;

/// Marks a function as a task: calling it dispatches; see `task_runtime`.
#[proc_macro_attribute]
pub fn task(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::task(args.into(), item.into()).into()
}

/// `#[on_event]`: route AWS events of the argument's type to this function.
/// See `task_runtime::on_event`.
#[proc_macro_attribute]
pub fn on_event(args: TokenStream, item: TokenStream) -> TokenStream {
    on_event::on_event(args.into(), item.into()).into()
}
