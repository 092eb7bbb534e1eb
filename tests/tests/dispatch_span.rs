//! The `dispatch` span covers one call's send and nothing else: while a
//! send waits for Lambda's answer, whatever else runs on the same thread
//! is outside it. (A span guard held across `.await` keeps the span
//! entered on the thread while the future is suspended, so another task's
//! events land in it; the runtime instruments the send instead.)

mod common;

use std::sync::{Arc, Mutex};

use common::FakeLambda;
use task_runtime::backend::lambda::LambdaInvoker;
use task_runtime::{Config, task};
use tracing_subscriber::layer::{Context, SubscriberExt};

#[task(capture_response = false)]
async fn noted(n: u32) -> u32 {
    n
}

/// For each event of the target `ticker`, the names of the spans it was
/// logged in.
#[derive(Clone, Default)]
struct Ticks(Arc<Mutex<Vec<Vec<String>>>>);

impl<S> tracing_subscriber::Layer<S> for Ticks
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        if event.metadata().target() == "ticker" {
            let scope = ctx.event_scope(event).map(|s| s.map(|span| span.name().to_owned()).collect()).unwrap_or_default();
            self.0.lock().expect("ticks").push(scope);
        }
    }
}

#[test]
fn another_task_s_events_are_never_inside_a_waiting_dispatch_span() {
    let ticks = Ticks::default();
    let subscriber = tracing_subscriber::registry().with(ticks.clone());
    let _default = tracing::subscriber::set_default(subscriber);
    // One thread: the ticker runs exactly while a send is suspended.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let fake = FakeLambda::start(Arc::new(|_| (202, vec![], String::new()))).await;
        Config::lambda("worker-fn", None).with_invoker(LambdaInvoker::with_client(fake.client())).install().expect("install");
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let ticker = tokio::spawn({
            let done = done.clone();
            async move {
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    tracing::info!(target: "ticker", "tick");
                    tokio::task::yield_now().await;
                }
            }
        });
        for n in 0..20 {
            noted(n).await.expect("dispatch");
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        ticker.await.expect("ticker");
        assert_eq!(fake.received().len(), 20);
    });
    let ticks = ticks.0.lock().expect("ticks");
    assert!(ticks.len() > 20, "the ticker ran while the sends waited: {} ticks", ticks.len());
    let inside: Vec<&Vec<String>> = ticks.iter().filter(|scope| !scope.is_empty()).collect();
    assert!(inside.is_empty(), "{} of {} ticks were logged inside a span of another task: {:?}", inside.len(), ticks.len(), inside.first());
}
