//! `task-local`: a local AWS Lambda for developing and testing functions
//! that use asynchronous invocations. See `task-local serve --help`.

/// Print a line on stdout; a closed stdout (the reader went away) is not an error.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// Print a line on stderr, ignoring a closed stderr.
macro_rules! complain {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

mod api;
mod cli;
mod cron;
mod emulator;
mod failure_queue;
mod function;
mod instance;
mod logs;
mod queue;
mod sample;
mod scheduler;
mod stats;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::emulator::{Emulator, OnFailure};
use crate::function::Function;

#[tokio::main]
async fn main() -> ExitCode {
    let args = match Cli::parse().command {
        Command::Serve(args) => args,
        Command::Event(a) => {
            return match sample::run(a).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(why) => {
                    complain!("task-local: {why}");
                    ExitCode::from(2)
                }
            };
        }
    };
    let configs = match args.functions() {
        Ok(c) => c,
        Err(e) => {
            complain!("task-local: {e}");
            return ExitCode::from(2);
        }
    };
    let on_failure = match args.on_failure.as_deref() {
        None => None,
        Some(target) => match target.split_once(':').filter(|(kind, _)| ["function", "sqs"].contains(kind)) {
            Some((_, name)) if !configs.iter().any(|c| c.name == name) => {
                complain!("task-local: --on-failure {target:?}: no function named `{name}` is served (give it with --function)");
                return ExitCode::from(2);
            }
            Some(("function", name)) => Some(OnFailure::Function(name.to_owned())),
            Some((_, name)) => Some(OnFailure::Sqs(Arc::new(failure_queue::FailureQueue::new(
                name.to_owned(),
                args.failure_queue_visibility,
                args.max_receive_count,
                args.failure_queue_batch_window,
            )))),
            None => match std::fs::OpenOptions::new().create(true).append(true).open(target) {
                Ok(f) => Some(OnFailure::File(std::sync::Mutex::new(f))),
                Err(e) => {
                    complain!("task-local: --on-failure {target}: {e}");
                    return ExitCode::from(2);
                }
            },
        },
    };
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await {
        Ok(l) => l,
        Err(e) => {
            complain!("task-local: cannot listen on 127.0.0.1:{}: {e}", args.port);
            return ExitCode::from(1);
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(args.port);
    let longest = configs.iter().map(|c| c.timeout).max().unwrap_or(Duration::from_secs(3));
    let logs = Arc::new(logs::Logs::default());
    let functions: Vec<Function> = configs.into_iter().map(|c| Function::new(c, &args.region, port, logs.clone())).collect();
    for f in &functions {
        say!(
            "task-local: function {} -> {} (timeout {:?}, memory {} MB, concurrency {}, retries {}, retry delays {:?})",
            f.cfg.name, f.cfg.path.display(), f.cfg.timeout, f.cfg.memory_mb, f.cfg.concurrency, f.cfg.max_retry_attempts, f.cfg.retry_delays
        );
    }
    let faults = emulator::Faults {
        duplicate_deliveries: args.duplicate_deliveries,
        scheduler_retries: args.scheduler_retries,
        destination_limit: args.destination_limit,
    };
    let emu = Arc::new(Emulator::new(functions, logs, on_failure, faults, &args.region));
    if let Some(OnFailure::Sqs(queue)) = &emu.on_failure {
        tokio::spawn(queue::poll_failure_queue(emu.clone(), queue.clone()));
    }
    if !args.no_schedules {
        tokio::spawn(scheduler::run_declared(emu.clone(), args.schedule_speedup));
    }
    say!("task-local: listening on http://127.0.0.1:{port}");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(axum::serve(listener, api::router(emu.clone())).with_graceful_shutdown(async {
        let _ = stop_rx.await;
    }).into_future());

    if args.stop_on_stdin_eof {
        tokio::select! {
            () = shutdown_signal() => {}
            () = stdin_closed() => {}
        }
    } else {
        shutdown_signal().await;
    }
    say!("task-local: shutting down: no new events; waiting up to {longest:?} for running invocations");
    emu.drain(longest + Duration::from_secs(1)).await;
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
    say!("{}", emu.stats.summary().trim_end());
    // Every instance has exited. Exit now rather than wait for the runtime's
    // blocking threads (a pending read of stdin would never end).
    std::process::exit(0)
}

async fn stdin_closed() {
    use tokio::io::AsyncReadExt;
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 256];
    while let Ok(n) = stdin.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
