//! Chains: calls that run one after another, each taking the value of the
//! one before. `a.then(b)` sends `a`; when `a` completes, its worker sends
//! `b` with `a`'s value as one of `b`'s arguments (see
//! [`crate::follow_up`]). Each step is an ordinary call with its own id
//! (`ID.step1`, `ID.step2`, … after the first call's `ID`), so `tasks
//! status` shows it; a failed step stops the chain.

use std::marker::PhantomData;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::dispatch::{Target, dispatch};
use crate::envelope::{Args, NextStep, step_id};
use crate::error::{DispatchError, WaitError};
use crate::group::Call;
use crate::handle::{Backoff, settled};
use crate::registry::TaskSpec;
use crate::response::Status;

/// A call that takes the value of the step before it as its argument
/// `param`: a step of a chain. Every `#[task]` with parameters has a `step`
/// companion, taking every argument but the first, whose type is `In`;
/// [`step`] builds one by name.
///
/// ```
/// use task_runtime::task;
///
/// #[task]
/// async fn word_count(text: String) -> usize { text.split_whitespace().count() }
///
/// #[task]
/// async fn times(n: usize, factor: usize) -> usize { n * factor }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // word_count's value (a usize) becomes times's first argument, `n`.
/// let chain = word_count::call("a b c".into()).then(times::step(10)).send().await?;
/// assert_eq!(chain.wait().await?, 30);
/// # Ok(()) }
/// ```
#[must_use = "a Step does nothing until its chain is sent"]
pub struct Step<In, Out> {
    next: Result<NextStep, DispatchError>,
    _types: PhantomData<fn(In) -> Out>,
}

impl<In, Out> std::fmt::Debug for Step<In, Out> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Step").field("next", &self.next).finish()
    }
}

/// A step by name: task `task`, whose argument `param` takes the value of
/// the step before, with its other arguments `args` (a JSON object).
///
/// ```
/// let s = task_runtime::step("reports.total", "counts", serde_json::json!({"currency": "EUR"}));
/// # let _ = s;
/// ```
pub fn step(task: &str, param: &str, args: Value) -> Step<Value, Value> {
    let next = match args {
        Value::Object(args) => Ok(NextStep { task: task.to_owned(), args: args.into(), param: param.to_owned(), function: None, retries: 2 }),
        other => Err(DispatchError::ArgsNotObject { task: task.to_owned(), found: crate::dispatch::json_type(&other) }),
    };
    Step { next, _types: PhantomData }
}

impl<In, Out> Step<In, Out> {
    /// A typed step of the task `spec` (what `#[task]`'s `step` builds).
    #[doc(hidden)]
    pub fn typed(spec: &'static TaskSpec, param: &'static str, args: Result<Args, DispatchError>) -> Self {
        let next = args.map(|args| NextStep {
            task: spec.name.to_owned(),
            args,
            param: param.to_owned(),
            function: spec.function.map(str::to_owned),
            retries: spec.retries.unwrap_or(2),
        });
        Step { next, _types: PhantomData }
    }
}

/// Calls to send one after another: see [`Call::then`].
#[must_use = "a Chain does nothing until it is sent"]
#[derive(Debug)]
pub struct Chain<T> {
    first: Call<Value>,
    steps: Vec<Result<NextStep, DispatchError>>,
    _value: PhantomData<fn() -> T>,
}

impl<T> Call<T> {
    /// Run `next` when this call completes, with its value as `next`'s
    /// argument. The chain's handle resolves to the last step's value.
    pub fn then<U>(self, next: Step<T, U>) -> Chain<U> {
        Chain { first: self.erase(), steps: vec![next.next], _value: PhantomData }
    }
}

impl<T> Chain<T> {
    /// Run `next` after the last step, with its value.
    pub fn then<U>(mut self, next: Step<T, U>) -> Chain<U> {
        self.steps.push(next.next);
        Chain { first: self.first, steps: self.steps, _value: PhantomData }
    }

    /// Send the first call; the others follow as each completes.
    pub async fn send(self) -> Result<ChainHandle<T>, DispatchError> {
        let steps: Vec<NextStep> = self.steps.into_iter().collect::<Result<_, _>>()?;
        let (name, function, capture, retries, args, options) = self.first.into_parts();
        let not_captured = || DispatchError::BadChain {
            task: name.clone(),
            problem: "a chain's calls need their outcomes captured (the response store, and capture_response on): each step is sent with the value of the one before".into(),
        };
        if !capture || options.capture_response == Some(false) {
            return Err(not_captured());
        }
        let mut target = Target::new(&name, function.as_deref(), capture, retries, &options);
        target.then = &steps;
        let sent = dispatch(target, args?).await?;
        if !sent.capture {
            return Err(not_captured());
        }
        Ok(ChainHandle { first: sent.id, steps: steps.len() as u32, _value: PhantomData })
    }
}

/// A sent chain: follows its steps to the last one's value.
#[derive(Debug)]
pub struct ChainHandle<T> {
    first: String,
    steps: u32,
    _value: PhantomData<fn() -> T>,
}

impl<T> ChainHandle<T> {
    /// A handle for the chain whose first call is `first`, with `steps` steps after it.
    pub fn from_id(first: impl Into<String>, steps: u32) -> Self {
        ChainHandle { first: first.into(), steps, _value: PhantomData }
    }

    /// The chain's id: its first call's.
    pub fn id(&self) -> &str {
        &self.first
    }

    /// The id of every call of the chain, in order.
    pub fn call_ids(&self) -> Vec<String> {
        std::iter::once(self.first.clone()).chain((1..=self.steps).map(|k| step_id(&self.first, k))).collect()
    }
}

impl<T: DeserializeOwned> ChainHandle<T> {
    /// Wait for the last step's value. A failed (or cancelled, or stale)
    /// step stops the chain: [`WaitError::ChainStep`] names it and why.
    pub async fn wait(&self) -> Result<T, WaitError> {
        self.wait_until(None).await
    }

    /// Like [`wait`](Self::wait), giving up after `limit`.
    pub async fn wait_timeout(&self, limit: Duration) -> Result<T, WaitError> {
        self.wait_until(Some(limit)).await
    }

    async fn wait_until(&self, limit: Option<Duration>) -> Result<T, WaitError> {
        let mut backoff = Backoff::new(limit);
        let ids = self.call_ids();
        let last = ids.len() - 1;
        for (step, id) in ids.iter().enumerate() {
            backoff.restart();
            // A later step has no item until the step before completes and its worker sends it.
            let value: Value = loop {
                let found = crate::poll::get_async_response(id).await?;
                let last_seen = found.as_ref().map_or(Status::Pending, |r| r.status);
                match found {
                    Some(r) => {
                        if let Some(outcome) = settled(id, "", r) {
                            break outcome.map_err(|source| WaitError::ChainStep { chain: self.first.clone(), step: step as u32, source: Box::new(source) })?;
                        }
                    }
                    None if step == 0 => return Err(WaitError::NotFound { id: id.clone() }),
                    None => {}
                }
                if let Err(waited) = backoff.pause().await {
                    return Err(WaitError::Timeout { id: id.clone(), task: format!("step {step} of chain {}", self.first), waited, last: last_seen });
                }
            };
            if step == last {
                return serde_json::from_value(value).map_err(|source| WaitError::Decode { id: id.clone(), task: format!("the last step of chain {}", self.first), source });
            }
        }
        Err(WaitError::NotFound { id: self.first.clone() })
    }
}
