//! `tasks dashboard`, end to end: the real `tasks` binary serving the page
//! and its JSON API over task-local (running the tests' fault worker) and
//! DynamoDB Local, with calls sent as a user would (`tasks send`), read
//! through the API and in headless Chromium (Debian's chromium and
//! chromium-driver, which `scripts/test` installs).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::browser::Browser;
use common::web as http;
use common::task_local::{self, TaskLocal};
use serde_json::Value;
use task_runtime::store::dynamodb::DynamoStore;

struct Setup {
    tl: TaskLocal,
    table: String,
    /// The runtime this process sends groups on (its SDK clients' pools live on it).
    rt: tokio::runtime::Runtime,
    /// Files the fault worker's `fault.until` waits for live here.
    dir: std::path::PathBuf,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let table = common::table_name("dashboard");
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(DynamoStore::with_client(common::dynamodb(), table.clone()).create_table()).expect("table");
        let mut args = task_local::fault_function(&table);
        // The worker example, whose calls the browser test follows; the calls the workers send are listed too.
        args.extend(["--function".to_owned(), format!("worker={}", task_local::built("examples/worker").display())]);
        args.extend(["--env".to_owned(), "TASK_LIST_CALLS=true".to_owned()]);
        let tl = TaskLocal::start(args);
        let dir = std::env::temp_dir().join(format!("dashboard-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        // This process sends groups (the CLI cannot), through the same task-local.
        task_local::install_caller(&tl.endpoint, DynamoStore::with_client(common::dynamodb(), table.clone()).listing_calls(true));
        Setup { tl, table, rt, dir }
    })
}

/// The environment a user sets for task-local, on `cmd`.
fn user_env(cmd: &mut Command) -> &mut Command {
    let s = setup();
    task_local::user_env(cmd, &s.tl.endpoint, &s.table)
        .env("TASK_LIST_CALLS", "true")
        .env("TASK_SCHEDULER_ROLE_ARN", "arn:aws:iam::000000000000:role/scheduler")
        .env("AWS_ENDPOINT_URL_SCHEDULER", &s.tl.endpoint)
}

/// `tasks send NAME ARGS` to the fault worker: the new call's id.
fn send(name: &str, args: &str) -> String {
    send_to("fault", name, args)
}

