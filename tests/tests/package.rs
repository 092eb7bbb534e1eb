//! `tasks init` and `tasks package` in a workspace of their own: init
//! writes a Tasks.toml that names the workspace's worker and refuses to
//! overwrite it; package writes the zip (holding `bootstrap`) and the
//! stage's plain CloudFormation template beside it; a bad stage or file is
//! exit 2 with the fact at fault.

mod common;

use common::task_local;
use common::workspace::workspace;

fn tasks(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    common::workspace::tasks(dir, args, &[])
}

#[test]
fn init_writes_a_dev_stage_and_package_writes_the_zip_and_its_template() {
    let dir = workspace("package");
    let (code, out, err) = tasks(&dir, &["init"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("next: tasks deploy dev"), "{out}");
    let settings = std::fs::read_to_string(dir.join("Tasks.toml")).expect("Tasks.toml written");
    assert!(settings.contains("example = \"worker\"") && settings.contains("package = \"pies\""), "{settings}");
    // A second init leaves the file as it is.
    let (code, _, err) = tasks(&dir, &["init"]);
    assert_eq!(code, 2);
    assert!(err.contains("exists already"), "{err}");
    assert_eq!(std::fs::read_to_string(dir.join("Tasks.toml")).expect("still there"), settings);

    // The stage's package, from a worker built here (it runs here, so it gives its manifest).
    let worker = task_local::built("examples/worker");
    let zip = dir.join("out/code.zip");
    std::fs::create_dir_all(dir.join("out")).expect("out");
    let (code, out, err) = tasks(&dir, &["package", "dev", "-o", zip.to_str().expect("UTF-8"), "--binary", worker.to_str().expect("UTF-8")]);
    assert_eq!(code, 0, "{out}{err}");
    let bytes = std::fs::read(&zip).expect("the zip");
    assert_eq!(&bytes[..2], b"PK", "a zip");
    let template = std::fs::read_to_string(dir.join("out/code.template.yaml")).expect("the template beside it");
    for expected in ["FunctionName: !Sub \"worker-dev\"", "TableName: \"worker-dev-responses\"", "ScheduleWorkerHourlyReport:", "Name: live"] {
        assert!(template.contains(expected), "the template lacks {expected:?}");
    }
    assert!(!template.contains("Transform:"));
    assert!(out.contains("aws cloudformation deploy --stack-name worker-dev"), "{out}");

    // An unknown stage lists the known ones; a bad key names its line.
    let (code, _, err) = tasks(&dir, &["package", "prod", "--binary", worker.to_str().expect("UTF-8")]);
    assert_eq!(code, 2);
    assert!(err.contains("no stage `prod`") && err.contains("dev"), "{err}");
    std::fs::write(dir.join("Tasks.toml"), settings.replacen("memory = 128", "memroy = 128", 1)).expect("write");
    let (code, _, err) = tasks(&dir, &["package", "dev", "--binary", worker.to_str().expect("UTF-8")]);
    assert_eq!(code, 2);
    let line = settings.lines().position(|l| l.starts_with("memory = 128")).map(|i| i + 1).expect("a memory line");
    assert!(err.contains(&format!("Tasks.toml:{line}:")) && err.contains("memroy"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
