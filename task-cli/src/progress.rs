//! Live progress on standard error: a spinner or a bar on a terminal, a
//! plain line per change otherwise (logs, CI).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    last: String,
}

impl Progress {
    /// A spinner, for one call.
    pub(crate) fn spinner() -> Self {
        Self::new(None)
    }

    /// A bar over `n` calls.
    pub(crate) fn bar(n: u64) -> Self {
        Self::new(Some(n))
    }

    fn new(len: Option<u64>) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let (bar, template) = match len {
                Some(n) => (ProgressBar::new(n), "{bar:30} {pos}/{len} {msg} [{elapsed}]"),
                None => (ProgressBar::new_spinner(), "{spinner} {msg} [{elapsed}]"),
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Self { bar, last: String::new() }
    }

    /// Show `message` (and `done` calls ended, for a bar).
    pub(crate) fn update(&mut self, done: u64, message: String) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(done);
                bar.set_message(message.clone());
            }
            None if message != self.last => eprintln!("{message}"),
            None => {}
        }
        self.last = message;
    }

    /// Take the progress line away.
    pub(crate) fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
