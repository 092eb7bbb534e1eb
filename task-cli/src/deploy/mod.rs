//! The road to AWS: `Tasks.toml`'s stages (`settings.rs`), `tasks init`
//! (`init.rs`), and the commands over a stage (`commands.rs`: today
//! `tasks package`), over the worker's build, manifest and zip (`code.rs`).
//! The template itself is `crate::template`; the API Gateway part of it
//! is `api.rs`.

pub(crate) mod api;
pub(crate) mod code;
pub(crate) mod commands;
pub(crate) mod init;
pub(crate) mod settings;
