//! A cargo workspace of its own in a temporary directory, for the `tasks`
//! commands that read one (`init`, `package`, `deploy` and the rest), and
//! `tasks` run in it.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::task_local;

/// A workspace whose one example (`worker`) links task-runtime (by path:
/// `cargo metadata --no-deps` resolves nothing). `name` makes it unique.
pub fn workspace(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tasks-{name}-{}-{}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)));
    std::fs::create_dir_all(dir.join("examples")).expect("temp workspace");
    let runtime = Path::new(env!("CARGO_MANIFEST_DIR")).join("../task-runtime");
    std::fs::write(
        dir.join("Cargo.toml"),
        format!("[package]\nname = \"pies\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[dependencies]\ntask-runtime = {{ path = {:?} }}\n\n[workspace]\n", runtime.display().to_string()),
    )
    .expect("Cargo.toml");
    std::fs::create_dir_all(dir.join("src")).expect("src");
    std::fs::write(dir.join("src/lib.rs"), "").expect("lib.rs");
    std::fs::write(dir.join("examples/worker.rs"), "fn main() {}\n").expect("worker.rs");
    dir
}

/// `tasks ARGS` in `dir`, with `env` set (a variable set to "" is removed):
/// its exit code, stdout and stderr.
pub fn tasks(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(task_local::built("tasks"));
    for (k, v) in env {
        if v.is_empty() {
            cmd.env_remove(k);
        } else {
            cmd.env(k, v);
        }
    }
    let out = cmd.args(args).current_dir(dir).output().expect("run tasks");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}
