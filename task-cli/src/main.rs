//! `tasks`: a command line for task-runtime calls. It uses the library's
//! own client code and configuration (`TASK_FUNCTION`, `TASK_RESPONSE_TABLE`,
//! aws-config's standard chain), so it works the same against AWS and
//! against task-local with DynamoDB Local. `tasks --help` shows an example
//! of each command.

mod check;
mod cli;
mod dashboard;
mod deploy;
mod deployed;
mod failed;
mod group;
mod progress;
mod redrive;
mod render;
mod send;
mod setup;
mod status;
mod tail;
mod template;
mod tree;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

/// What a command ends with: the exit code says the state of the calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Exit {
    /// Every call is complete (or the command did what it was asked).
    Complete = 0,
    /// A call is still running, pending, scheduled or retrying.
    Unfinished = 3,
    /// A call failed or was cancelled; for `tasks check`, a part it checks
    /// could not be read.
    Failed = 1,
    /// An id is unknown (or expired).
    Unknown = 4,
    /// `tasks check` found an inconsistency.
    Inconsistent = 2,
}

/// A command that could not run: what is wrong and how to fix it (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Problem(pub(crate) String);

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // `tasks check` exits 1 when it could not run (2 means it found something).
    let cannot_run = if matches!(cli.command, Command::Check(_)) { 1 } else { 2 };
    let outcome = match cli.command {
        Command::Function(a) => deployed::function(a).await,
        Command::Check(a) => check::check(a).await,
        Command::Status(a) => status::status(a).await,
        Command::Send(a) => send::send(a).await,
        Command::Wait(a) => status::wait(a).await,
        Command::Tail(a) => tail::tail(a).await,
        Command::Failed(a) => failed::failed(a).await,
        Command::Retry(a) => failed::retry(a).await,
        Command::Redrive(a) => redrive::redrive(a).await,
        Command::CreateTable(a) => failed::create_table(a).await,
        Command::Template(a) => template::template(a).await,
        Command::Tree(a) => tree::tree(a).await,
        Command::Dashboard(a) => dashboard::dashboard(a).await,
        Command::Init => deploy::init::init().await,
        Command::Package(a) => deploy::commands::package(a).await,
        Command::Deploy(a) => deploy::commands::deploy(a).await,
        Command::Update(a) => deploy::commands::update(a).await,
        Command::Rollback(a) => deploy::commands::rollback(a).await,
        Command::Undeploy(a) => deploy::commands::undeploy(a).await,
        Command::Schedule(a) => deploy::commands::schedule(a, true).await,
        Command::Unschedule(a) => deploy::commands::schedule(a, false).await,
    };
    match outcome {
        Ok(exit) => ExitCode::from(exit as u8),
        Err(Problem(why)) => {
            eprintln!("tasks: {why}");
            ExitCode::from(cannot_run)
        }
    }
}
