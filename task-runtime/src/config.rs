//! Configuration: plain data, from the environment or set in code.
//! [`crate::runtime`] builds the store, the backend and the worker's
//! settings from it, in one place.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `TASK_BACKEND` | `lambda` or `local` | `lambda` when a target function is known, else `local` |
//! | `TASK_FUNCTION` | function name or ARN to invoke | `AWS_LAMBDA_FUNCTION_NAME` (invoke self) |
//! | `TASK_FUNCTIONS` | where the function groups of `#[task(function = "heavy")]` are: `heavy=worker-dev-heavy:live,io=…` (set by the generated template) | none: `function =` names the function itself |
//! | `TASK_RESPONSE_TABLE` | DynamoDB table for responses | none: capture off on the lambda backend |
//! | `TASK_RESPONSE_TTL_SECS` | how long results live | 86400 |
//! | `TASK_MAX_ATTEMPTS` | attempts the worker assumes Lambda allows (1-3) | 3 |
//! | `TASK_LOCAL_RETRY_DELAY_MS` | local backend: delay before each retry | 200 |
//! | `TASK_TIMEOUT_MARGIN_MS` | time kept back before the deadline to record a timeout | 500 |
//! | `TASK_LEASE_MS` | how long a worker's claim on a call holds unless its heartbeat renews it | 10000 |
//! | `TASK_SIGNING_KEY` | HMAC-SHA256 key: sign messages, refuse unsigned ones | none |
//! | `TASK_SCHEDULER_ROLE_ARN` | the role EventBridge Scheduler assumes to invoke the function of a delayed task | none: delays are refused on AWS |
//! | `TASK_FOLLOW_QUALIFIER` | inside Lambda, send to the caller's own function at the qualifier it was invoked with | `true` |
//! | `TASK_PAYLOAD_BUCKET` | the S3 bucket for arguments over 256 KiB, results over 380 KiB and failure messages over 8 KiB (the generated template makes it) | none: those are refused, failed `too_large`, or cut |
//! | `TASK_PAYLOAD_MAX` | the largest object written or read there, in bytes | 104857600 (100 MiB) |
//! | `TASK_LIST_CALLS` | index every call by the day it was sent, so that recent calls can be listed (`tasks dashboard`); one index write per call | `false` |
//! | `TASK_PENDING_WRITE` | `true`: the caller writes every call's `pending` item before the worker begins it, three writes a call instead of two (see [`Config::pending_write`]) | `false` |

use std::sync::Arc;
use std::time::Duration;

use crate::error::ConfigError;

/// Where dispatched tasks go.
///
/// ```
/// use task_runtime::{BackendKind, Config};
///
/// // Inside Lambda the function invokes itself, like Zappa.
/// let env = |k: &str| (k == "AWS_LAMBDA_FUNCTION_NAME").then(|| "tasks-worker".to_string());
/// let config = Config::from_lookup(env).unwrap();
/// assert_eq!(config.backend, BackendKind::Lambda);
/// assert_eq!(config.function.as_deref(), Some("tasks-worker"));
/// // Nowhere to send: the embedded local backend.
/// assert_eq!(Config::from_lookup(|_| None).unwrap().backend, BackendKind::Local);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// `Invoke` with `InvocationType=Event` on AWS Lambda (or an emulator).
    Lambda,
    /// In this process, on tokio, with an in-memory store.
    Local,
}