/// `tasks send NAME ARGS` to `function`: the new call's id.
fn send_to(function: &str, name: &str, args: &str) -> String {
    let out = user_env(&mut Command::new(task_local::built("tasks"))).env("TASK_FUNCTION", function).args(["send", name, args]).output().expect("tasks send");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A running `tasks dashboard`, stopped when dropped.
struct Dashboard {
    child: Child,
    url: String,
    /// Its output, kept open while it runs (and read no further).
    _output: BufReader<std::process::ChildStdout>,
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `tasks dashboard --port 0 ARGS` and read its first line.
fn dashboard(args: &[&str], token: Option<&str>) -> Dashboard {
    dashboard_with(args, token, &[])
}

/// [`dashboard`], with `env` set over the user's environment.
fn dashboard_with(args: &[&str], token: Option<&str>, env: &[(&str, &str)]) -> Dashboard {
    let mut cmd = Command::new(task_local::built("tasks"));
    user_env(&mut cmd).envs(env.iter().copied()).args(["dashboard", "--port", "0"]).args(args).stdout(Stdio::piped()).stderr(Stdio::inherit()).stdin(Stdio::null());
    if let Some(t) = token {
        cmd.env("TASKS_DASHBOARD_TOKEN", t);
    }
    let mut child = cmd.spawn().expect("start tasks dashboard");
    let mut first = String::new();
    let mut output = BufReader::new(child.stdout.take().expect("stdout"));
    output.read_line(&mut first).expect("read the first line");
    let url = first.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("the first line names the address: {first:?}")).to_owned();
    Dashboard { child, url, _output: output }
}

/// A dashboard of the fault function, with the fault worker's manifest.
fn fault_dashboard() -> Dashboard {
    dashboard(&["--worker", task_local::built("fault-worker").to_str().expect("a path")], None)
}

/// GET `path` of dashboard `d`, as JSON, expecting 200.
fn api(d: &Dashboard, path: &str) -> Value {
    let a = http::get(&format!("{}{path}", d.url), &[]);
    assert_eq!(a.status, 200, "GET {path}: {}", a.body);
    a.json()
}

/// Read `path` until `ok` holds (at most 30 s).
fn api_until(d: &Dashboard, path: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let v = api(d, path);
        if ok(&v) {
            return v;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "GET {path} did not come to the expected state: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn listed(calls: &Value, id: &str) -> bool {
    calls["calls"].as_array().is_some_and(|c| c.iter().any(|c| c["id"] == id))
}

#[test]
fn the_api_lists_calls_shows_one_and_retries_a_failed_one() {
    let d = fault_dashboard();
    let marker = setup().dir.join("api-retry");
    let failed = send("fault.until", &serde_json::json!({"path": marker}).to_string());
    let ok = send("fault.ok", r#"{"n": 7}"#);
    // Recent calls, newest first, and the failed ones from their own index.
    let all = api_until(&d, "/api/calls", |v| listed(v, &failed) && listed(v, &ok));
    assert_eq!(all["source"], "the index of recent calls");
    let failed_list = api_until(&d, "/api/calls?status=failed&since=1h", |v| listed(v, &failed));
    assert!(!listed(&failed_list, &ok), "{failed_list}");
    let filtered = api_until(&d, "/api/calls?task=fault.ok", |v| listed(v, &ok));
    assert!(filtered["calls"].as_array().is_some_and(|c| c.iter().all(|c| c["task"] == "fault.ok")), "{filtered}");
    // One call: its failure, its kept arguments, its log lines, what may be done.
    let one = api_until(&d, &format!("/api/calls/{failed}"), |v| v["logs"].as_array().is_some_and(|l| !l.is_empty()));
    assert_eq!((one["call"]["status"].as_str(), one["call"]["error"]["kind"].as_str()), (Some("failed"), Some("failed")), "{one}");
    assert!(one["call"]["error"]["message"].as_str().is_some_and(|m| m.contains("is not there yet")), "{one}");
    assert_eq!(one["args"]["path"], marker.to_str().expect("a path"));
    assert_eq!((one["actions"]["retry"].as_bool(), one["actions"]["cancel"].as_bool()), (Some(true), Some(false)));
    assert!(one["logs"].as_array().is_some_and(|l| l.iter().any(|l| l["message"].as_str().is_some_and(|m| m.contains(&failed)))), "{one}");
    // Retry: refused for a call that did not fail, sent for one that did.
    let refused = http::post(&format!("{}/api/calls/{ok}/retry", d.url), &[], "");
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(refused.json()["error"].as_str().is_some_and(|e| e.contains("only a failed call is retried")), "{}", refused.body);
    std::fs::write(&marker, "here").expect("create the file the call waits for");
    let retried = http::post(&format!("{}/api/calls/{failed}/retry", d.url), &[], "");
    assert_eq!(retried.status, 200, "{}", retried.body);
    let new_id = retried.json()["id"].as_str().expect("the new call's id").to_owned();
    api_until(&d, &format!("/api/calls/{new_id}"), |v| v["call"]["status"] == "complete");
    // Unknown ids, bad filters.
    assert_eq!(http::get(&format!("{}/api/calls/no-such-call", d.url), &[]).status, 404);
    assert_eq!(http::get(&format!("{}/api/calls?status=sideways", d.url), &[]).status, 400);
    let routes = api(&d, "/api");
    assert!(routes.as_array().is_some_and(|r| r.len() >= 8), "{routes}");
}

#[test]
fn the_api_cancels_a_delayed_call_and_shows_the_overview() {
    let d = fault_dashboard();
    // A delay goes through EventBridge Scheduler (task-local's), which needs the function's ARN.
    let out = user_env(&mut Command::new(task_local::built("tasks")))
        .env("TASK_FUNCTION", "arn:aws:lambda:us-east-1:000000000000:function:fault")
        .args(["send", "fault.ok", r#"{"n": 1}"#, "--delay", "10m"])
        .output()
        .expect("send");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let delayed = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let one = api(&d, &format!("/api/calls/{delayed}"));
    assert_eq!((one["call"]["status"].as_str(), one["actions"]["cancel"].as_bool()), (Some("scheduled"), Some(true)), "{one}");
    let cancelled = http::post(&format!("{}/api/calls/{delayed}/cancel", d.url), &[], "");
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert_eq!(api(&d, &format!("/api/calls/{delayed}"))["call"]["status"], "cancelled");
    assert_eq!(http::post(&format!("{}/api/calls/{delayed}/cancel", d.url), &[], "").status, 409);

    let o = api(&d, "/api/overview");
    assert_eq!(o["function"]["name"], "fault", "{o}");
    assert!(o["function"]["task_settings"]["TASK_LIST_CALLS"] == "true", "{o}");
    assert!(o["check"]["findings"].is_array(), "{o}");
    assert!(o["calls_last_24h"]["by_status"]["cancelled"].as_u64().is_some_and(|n| n >= 1), "{o}");
}

#[test]
fn a_group_s_progress_and_the_schedules_with_their_latest_runs() {
    let s = setup();
    let d = fault_dashboard();
    let calls = vec![task_runtime::call("fault.ok", serde_json::json!({"n": 1})), task_runtime::call("fault.ok", serde_json::json!({"n": 2}))];
    let chord = s.rt.block_on(task_runtime::group(calls).then(task_runtime::call("fault.tally", serde_json::json!({}))).send()).expect("sent");
    let g = chord.group().id().to_owned();
    let progress = api_until(&d, &format!("/api/groups/{g}"), |v| v["ended"] == 2 && v["callback_status"] == "complete");
    assert_eq!((progress["total"].as_u64(), progress["complete"].as_u64()), (Some(2), Some(2)), "{progress}");
    // A child's page carries its group.
    let child = api(&d, &format!("/api/calls/{g}.1"));
    assert_eq!(child["group"]["id"], g.as_str(), "{child}");
    assert_eq!(http::get(&format!("{}/api/groups/no-such-group", d.url), &[]).status, 404);

    // The worker's declared schedule, its latest run (delivered as Scheduler
    // would), and when the next is due.
    let manifest: Value = serde_json::from_slice(&Command::new(task_local::built("fault-worker")).env("TASK_RUNTIME_MANIFEST", "1").output().expect("manifest").stdout).expect("JSON");
    let input = manifest["schedules"][0]["input"].as_str().expect("a schedule").replace("<aws.scheduler.scheduled-time>", "2026-11-30T13:00:00Z");
    let lambda = s.tl.client();
    s.rt.block_on(lambda.invoke().function_name("fault").payload(aws_sdk_lambda::primitives::Blob::new(input)).send()).expect("invoke");
    let schedules = api_until(&d, "/api/schedules", |v| v["declared"][0]["latest_run"]["status"] == "complete");
    let declared = &schedules["declared"][0];
    assert_eq!(declared["task"], manifest["schedules"][0]["task"], "{schedules}");
    // fault.tick's schedule is a cron expression: its next run is left to the
    // expression (a rate's is its latest run plus the rate: unit-tested in task-cli).
    assert_eq!(declared["expression"], "cron(* * * * ? *)", "{schedules}");
    assert!(declared["next_run_ms"].is_null(), "{schedules}");
}

#[test]
fn a_token_is_required_when_set_and_beyond_loopback() {
    // Bound beyond loopback without a token: it refuses to start, and says why.
    let out = user_env(&mut Command::new(task_local::built("tasks"))).args(["dashboard", "--port", "0", "--bind", "0.0.0.0"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("without a token") && err.contains("TASKS_DASHBOARD_TOKEN"), "{err}");
    // With one, every request needs it, from any address.
    let d = dashboard(&["--bind", "0.0.0.0"], Some("s3cret-token"));
    let url = d.url.replace("0.0.0.0", "127.0.0.1");
    for path in ["/", "/api", "/api/calls", "/api/overview"] {
        assert_eq!(http::get(&format!("{url}{path}"), &[]).status, 401, "{path} without a token");
        assert_eq!(http::get(&format!("{url}{path}"), &[("Authorization", "Bearer wrong")]).status, 401, "{path} with a wrong token");
    }
    assert_eq!(http::post(&format!("{url}/api/calls/x/retry"), &[], "").status, 401);
    assert_eq!(http::get(&format!("{url}/api"), &[("Authorization", "Bearer s3cret-token")]).status, 200);
    let page = http::get(&format!("{url}/?token=s3cret-token"), &[]);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<title>tasks dashboard</title>"));
    // The page never shows secrets: the function's signing key is "set", not its value.
    let overview = http::get(&format!("{url}/api/overview"), &[("Authorization", "Bearer s3cret-token")]);
    assert!(!overview.body.contains("s3cret-token"), "{}", overview.body);
}

#[test]
fn in_a_browser_a_failed_call_is_found_opened_and_retried_a_parent_shows_its_children_and_pages_update_by_themselves() {
    // The worker example's calls, followed on its own dashboard.
    let example = task_local::built("examples/worker");
    let d = dashboard(&["--function", "worker", "--worker", example.to_str().expect("a path")], None);
    let b = Browser::start();
    let file = setup().dir.join("browser-words.txt");
    let failed = send_to("worker", "worker::count_file", &serde_json::json!({"path": file}).to_string());
    api_until(&d, &format!("/api/calls/{failed}"), |v| v["call"]["status"] == "failed");

    // The failed call is on the failed calls page; its link opens it.
    b.open(&format!("{}/#/calls?status=failed", d.url));
    b.wait_text(&format!("tr[data-id=\"{failed}\"] td.id"), Duration::from_secs(20), |t| t == failed);
    b.click(&format!("tr[data-id=\"{failed}\"] td.id a"));
    b.wait_text("#call-error", Duration::from_secs(20), |t| t.contains("cannot read") && t.contains("browser-words.txt"));
    b.wait_text("#call-logs", Duration::from_secs(30), |t| t.contains(&failed));
    // Retry, once the file is there: the page moves to the new call, which completes with its count.
    std::fs::write(&file, "one two three").expect("create the file");
    b.click("#retry");
    b.wait_text("#call tr:nth-child(2) td", Duration::from_secs(30), |t| t == "complete");
    b.wait_text("#call-response", Duration::from_secs(10), |t| t == "3");
    let url: String = b.run("return location.hash;").as_str().unwrap_or_default().to_owned();
    assert_eq!(url, format!("#/call/retry%3A{failed}"), "the retry is a new call, the failed one's retry");

    // A parent with its children.
    let root = send_to("worker", "worker::count_all", r#"{"texts": ["one two", "three four five"]}"#);
    api_until(&d, &format!("/api/calls/{root}/tree"), |v| v["children"].as_array().is_some_and(|c| c.len() == 2 && c.iter().all(|c| c["status"] == "complete")));
    b.open(&format!("{}/#/call/{root}", d.url));
    let children = b.wait_text("#call-children", Duration::from_secs(20), |t| t.matches("worker::word_count").count() == 2);
    assert!(children.matches("complete").count() >= 2, "{children}");
    // A child's page names its parent.
    b.click("#call-children li a");
    b.wait_text("#call-parent", Duration::from_secs(20), |t| t == root);

    // A page that updates while its call runs, with no reload.
    let slow = send_to("worker", "worker::nap", r#"{"ms": 1800}"#);
    b.open(&format!("{}/#/call/{slow}", d.url));
    b.wait_text("#call tr:nth-child(2) td", Duration::from_secs(20), |t| t == "running" || t == "pending");
    b.run("window.__not_reloaded = true; return null;");
    b.wait_text("#call tr:nth-child(2) td", Duration::from_secs(30), |t| t == "complete");
    assert_eq!(b.run("return window.__not_reloaded === true;"), Value::Bool(true), "the page updated without a reload");

    // The screenshot the README shows: `DASHBOARD_SCREENSHOT=docs/dashboard.png`.
    if let Ok(path) = std::env::var("DASHBOARD_SCREENSHOT") {
        b.open(&format!("{}/#/call/{root}", d.url));
        b.wait_text("#call-children", Duration::from_secs(20), |t| t.contains("worker::word_count"));
        std::fs::write(&path, b.screenshot()).expect("write the screenshot");
    }
}

/// With the index of recent calls off (`TASK_LIST_CALLS` unset, the
/// default) and nothing in it, the overview and the Calls page say that
/// calls are not listed, how to list them and what it costs, instead of a
/// count of 0; and a call opens by its id from the box in the header. (A
/// table of its own: the shared one's workers list their calls.)
#[test]
fn in_a_browser_with_calls_not_listed_the_pages_say_so_and_a_call_opens_by_its_id() {
    let s = setup();
    let table = common::table_name("dashboard-unlisted");
    let store = DynamoStore::with_client(common::dynamodb(), table.clone());
    let id = format!("unlisted-{}", uuid::Uuid::new_v4());
    s.rt.block_on(async {
        store.create_table().await.expect("table");
        let now = common::now_ms();
        let item = task_runtime::store::PendingItem { id: id.clone(), task: "fault.ok".into(), now_ms: now, ttl: now / 1000 + 3600, run_at_ms: None, digest: None, parent: None };
        task_runtime::store::ResponseStore::put_pending(&store, item).await.expect("a call, not listed");
    });
    let d = dashboard_with(&[], None, &[("TASK_LIST_CALLS", "false"), ("TASK_RESPONSE_TABLE", &table)]);
    let o = api(&d, "/api/overview");
    assert!(o["calls_last_24h"]["by_status"].is_null(), "no count of an index that is off: {o}");
    assert_eq!(o["calls_last_24h"]["failed"], 0, "failed calls are still counted: {o}");

    let b = Browser::start();
    b.open(&format!("{}/#/", d.url));
    let said = b.wait_text("#listing-off", Duration::from_secs(20), |t| !t.is_empty());
    assert!(said.contains("TASK_LIST_CALLS=true") && said.contains("one index write per call"), "{said}");
    assert_eq!(b.run("return document.querySelector('#by-status') === null;"), Value::Bool(true), "no table of zeros");
    b.open(&format!("{}/#/calls", d.url));
    b.wait_text("#listing-off", Duration::from_secs(20), |t| t.contains("TASK_LIST_CALLS=true"));
    b.wait_text("#calls", Duration::from_secs(20), |t| t.contains("none listed"));
    // The box in the header opens a call that no list shows.
    b.run(&format!("document.querySelector('#open-id').value = '{id}'; document.querySelector('#open-call').requestSubmit(); return null;"));
    b.wait_text("#call tr:nth-child(2) td", Duration::from_secs(20), |t| t == "pending");
    let url: String = b.run("return location.hash;").as_str().unwrap_or_default().to_owned();
    assert_eq!(url, format!("#/call/{id}"));
}
