//! A call whose arguments or result go through S3 (`TASK_PAYLOAD_BUCKET`),
//! as a ratio to S3 by hand, measured side by side in one run against
//! moto's S3 server (started here on a free port, stopped at the end):
//!
//! - baseline: a raw `PutObject` then `GetObject` of the same bytes (what a
//!   caller that passes a key by hand pays, before any JSON);
//! - ours, arguments: a call sent with an argument of N bytes, whose task
//!   returns its length, sent and waited on through the local backend (the
//!   message over 256 KiB puts the arguments, the worker gets and checks them);
//! - ours, result: a call whose task returns N bytes (over 380 KiB: put by
//!   the worker, got and checked by the caller's `wait`).
//!
//! Below the thresholds nothing goes to S3: the 1 KB and 100 KB rows are a
//! whole call on the local backend, against S3's round trip. Each row is
//! the median of several rounds, the three kinds in turn. It also prints
//! what S3 charges for a million such calls (requests and two days of
//! storage at S3 Standard's prices), next to the raw round trip's.
//!
//! `cargo bench -p tests --bench payloads` (with `TASK_TEST_MOTO_PYTHONPATH`,
//! as `scripts/test` sets it, or moto in `.pydeps-moto`).

#[path = "../tests/common/moto.rs"]
#[allow(unreachable_pub)]
mod moto;

use std::time::{Duration, Instant};

use serde_json::json;
use task_runtime::{Config, SendOptions, send};

const BUCKET: &str = "bench-payloads";
/// S3 Standard, us-east-1: PUT $0.005 and GET $0.0004 per 1,000 requests,
/// storage $0.023 per GB-month (https://aws.amazon.com/s3/pricing/).
const PUT_PER_M: f64 = 5.0;
const GET_PER_M: f64 = 0.4;
const GB_MONTH: f64 = 0.023;
/// How long an object is kept: the template's lifecycle rule with the default TTL.
const DAYS_KEPT: f64 = 2.0;

#[task_runtime::task(name = "bench.payload.size")]
async fn size(blob: String) -> usize {
    blob.len()
}

#[task_runtime::task(name = "bench.payload.make")]
async fn make(bytes: usize) -> String {
    "r".repeat(bytes)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// What S3 charges for a million calls that each put and get `objects`
/// objects of `bytes`, kept `DAYS_KEPT` days.
fn per_million(objects: f64, bytes: f64) -> f64 {
    objects * (PUT_PER_M + GET_PER_M) + objects * 1e6 * bytes / 1e9 * GB_MONTH * DAYS_KEPT / 30.0
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let (sizes, rounds): (Vec<usize>, usize) = if benching {
        (vec![1_000, 100_000, 1_000_000, 10_000_000, 50_000_000], 5)
    } else {
        // `cargo test --all-targets` runs this too: one small round.
        (vec![1_000, 1_000_000], 1)
    };
    let moto = moto::Moto::start();
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(aws_sdk_s3::config::Credentials::new("bench", "bench", None, None, "bench")))
        .endpoint_url(&moto.endpoint)
        .build();
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        s3.create_bucket().bucket(BUCKET).send().await.expect("bucket");
        Config::local().with_payload_bucket(BUCKET).with_aws_config(sdk.clone()).install().expect("install");
        println!("payloads through S3 (moto's server on loopback), median of {rounds} round(s) each, the kinds in turn");
        println!("{:>10}  {:>12}  {:>12}  {:>7}  {:>12}  {:>7}  {:>10}  {:>10}", "bytes", "raw put+get", "argument", "ratio", "result", "ratio", "raw $/M", "ours $/M");
        for &n in &sizes {
            let blob = "a".repeat(n);
            let (mut raw, mut args, mut result) = (Vec::new(), Vec::new(), Vec::new());
            for round in 0..rounds {
                let start = Instant::now();
                let key = format!("raw/{n}/{round}");
                s3.put_object().bucket(BUCKET).key(&key).body(blob.clone().into_bytes().into()).send().await.expect("put");
                let got = s3.get_object().bucket(BUCKET).key(&key).send().await.expect("get");
                let bytes = got.body.collect().await.expect("body").into_bytes();
                assert_eq!(bytes.len(), n);
                raw.push(start.elapsed());

                let start = Instant::now();
                let h = send(size::NAME, json!({"blob": blob}), SendOptions::default()).await.expect("sent");
                let len: usize = serde_json::from_value(h.wait_timeout(Duration::from_secs(300)).await.expect("ran")).expect("a length");
                assert_eq!(len, n);
                args.push(start.elapsed());

                let start = Instant::now();
                let h = send(make::NAME, json!({"bytes": n}), SendOptions::default()).await.expect("sent");
                let back = h.wait_timeout(Duration::from_secs(300)).await.expect("ran");
                assert_eq!(back.as_str().map(str::len), Some(n));
                result.push(start.elapsed());
            }
            let (raw, args, result) = (median(raw), median(args), median(result));
            let ratio = |d: Duration| d.as_secs_f64() / raw.as_secs_f64();
            // Through S3: the arguments over 256 KiB, the result over 380 KiB (one object each way).
            let objects = if n > 256 * 1024 { 1.0 } else { 0.0 };
            println!(
                "{n:>10}  {:>10.2}ms  {:>10.2}ms  {:>6.2}x  {:>10.2}ms  {:>6.2}x  {:>10.2}  {:>10.2}",
                raw.as_secs_f64() * 1e3,
                args.as_secs_f64() * 1e3,
                ratio(args),
                result.as_secs_f64() * 1e3,
                ratio(result),
                per_million(1.0, n as f64),
                per_million(objects, n as f64),
            );
        }
    });
    drop(moto);
}