/// The runtime's configuration.
///
/// ```
/// use std::time::Duration;
/// use task_runtime::{BackendKind, Config};
///
/// let config = Config::local().with_local_retry_delay(Duration::from_millis(10));
/// assert_eq!(config.backend, BackendKind::Local);
/// // config.install()?; // before the first dispatch, to override the environment
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct Config {
    /// Where tasks go.
    pub backend: BackendKind,
    /// The default function to invoke (lambda backend).
    pub function: Option<String>,
    /// The functions of the groups that `#[task(function = "heavy")]`
    /// names, by group (`TASK_FUNCTIONS=heavy=worker-dev-heavy:live`): a
    /// task whose `function` is a group here goes to its function; any other
    /// `function` is the function's own name or ARN.
    pub functions: std::collections::BTreeMap<String, String>,
    /// The DynamoDB table for responses (lambda backend).
    pub response_table: Option<String>,
    /// How long responses live.
    pub response_ttl: Duration,
    /// Attempts Lambda allows the function: 1 + its retry setting (1-3).
    pub max_attempts: u32,
    /// Local backend: the delay before each retry.
    pub local_retry_delay: Duration,
    /// Time kept back before an invocation's deadline to record a timeout.
    pub timeout_margin: Duration,
    /// How long a worker's claim on a call holds unless renewed; see
    /// [`WorkerSettings::lease`](crate::worker::WorkerSettings::lease).
    pub lease: Duration,
    /// How long after it was sent (or was due, when delayed) a call can
    /// still run: the function's `MaximumEventAgeInSeconds` plus its
    /// timeout. A call not ended by then reads stale (default and most:
    /// 6 h 15 min, Lambda's longest event age and timeout; see
    /// [`give_up_ms`](crate::store::give_up_ms)).
    pub event_life: Duration,
    /// HMAC-SHA256 key for signing messages.
    pub signing_key: Option<Arc<[u8]>>,
    /// The AWS SDK configuration for the Lambda and DynamoDB clients; `None`
    /// loads aws-config's standard chain on first use.
    pub aws: Option<aws_config::SdkConfig>,
    /// A response store to use in place of the one the backend would build.
    pub store: Option<Arc<dyn crate::store::ResponseStore>>,
    /// The invoker of the lambda backend, in place of one built from `aws`.
    pub invoker: Option<Arc<crate::backend::lambda::LambdaInvoker>>,
    /// The role EventBridge Scheduler assumes to invoke the function of a
    /// delayed task (lambda backend).
    pub scheduler_role_arn: Option<String>,
    /// EventBridge Scheduler's client for delayed tasks, in place of one built from `aws`.
    pub scheduler: Option<Arc<crate::backend::scheduler::Scheduler>>,
    /// Inside Lambda, a task sent to the caller's own function goes to the
    /// version or alias the caller was invoked with (`:live` sends to
    /// `:live`). `false` sends to the function as named.
    pub follow_qualifier: bool,
    /// Index every call by the day it was sent
    /// ([`RECENT_INDEX`](crate::store::dynamodb::RECENT_INDEX)), so that
    /// recent calls can be listed (`tasks dashboard`'s calls page). Costs one
    /// index write per call, so it is off unless asked for.
    pub list_calls: bool,
    /// Whether the caller writes every call's `pending` item
    /// (`TASK_PENDING_WRITE`, default `false`). By default a call sent
    /// alone or in a group, with a generated id, no delay, no debounce,
    /// signing off and `TASK_LIST_CALLS` off makes no write of the
    /// caller's: the worker's `begin` creates its item, so a call that runs
    /// once costs two writes (a group child three). Its id is then a
    /// version-8 UUID that carries its send time, so that until it begins
    /// [`get_async_response`](crate::get_async_response) reads it
    /// `pending` (with no task name; its handle names it), stale once
    /// Lambda can no longer deliver it, and [`cancel`](crate::cancel) still
    /// reaches it. Ids of your own, idempotency keys, delays, debounce,
    /// signing and listing keep the write (each needs the item before the
    /// invoke). `true` writes it for every call, as this crate did before:
    /// the item then names its task and parent from the moment it is sent.
    pub pending_write: bool,
    /// The S3 bucket for values too large for a message or an item
    /// (`TASK_PAYLOAD_BUCKET`); see [`crate::store::payloads`].
    pub payload_bucket: Option<String>,
    /// The largest object written to or read from the bucket, in bytes
    /// (`TASK_PAYLOAD_MAX`, default 100 MiB).
    pub payload_max: u64,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("backend", &self.backend)
            .field("function", &self.function)
            .field("functions", &self.functions)
            .field("response_table", &self.response_table)
            .field("response_ttl", &self.response_ttl)
            .field("max_attempts", &self.max_attempts)
            .field("local_retry_delay", &self.local_retry_delay)
            .field("timeout_margin", &self.timeout_margin)
            .field("lease", &self.lease)
            .field("event_life", &self.event_life)
            .field("list_calls", &self.list_calls)
            .field("pending_write", &self.pending_write)
            .field("payload_bucket", &self.payload_bucket)
            .field("payload_max", &self.payload_max)
            .field("signing_key", &self.signing_key.as_ref().map(|_| "<redacted>"))
            .field("aws", &self.aws.as_ref().map(|_| "<SdkConfig>"))
            .field("store", &self.store)
            .field("invoker", &self.invoker)
            .field("scheduler_role_arn", &self.scheduler_role_arn)
            .field("scheduler", &self.scheduler)
            .field("follow_qualifier", &self.follow_qualifier)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            backend: BackendKind::Local,
            function: None,
            functions: std::collections::BTreeMap::new(),
            response_table: None,
            response_ttl: Duration::from_secs(86_400),
            max_attempts: 3,
            local_retry_delay: Duration::from_millis(200),
            timeout_margin: Duration::from_millis(500),
            lease: Duration::from_secs(10),
            event_life: Duration::from_millis(crate::store::MAX_EVENT_LIFE_MS),
            signing_key: None,
            aws: None,
            store: None,
            invoker: None,
            scheduler_role_arn: None,
            scheduler: None,
            follow_qualifier: true,
            list_calls: false,
            pending_write: false,
            payload_bucket: None,
            payload_max: crate::store::payloads::DEFAULT_PAYLOAD_MAX,
        }
    }
}

