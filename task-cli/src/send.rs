//! `tasks send`.

use serde_json::{Value, json};
use task_runtime::{DispatchError, SendOptions};

use crate::cli::SendArgs;
use crate::setup::{config_problem, install, with_hint};
use crate::status::{DEFAULT_WAIT, follow, print};
use crate::{Exit, Problem};

pub(crate) async fn send(a: SendArgs) -> Result<Exit, Problem> {
    let args: Value = serde_json::from_str(&a.args)
        .map_err(|e| Problem(format!("ARGS_JSON is not JSON ({e}); give an object keyed by parameter name, e.g. '{{\"text\": \"one two\"}}'")))?;
    if !args.is_object() {
        return Err(Problem(format!("ARGS_JSON must be a JSON object keyed by parameter name, not {args}")));
    }
    if a.wait && a.no_capture {
        return Err(Problem("--wait needs the call's response: drop --no-capture".into()));
    }
    let config = install(a.function.as_deref())?;
    if config.function.is_none() {
        return Err(config_problem(task_runtime::ConfigError::NoFunction));
    }
    let mut options = SendOptions::default().capture_response(!a.no_capture);
    if let Some(id) = &a.id {
        options = options.id(id.clone());
    }
    if let Some(key) = &a.key {
        options = options.idempotency_key(key.clone());
    }
    if let Some(window) = a.key_window {
        options = options.idempotency_window(window);
    }
    if let Some(d) = a.delay {
        options = options.delay(d);
    }
    let handle = task_runtime::send(&a.name, args, options).await.map_err(dispatch_problem)?;
    if !(a.json && a.wait) {
        announce(&a.name, handle.id(), handle.is_existing(), a.json);
    }
    if !a.wait {
        return Ok(Exit::Complete);
    }
    let calls = follow(&[handle.id().to_owned()], a.timeout.unwrap_or(DEFAULT_WAIT)).await?;
    print(&calls, a.json);
    Ok(calls.first().map_or(Exit::Unknown, |(_, r)| crate::render::exit_of(r.as_ref())))
}

/// Say what was sent: text on stderr (stdout keeps the id alone, for scripts), or JSON.
pub(crate) fn announce(task: &str, id: &str, existing: bool, json: bool) {
    if json {
        println!("{}", json!({"id": id, "task": task, "existing": existing}));
        return;
    }
    if existing {
        eprintln!("a call with id {id} exists already (the same id, or the same key): nothing was sent, following it");
    } else {
        eprintln!("sent {task} as {id}");
    }
    println!("{id}");
}

pub(crate) fn dispatch_problem(e: DispatchError) -> Problem {
    match e {
        DispatchError::Config(c) => config_problem(c),
        DispatchError::Invoke { status: Some(404), function, .. } => {
            Problem(format!("there is no function `{function}` (ResourceNotFoundException): check --function or TASK_FUNCTION"))
        }
        other => Problem(with_hint(other.to_string())),
    }
}
