//! The process's runtime: the one place that builds things from a
//! [`Config`]: the response store, the backend and the worker's settings,
//! once (from the environment, or from [`Config::install`]), shared by
//! everything that needs them. AWS clients inside are themselves built
//! lazily, on first use.

use std::sync::{Arc, OnceLock};

use crate::backend::Backend;
use crate::backend::lambda::LambdaInvoker;
use crate::backend::scheduler::Scheduler;
use crate::backend::local::LocalBackend;
use crate::config::{BackendKind, Config};
use crate::envelope::Envelope;
use crate::follow_up::Forwarder;
use crate::error::{ConfigError, Error};
use crate::registry::Registry;
use crate::store::ResponseStore;
use crate::store::dynamodb::DynamoStore;
use crate::store::memory::MemoryStore;
use crate::store::payloads::Payloads;
use crate::worker::{Worker, WorkerSettings};

#[derive(Debug)]
pub(crate) struct Runtime {
    pub(crate) config: Config,
    store: Option<Arc<dyn ResponseStore>>,
    pub(crate) backend: Backend,
    /// Values too large for a message or an item, in S3.
    pub(crate) payloads: Arc<Payloads>,
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

impl Runtime {
    fn new(config: Config) -> Self {
        let payloads = Arc::new(Payloads::new(config.payload_bucket.clone(), config.payload_max, config.aws.clone()));
        let (store, backend): (Option<Arc<dyn ResponseStore>>, Backend) = match config.backend {
            BackendKind::Local => {
                let store = config.store.clone().unwrap_or_else(|| Arc::new(MemoryStore::default()));
                let local = LocalBackend::new(store.clone(), worker_settings(&config), config.local_retry_delay, Arc::new(BackendForwarder), payloads.clone());
                (Some(store), Backend::Local(Box::new(local)))
            }
            BackendKind::Lambda => {
                let store = config.store.clone().or_else(|| {
                    let table = config.response_table.clone()?;
                    Some(Arc::new(match &config.aws {
                        Some(sdk) => DynamoStore::from_sdk_config(sdk.clone(), table),
                        None => DynamoStore::lazy(table),
                    }
                    .listing_calls(config.list_calls)) as Arc<dyn ResponseStore>)
                });
                let invoker = config.invoker.clone().unwrap_or_else(|| {
                    Arc::new(match &config.aws {
                        Some(sdk) => LambdaInvoker::from_sdk_config(sdk.clone()),
                        None => LambdaInvoker::lazy(),
                    })
                });
                let scheduler = config.scheduler.clone().unwrap_or_else(|| {
                    Arc::new(match &config.aws {
                        Some(sdk) => Scheduler::from_sdk_config(sdk.clone()),
                        None => Scheduler::lazy(),
                    })
                });
                let scheduler_role_arn = config.scheduler_role_arn.clone();
                (store, Backend::Lambda { invoker, scheduler, scheduler_role_arn })
            }
        };
        Self { config, store, backend, payloads }
    }

    /// The response store, when responses are captured.
    pub(crate) fn store(&self) -> Option<Arc<dyn ResponseStore>> {
        self.store.clone()
    }
}

/// Sends what a worker sends itself (a group's callback) through the
/// process's backend, to the configured function unless told another.
#[derive(Debug)]
struct BackendForwarder;

#[async_trait::async_trait]
impl Forwarder for BackendForwarder {
    async fn forward(&self, message: &Envelope, payload: Vec<u8>, function: Option<&str>, run_at_ms: Option<u64>) -> Result<(), String> {
        let rt = runtime().map_err(|e| e.to_string())?;
        let function = rt.config.function_for(function);
        rt.backend.send(message, function, payload, run_at_ms).await.map_err(|e| e.to_string())
    }
}

/// What a caller uses to send a callback (a cancel that ends a group's last child).
pub(crate) fn forwarder() -> Arc<dyn Forwarder> {
    Arc::new(BackendForwarder)
}

/// The runtime, built from the environment on first use.
pub(crate) fn runtime() -> Result<&'static Runtime, ConfigError> {
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let config = Config::from_env()?;
    Ok(RUNTIME.get_or_init(|| Runtime::new(config)))
}

/// The worker's settings from the configuration.
fn worker_settings(c: &Config) -> WorkerSettings {
    WorkerSettings {
        max_attempts: c.max_attempts,
        response_ttl: c.response_ttl,
        timeout_margin: c.timeout_margin,
        lease: c.lease,
        signing_key: c.signing_key.clone(),
    }
}

impl Config {
    /// Make this the process's configuration, in place of the environment.
    /// Call it before the first dispatch or poll; afterwards it is
    /// [`ConfigError::AlreadyInstalled`].
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use task_runtime::Config;
    ///
    /// # fn main() -> Result<(), task_runtime::ConfigError> {
    /// Config::local().with_local_retry_delay(Duration::ZERO).install()?;
    /// assert!(Config::local().install().is_err()); // only once
    /// # Ok(()) }
    /// ```
    pub fn install(self) -> Result<(), ConfigError> {
        RUNTIME.set(Runtime::new(self)).map_err(|_| ConfigError::AlreadyInstalled)
    }

}

impl Worker {
    /// The worker of this process: every `#[task]` linked in, the configured
    /// store and settings. Fails when two tasks share a name, or two
    /// `#[on_event]` handlers take one kind of event.
    pub fn from_runtime() -> Result<Self, Error> {
        let rt = runtime()?;
        let registry = Registry::global()?;
        crate::handlers::check()?;
        Ok(Self::new(registry, rt.store(), worker_settings(&rt.config)).with_forwarder(Arc::new(BackendForwarder)).with_payloads(rt.payloads.clone()))
    }
}

/// Wait until all work queued on the local backend has finished (its last
/// attempt included). Returns at once on the lambda backend.
///
/// Short programs call this before they exit, so that queued tasks run.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// task_runtime::wait_for_local_tasks().await;
/// # }
/// ```
pub async fn wait_for_local_tasks() {
    if let Ok(Runtime { backend: Backend::Local(local), .. }) = runtime() {
        local.idle().await;
    }
}
