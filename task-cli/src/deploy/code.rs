//! The code: the worker built for Lambda (cargo-lambda) or given ready
//! (`--binary`), its manifest, and the zip that holds it as `bootstrap`.
//! The zip is the same bytes for the same binary (fixed times and modes),
//! so that its SHA-256 names it.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::settings::{Binary, Stage};
use crate::Problem;

/// The worker for Lambda: `given`, or cargo-lambda's build of the stage's binary.
pub(crate) fn bootstrap(stage: &Stage, given: Option<&Path>) -> Result<PathBuf, Problem> {
    if let Some(path) = given {
        if !path.is_file() {
            return Err(Problem(format!("--binary {}: no such file (a `bootstrap` built for Lambda)", path.display())));
        }
        return Ok(path.to_owned());
    }
    let has_cargo_lambda = std::process::Command::new("cargo").args(["lambda", "--version"]).output().is_ok_and(|o| o.status.success());
    if !has_cargo_lambda {
        return Err(Problem(
            "cargo-lambda is not installed, and it builds the worker for Lambda: install it with `pip install cargo-lambda` (zig comes with it) or `cargo install cargo-lambda`, or pass a ready `bootstrap` with --binary PATH".to_owned(),
        ));
    }
    let arch = if stage.architecture == "arm64" { "--arm64" } else { "--x86-64" };
    let mut cmd = std::process::Command::new("cargo");
    cmd.args(["lambda", "build", "--release", arch]).args(stage.binary.cargo_args(stage.package.as_deref()));
    eprintln!("building: cargo lambda build --release {arch} {}", stage.binary.cargo_args(stage.package.as_deref()).join(" "));
    let status = cmd.status().map_err(|e| Problem(format!("cannot run cargo lambda: {e}")))?;
    if !status.success() {
        return Err(Problem(format!("cargo lambda build failed ({status}): nothing was deployed")));
    }
    let built = target_dir()?.join("lambda").join(stage.binary.name()).join("bootstrap");
    if !built.is_file() {
        return Err(Problem(format!("cargo lambda build left no {}", built.display())));
    }
    Ok(built)
}

/// The worker's manifest: from `worker` when given, else from the
/// bootstrap when it runs here, else from a build of the stage's binary for this machine.
pub(crate) fn manifest(stage: &Stage, bootstrap: &Path, worker: Option<&Path>) -> Result<Value, Problem> {
    if let Some(w) = worker {
        return crate::template::read_manifest(w);
    }
    if let Ok(m) = crate::template::read_manifest(bootstrap) {
        return Ok(m);
    }
    // An arm64 bootstrap does not run on an x86-64 machine: build it for this one.
    let status = std::process::Command::new("cargo")
        .arg("build")
        .args(stage.binary.cargo_args(stage.package.as_deref()))
        .status()
        .map_err(|e| Problem(format!("cannot run cargo build: {e}")))?;
    if !status.success() {
        return Err(Problem(format!("cargo build of {} for its manifest failed ({status}); pass --worker PATH (any build of it)", stage.binary.name())));
    }
    let dir = target_dir()?.join("debug");
    let host = match &stage.binary {
        Binary::Bin(n) => dir.join(n),
        Binary::Example(n) => dir.join("examples").join(n),
    };
    crate::template::read_manifest(&host)
}

/// Cargo's target directory for the workspace here.
fn target_dir() -> Result<PathBuf, Problem> {
    let m = super::init::metadata(Path::new("."))?;
    Ok(PathBuf::from(m["target_directory"].as_str().unwrap_or("target")))
}

/// The zip Lambda takes: `binary` as `bootstrap`, executable, at a fixed time.
/// <https://docs.aws.amazon.com/lambda/latest/dg/rust-package.html>
pub(crate) fn zip(binary: &Path) -> Result<Vec<u8>, Problem> {
    let bytes = std::fs::read(binary).map_err(|e| Problem(format!("cannot read {}: {e}", binary.display())))?;
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o755);
    let fail = |e: &dyn std::fmt::Display| Problem(format!("cannot zip {}: {e}", binary.display()));
    out.start_file("bootstrap", options).map_err(|e| fail(&e))?;
    out.write_all(&bytes).map_err(|e| fail(&e))?;
    Ok(out.finish().map_err(|e| fail(&e))?.into_inner())
}

/// The zip's SHA-256, in hex: its key in the bucket (`FUNCTION/HASH.zip`).
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_binary_zips_to_the_same_bytes_holding_an_executable_bootstrap() {
        let dir = std::env::temp_dir().join(format!("tasks-zip-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let bin = dir.join("worker");
        std::fs::write(&bin, b"\x7fELF not really").expect("write");
        let (a, b) = (zip(&bin).expect("zip"), zip(&bin).expect("zip"));
        assert_eq!(sha256_hex(&a), sha256_hex(&b), "the zip is the same bytes each time");
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(a)).expect("a zip");
        let file = archive.by_name("bootstrap").expect("bootstrap in it");
        assert_eq!(file.unix_mode().map(|m| m & 0o777), Some(0o755));
        drop(file);
        std::fs::write(&bin, b"\x7fELF changed").expect("write");
        assert_ne!(sha256_hex(&zip(&bin).expect("zip")), sha256_hex(&b));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
