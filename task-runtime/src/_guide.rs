//! The guide: how to use task-runtime, page by page. Each page is a module
//! with no items, rendered by rustdoc (the style of clap's `_tutorial`);
//! its examples compile as doctests. The same pages are Markdown files in
//! the crate's `guide/` folder.
//!
//! Start here:
//! 1. [`getting_started`]: the example, the quick start, and the test suite.
//! 2. [`retries_and_limits`]: what a task returns, retry policies, timeouts,
//!    concurrency and rate limits.
//! 3. [`groups_and_chains`]: fan-out and fan-in with one callback, chains.
//! 4. [`events_and_schedules`]: AWS events to `#[on_event]` handlers,
//!    schedules and keep-warm declared in code.
//! 5. [`deploying`]: the SAM template, `cargo lambda`, `tasks check`, API keys.
//! 6. [`local_emulator`]: `task-local`, the emulator that runs your real
//!    worker binary the way Lambda does.
//! 7. [`cli`]: the `tasks` command line.
//! 8. [`observability`]: the dashboard, the tree of calls, traces.
//!
//! Reference:
//! - [`semantics`]: what is stored and what Lambda is told, for every
//!   outcome; duplicates, delays, ids, cancelling, versions.
//! - [`configuration`]: every environment variable, and its default.
//! - [`fault_run`]: 10,000 calls under kills, timeouts, panics and
//!   duplicates, each ending terminal.
//! - [`performance`]: what one call costs, measured against a raw SDK call
//!   and a bare Lambda handler.
//! - [`testing`]: how the project is tested (mutation testing included).
//!
//! Contributors: ARCHITECTURE.md in the repository maps the code.

// Its example is compiled as a crate of its own (`standalone_crate`): it
// registers the task name `pies.box`, as the README's copy does, and one
// merged doctest binary cannot hold a name twice (the registry refuses it).
#[doc = include_str!("../guide/getting_started.md")]
pub mod getting_started {}

#[doc = include_str!("../guide/retries_and_limits.md")]
pub mod retries_and_limits {}

#[doc = include_str!("../guide/groups_and_chains.md")]
pub mod groups_and_chains {}

#[doc = include_str!("../guide/events_and_schedules.md")]
pub mod events_and_schedules {}

#[doc = include_str!("../guide/deploying.md")]
pub mod deploying {}

#[doc = include_str!("../guide/local_emulator.md")]
pub mod local_emulator {}

#[doc = include_str!("../guide/cli.md")]
pub mod cli {}

#[doc = include_str!("../guide/observability.md")]
pub mod observability {}

#[doc = include_str!("../guide/semantics.md")]
pub mod semantics {}

#[doc = include_str!("../guide/configuration.md")]
pub mod configuration {}

#[doc = include_str!("../guide/fault_run.md")]
pub mod fault_run {}

#[doc = include_str!("../guide/performance.md")]
pub mod performance {}

#[doc = include_str!("../guide/testing.md")]
pub mod testing {}
