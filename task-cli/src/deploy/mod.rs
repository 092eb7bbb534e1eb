//! The road to AWS: `Tasks.toml`'s stages (`settings.rs`), `tasks init`
//! (`init.rs`), and the commands that deploy a stage and change it after:
//! `deploy`, `update`, `rollback`, `undeploy`, `package`, `schedule` and
//! `unschedule` (`commands.rs`), over the code's zip and bucket (`code.rs`),
//! the CloudFormation stack (`stack.rs`) and the functions' versions and
//! alias (`versions.rs`). The template itself is `crate::template`.

pub(crate) mod api;
pub(crate) mod settings;
