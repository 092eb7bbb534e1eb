//! What the worker writes to the log for one call, at the default level
//! (INFO) and at DEBUG: a call that completes writes nothing at INFO (a
//! line for every call cost a warm invoke 7 to 10%; see the README's cost
//! of one call), and a call that fails does. The local backend runs the
//! worker on this test's own single-threaded runtime, so a subscriber set
//! for this thread sees every line.

use std::io::Write;
use std::sync::{Arc, Mutex, Once};

use lambda_runtime::tracing::subscriber::fmt::MakeWriter;
use lambda_runtime::tracing::subscriber::util::SubscriberInitExt;
use lambda_runtime::tracing::{self, Level};
use task_runtime::{Config, TaskError, TaskResult, task};

#[task(name = "logs.ok")]
async fn ok() -> u32 {
    1
}

#[task(name = "logs.fail")]
async fn fail() -> TaskResult<u32> {
    Err(TaskError::fail("no flour"))
}

/// The lines written, shared with the subscriber.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Lines {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Lines {
    type Writer = Lines;
    fn make_writer(&'a self) -> Lines {
        self.clone()
    }
}

fn setup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| Config::local().install().expect("install once"));
}

/// The lines one completed call and one failed call write at `level`.
async fn lines_at(level: Level) -> (String, String) {
    let lines = Lines::default();
    let subscriber = tracing::subscriber::fmt().with_max_level(level).with_ansi(false).with_writer(lines.clone()).finish();
    let _guard = subscriber.set_default();
    let done = ok().await.expect("dispatch");
    assert_eq!(done.wait().await.expect("completes"), 1);
    let failed = fail().await.expect("dispatch");
    assert!(failed.wait().await.is_err());
    let text = lines.text();
    let of = |id: &str| text.lines().filter(|l| l.contains(id)).collect::<Vec<_>>().join("\n");
    (of(done.id()), of(failed.id()))
}

#[tokio::test]
async fn a_call_that_completes_writes_no_line_at_info_and_one_at_debug() {
    setup();
    let (done, failed) = lines_at(Level::INFO).await;
    assert!(done.is_empty(), "a completed call writes nothing at INFO: {done}");
    assert!(failed.contains("task failed: no flour"), "a failed call is logged at INFO: {failed}");
    let (done, _) = lines_at(Level::DEBUG).await;
    assert!(done.contains("task complete"), "at DEBUG a completed call says so: {done}");
}