impl Config {
    /// The function a task named to `named` goes to: its group's function
    /// (`functions`), the function it names, or the configured default.
    ///
    /// ```
    /// use task_runtime::Config;
    ///
    /// let vars = [("TASK_FUNCTION", "worker-dev:live"), ("TASK_FUNCTIONS", "heavy=worker-dev-heavy:live")];
    /// let config = Config::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())).unwrap();
    /// assert_eq!(config.function_for(Some("heavy")), Some("worker-dev-heavy:live"));
    /// assert_eq!(config.function_for(Some("reports")), Some("reports")); // not a group: the function's own name
    /// assert_eq!(config.function_for(None), Some("worker-dev:live"));
    /// ```
    pub fn function_for<'a>(&'a self, named: Option<&'a str>) -> Option<&'a str> {
        named.map(|f| self.functions.get(f).map_or(f, String::as_str)).or(self.function.as_deref())
    }

    /// The local backend with default settings.
    pub fn local() -> Self {
        Self::default()
    }

    /// The lambda backend, invoking `function`, with responses in `table` when given.
    ///
    /// ```no_run
    /// use task_runtime::Config;
    /// # fn main() -> Result<(), task_runtime::ConfigError> {
    /// Config::lambda("arn:aws:lambda:eu-west-1:123456789012:function:tasks-worker:live", Some("task-responses".into()))
    ///     .with_max_attempts(2) // the function's MaximumRetryAttempts is 1
    ///     .with_signing_key(std::env::var("PIE_SECRET").unwrap_or_default())
    ///     .install()?;
    /// # Ok(()) }
    /// ```
    pub fn lambda(function: impl Into<String>, table: Option<String>) -> Self {
        Self { backend: BackendKind::Lambda, function: Some(function.into()), response_table: table, ..Self::default() }
    }

