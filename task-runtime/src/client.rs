//! The process's runtime: configuration, backend and store, built once
//! (from the environment, or from [`crate::Config::install`]) and shared.
//! AWS clients inside are themselves built lazily, on first use.

use std::sync::{Arc, OnceLock};

use crate::backend::Backend;
use crate::backend::lambda::LambdaInvoker;
use crate::backend::local::LocalBackend;
use crate::config::{BackendKind, Config};
use crate::error::ConfigError;
use crate::store::ResponseStore;
use crate::store::dynamodb::DynamoStore;
use crate::store::memory::MemoryStore;

#[derive(Debug)]
pub(crate) struct Runtime {
    pub(crate) config: Config,
    store: Option<Arc<dyn ResponseStore>>,
    pub(crate) backend: Backend,
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

impl Runtime {
    fn new(config: Config) -> Self {
        let (store, backend): (Option<Arc<dyn ResponseStore>>, Backend) = match config.backend {
            BackendKind::Local => {
                let store = config.store.clone().unwrap_or_else(|| Arc::new(MemoryStore::default()));
                let local = LocalBackend::new(store.clone(), config.worker_settings(), config.local_retry_delay);
                (Some(store), Backend::Local(Box::new(local)))
            }
            BackendKind::Lambda => {
                let store = config.store.clone().or_else(|| {
                    let table = config.response_table.clone()?;
                    Some(Arc::new(match &config.aws {
                        Some(sdk) => DynamoStore::from_sdk_config(sdk.clone(), table),
                        None => DynamoStore::lazy(table),
                    }) as Arc<dyn ResponseStore>)
                });
                let invoker = config.invoker.clone().unwrap_or_else(|| {
                    Arc::new(match &config.aws {
                        Some(sdk) => LambdaInvoker::from_sdk_config(sdk.clone()),
                        None => LambdaInvoker::lazy(),
                    })
                });
                (store, Backend::Lambda(invoker))
            }
        };
        Self { config, store, backend }
    }

    /// The response store, when responses are captured.
    pub(crate) fn store(&self) -> Option<Arc<dyn ResponseStore>> {
        self.store.clone()
    }
}

/// The runtime, built from the environment on first use.
pub(crate) fn runtime() -> Result<&'static Runtime, ConfigError> {
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let config = Config::from_env()?;
    Ok(RUNTIME.get_or_init(|| Runtime::new(config)))
}

pub(crate) fn install(config: Config) -> Result<(), ConfigError> {
    RUNTIME.set(Runtime::new(config)).map_err(|_| ConfigError::AlreadyInstalled)
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
