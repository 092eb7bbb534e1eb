//! The road to AWS: `Tasks.toml`'s stages (`settings.rs`), `tasks init`
//! (`init.rs`), and the commands over a stage (`commands.rs`: `package`,
//! `deploy`, `update`, `rollback`, `undeploy`, `schedule`, `unschedule`),
//! over the worker's build, manifest and zip (`code.rs`), the stage's AWS
//! clients and upload (`aws.rs`), its CloudFormation stack (`stack.rs`)
//! and its functions' versions and alias `live` (`versions.rs`). The
//! template itself is `crate::template`; the API Gateway part of it is
//! `api.rs`.

pub(crate) mod api;
pub(crate) mod aws;
pub(crate) mod code;
pub(crate) mod commands;
pub(crate) mod init;
pub(crate) mod settings;
pub(crate) mod stack;
pub(crate) mod versions;