    /// Read the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Read variables through `get` (for tests, or another source).
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use std::time::Duration;
    /// use task_runtime::Config;
    ///
    /// let vars = HashMap::from([("TASK_FUNCTION", "pies"), ("TASK_RESPONSE_TTL_SECS", "600")]);
    /// let config = Config::from_lookup(|k| vars.get(k).map(|v| v.to_string())).unwrap();
    /// assert_eq!(config.response_ttl, Duration::from_secs(600));
    /// assert_eq!(config.response_table, None); // capture off on the lambda backend
    /// ```
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let mut c = Self::default();
        c.function = var("TASK_FUNCTION").or_else(|| var("AWS_LAMBDA_FUNCTION_NAME"));
        c.backend = match var("TASK_BACKEND").as_deref().map(str::trim) {
            None if c.function.is_some() => BackendKind::Lambda,
            None => BackendKind::Local,
            Some(v) if v.eq_ignore_ascii_case("lambda") => BackendKind::Lambda,
            Some(v) if v.eq_ignore_ascii_case("local") => BackendKind::Local,
            Some(v) => return Err(invalid("TASK_BACKEND", v, "`lambda` or `local`")),
        };
        if c.backend == BackendKind::Lambda && c.function.is_none() {
            return Err(ConfigError::NoFunction);
        }
        if let Some(v) = var("TASK_FUNCTIONS") {
            c.functions = function_groups(&v)?;
        }
        c.response_table = var("TASK_RESPONSE_TABLE");
        if let Some(v) = var("TASK_RESPONSE_TTL_SECS") {
            c.response_ttl = Duration::from_secs(number(&v, "TASK_RESPONSE_TTL_SECS", 1, u64::MAX / 2000, "a number of seconds, at least 1")?);
        }
        if let Some(v) = var("TASK_MAX_ATTEMPTS") {
            c.max_attempts = number(&v, "TASK_MAX_ATTEMPTS", 1, 3, "1, 2 or 3 (Lambda retries an async event at most twice)")? as u32;
        }
        if let Some(v) = var("TASK_LOCAL_RETRY_DELAY_MS") {
            c.local_retry_delay = Duration::from_millis(number(&v, "TASK_LOCAL_RETRY_DELAY_MS", 0, 3_600_000, "milliseconds, 0 to 3600000")?);
        }
        if let Some(v) = var("TASK_TIMEOUT_MARGIN_MS") {
            c.timeout_margin = Duration::from_millis(number(&v, "TASK_TIMEOUT_MARGIN_MS", 0, 60_000, "milliseconds, 0 to 60000")?);
        }
        if let Some(v) = var("TASK_LEASE_MS") {
            c.lease = Duration::from_millis(number(&v, "TASK_LEASE_MS", 300, 900_000, "milliseconds, 300 to 900000")?);
        }
        if let Some(v) = var("TASK_EVENT_LIFE_SECS") {
            let most = crate::store::MAX_EVENT_LIFE_MS / 1000;
            c.event_life = Duration::from_secs(number(&v, "TASK_EVENT_LIFE_SECS", 1, most, "seconds, 1 to 22500 (Lambda's longest event age, 6 h, plus its longest timeout, 15 min)")?);
        }
        c.scheduler_role_arn = var("TASK_SCHEDULER_ROLE_ARN");
        if let Some(v) = var("TASK_FOLLOW_QUALIFIER") {
            c.follow_qualifier = flag(&v, "TASK_FOLLOW_QUALIFIER")?;
        }
        if let Some(v) = var("TASK_PENDING_WRITE") {
            c.pending_write = flag(&v, "TASK_PENDING_WRITE")?;
        }
        if let Some(v) = var("TASK_LIST_CALLS") {
            c.list_calls = flag(&v, "TASK_LIST_CALLS")?;
        }
        c.payload_bucket = var("TASK_PAYLOAD_BUCKET");
        if let Some(v) = var("TASK_PAYLOAD_MAX") {
            c.payload_max = number(&v, "TASK_PAYLOAD_MAX", 1024, 5 << 40, "a number of bytes, 1024 to 5 TiB (S3's largest object)")?;
        }
        c.signing_key = var("TASK_SIGNING_KEY").map(|k| Arc::from(k.into_bytes()));
        Ok(c)
    }

    /// Set the local retry delay.
    pub fn with_local_retry_delay(mut self, delay: Duration) -> Self {
        self.local_retry_delay = delay;
        self
    }

    /// Set the attempts Lambda allows (clamped to 1-3).
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.clamp(1, 3);
        self
    }

    /// Set the signing key.
    pub fn with_signing_key(mut self, key: impl AsRef<[u8]>) -> Self {
        self.signing_key = Some(Arc::from(key.as_ref()));
        self
    }

    /// Whether the caller writes a call's `pending` item ([`Config::pending_write`]).
    ///
    /// ```
    /// let config = task_runtime::Config::local().with_pending_write(true);
    /// assert!(config.pending_write);
    /// ```
    pub fn with_pending_write(mut self, write: bool) -> Self {
        self.pending_write = write;
        self
    }

    /// Keep values too large for a message or an item in `bucket` (see
    /// [`crate::store::payloads`]).
    pub fn with_payload_bucket(mut self, bucket: impl Into<String>) -> Self {
        self.payload_bucket = Some(bucket.into());
        self
    }

    /// Set the response table.
    pub fn with_response_table(mut self, table: impl Into<String>) -> Self {
        self.response_table = Some(table.into());
        self
    }

    /// Build the AWS clients from this SDK configuration (endpoint,
    /// region, credentials) instead of the environment.
    pub fn with_aws_config(mut self, sdk: aws_config::SdkConfig) -> Self {
        self.aws = Some(sdk);
        self
    }

    /// Use `store` for responses (on either backend).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use task_runtime::{store::memory::MemoryStore, Config};
    ///
    /// let config = Config::local().with_store(Arc::new(MemoryStore::default()));
    /// assert!(config.store.is_some());
    /// ```
    pub fn with_store(mut self, store: Arc<dyn crate::store::ResponseStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Schedule delayed tasks with `scheduler` on the lambda backend (a
    /// client with its own endpoint, e.g. task-local's).
    pub fn with_scheduler(mut self, scheduler: crate::backend::scheduler::Scheduler) -> Self {
        self.scheduler = Some(Arc::new(scheduler));
        self
    }

    /// Send with `invoker` on the lambda backend (a client with its own
    /// endpoint, retry or transport settings).
    pub fn with_invoker(mut self, invoker: crate::backend::lambda::LambdaInvoker) -> Self {
        self.invoker = Some(Arc::new(invoker));
        self
    }
}

/// A yes/no variable: `true`/`1`/`yes` or `false`/`0`/`no`.
fn flag(v: &str, name: &'static str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(invalid(name, v, "`true` or `false`")),
    }
}

fn invalid(var: &'static str, value: &str, expected: &'static str) -> ConfigError {
    ConfigError::Invalid { var, value: value.to_owned(), expected }
}

fn number(v: &str, var: &'static str, min: u64, max: u64, expected: &'static str) -> Result<u64, ConfigError> {
    match v.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(invalid(var, v, expected)),
    }
}

/// `heavy=worker-dev-heavy:live,io=worker-dev-io:live`: each group once, each with a function.
fn function_groups(v: &str) -> Result<std::collections::BTreeMap<String, String>, ConfigError> {
    const EXPECTED: &str = "GROUP=FUNCTION pairs, comma-separated, each group once (`heavy=worker-dev-heavy:live`)";
    let mut groups = std::collections::BTreeMap::new();
    for pair in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match pair.split_once('=').map(|(g, f)| (g.trim(), f.trim())) {
            Some((group, function)) if !group.is_empty() && !function.is_empty() && groups.insert(group.to_owned(), function.to_owned()).is_none() => {}
            _ => return Err(invalid("TASK_FUNCTIONS", v, EXPECTED)),
        }
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn function_groups_are_pairs_each_group_once() {
        let c = cfg(&[("TASK_FUNCTIONS", "heavy=w-dev-heavy:live, io = w-dev-io:live"), ("TASK_FUNCTION", "w-dev:live")]).ok();
        let groups = c.map(|c| c.functions).unwrap_or_default();
        assert_eq!(groups.get("heavy").map(String::as_str), Some("w-dev-heavy:live"));
        assert_eq!(groups.get("io").map(String::as_str), Some("w-dev-io:live"));
        for bad in ["heavy", "heavy=", "=f", "heavy=a,heavy=b"] {
            let e = cfg(&[("TASK_FUNCTIONS", bad), ("TASK_FUNCTION", "w")]).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains("TASK_FUNCTIONS") && e.contains("GROUP=FUNCTION"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn defaults_are_local_without_a_function() {
        let c = cfg(&[]).ok();
        assert_eq!(c.as_ref().map(|c| c.backend), Some(BackendKind::Local));
        assert_eq!(c.as_ref().map(|c| c.max_attempts), Some(3));
        assert_eq!(c.map(|c| c.local_retry_delay), Some(Duration::from_millis(200)));
    }

    #[test]
    fn inside_lambda_invokes_itself() {
        let c = cfg(&[("AWS_LAMBDA_FUNCTION_NAME", "my-fn")]).ok();
        assert_eq!(c.as_ref().map(|c| c.backend), Some(BackendKind::Lambda));
        assert_eq!(c.and_then(|c| c.function), Some("my-fn".to_owned()));
        let c = cfg(&[("AWS_LAMBDA_FUNCTION_NAME", "me"), ("TASK_FUNCTION", "other")]).ok();
        assert_eq!(c.and_then(|c| c.function), Some("other".to_owned()));
    }

    #[test]
    fn bad_values_name_the_variable_and_the_value() {
        let e = cfg(&[("TASK_MAX_ATTEMPTS", "5")]).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("TASK_MAX_ATTEMPTS=\"5\""), "{e}");
        let e = cfg(&[("TASK_BACKEND", "kafka")]).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("TASK_BACKEND=\"kafka\"") && e.contains("`lambda` or `local`"), "{e}");
        assert_eq!(cfg(&[("TASK_BACKEND", "lambda")]).err(), Some(ConfigError::NoFunction));
        let e = cfg(&[("TASK_LOCAL_RETRY_DELAY_MS", "-1")]).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("TASK_LOCAL_RETRY_DELAY_MS"), "{e}");
    }

    #[test]
    fn the_signing_key_is_redacted_in_debug() {
        let c = cfg(&[("TASK_SIGNING_KEY", "s3cret")]).ok();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("s3cret") && dbg.contains("redacted"), "{dbg}");
    }
}
