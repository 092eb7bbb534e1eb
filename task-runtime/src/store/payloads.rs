//! Values too large for where they go, kept in S3 (`TASK_PAYLOAD_BUCKET`),
//! as the SQS extended client and Powertools do: a message's arguments
//! over [`OFFLOAD_ABOVE_BYTES`], a result over
//! [`MAX_RESPONSE_BYTES`], a failure's message
//! over [`MAX_FAILURE_MESSAGE_BYTES`]. What goes in their place is a
//! [`PayloadRef`]: the object, its size and its SHA-256, checked on every
//! read. Objects are written under `payloads/ID/…`, named by their hash, so
//! two deliveries of one call that write the same value write one object.
//! The template's lifecycle rule expires them with the response's TTL.
//!
//! Here: [`Payloads`] (the bucket, the limit, the client, built once),
//! `Payloads::seal` (a message's bytes, its arguments sent through S3
//! when too large), `Payloads::fetch_json` (the worker's read of them, and of a chain's value),
//! `Payloads::place` (a result or failure put there before it is
//! written) and [`Payloads::resolve`] (every reader's way back).

use aws_config::SdkConfig;

use crate::aws::LazyClient;
use crate::envelope::{Envelope, MAX_ASYNC_PAYLOAD_BYTES, OFFLOAD_ABOVE_BYTES, PayloadRef};
use crate::response::{AsyncResponse, Failure, FailureKind, MAX_FAILURE_MESSAGE_BYTES};

use super::{FinalState, MAX_RESPONSE_BYTES};

/// The largest object written or read through S3 by default (100 MiB);
/// `TASK_PAYLOAD_MAX` sets another.
pub const DEFAULT_PAYLOAD_MAX: u64 = 100 * 1024 * 1024;
/// The prefix of every object's key (the template's lifecycle rule's filter).
pub const PAYLOAD_PREFIX: &str = "payloads/";
/// The longest id kept in a key as it is (S3 keys are at most 1024 bytes);
/// a longer one is named by its hash.
const MAX_ID_IN_KEY: usize = 512;

pub use crate::error::PayloadError;

/// Why a message could not be sealed.
#[derive(Debug)]
pub(crate) enum SealError {
    /// Over Lambda's limit, and no bucket to send the arguments through.
    TooLarge { size: usize, limit: usize },
    /// The arguments could not be put in the bucket.
    Payload(PayloadError),
}

/// The bucket, the limit and the S3 client of the process: built once by
/// the runtime; the client on first use.
#[derive(Debug)]
pub struct Payloads {
    bucket: Option<String>,
    max: u64,
    client: LazyClient<aws_sdk_s3::Client>,
}

impl Default for Payloads {
    fn default() -> Self {
        Self::new(None, DEFAULT_PAYLOAD_MAX, None)
    }
}

impl Payloads {
    /// Objects written to `bucket` (none: nothing is written, and what does
    /// not fit is refused as before), at most `max` bytes each, with a client
    /// from `sdk` (the environment's when `None`).
    pub fn new(bucket: Option<String>, max: u64, sdk: Option<SdkConfig>) -> Self {
        Self { bucket, max, client: LazyClient::new(sdk) }
    }

    /// The bucket objects are written to.
    pub fn bucket(&self) -> Option<&str> {
        self.bucket.as_deref()
    }

    async fn s3(&self) -> &aws_sdk_s3::Client {
        self.client.get(s3_client).await
    }

    /// Put `bytes` as the object for `what` of call `id`.
    pub async fn put(&self, id: &str, what: &str, bytes: Vec<u8>) -> Result<PayloadRef, PayloadError> {
        let bucket = self.bucket.clone().unwrap_or_default();
        let sha256 = crate::envelope::payload_digest(&bytes);
        let key = object_key(id, what, &sha256);
        let size = bytes.len() as u64;
        let r = PayloadRef { bucket, key, size, sha256 };
        let fail = |problem: String, transient| PayloadError { object: r.to_string(), problem, transient };
        if r.bucket.is_empty() {
            return Err(fail("cannot be written: TASK_PAYLOAD_BUCKET is not set".into(), false));
        }
        if size > self.max {
            return Err(fail(format!("would be {size} bytes, over TASK_PAYLOAD_MAX ({} bytes)", self.max), false));
        }
        let put = self.s3().await.put_object().bucket(&r.bucket).key(&r.key).content_type("application/json").body(bytes.into());
        crate::aws::boxed(put.send()).await.map_err(|e| {
            let (problem, transient) = sdk_problem(&e);
            fail(format!("could not be written: {problem}"), transient)
        })?;
        tracing::debug!(object = %r, size, "put in S3");
        Ok(r)
    }

    /// The bytes of `r`, checked against its size, its hash and `TASK_PAYLOAD_MAX`.
    pub async fn get(&self, r: &PayloadRef) -> Result<Vec<u8>, PayloadError> {
        let fail = |problem: String, transient| PayloadError { object: r.to_string(), problem, transient };
        if r.size > self.max {
            return Err(fail(format!("is {} bytes, over TASK_PAYLOAD_MAX ({} bytes): not read", r.size, self.max), false));
        }
        let got = crate::aws::boxed(self.s3().await.get_object().bucket(&r.bucket).key(&r.key).send()).await.map_err(|e| {
            let (problem, transient) = sdk_problem(&e);
            fail(format!("could not be read: {problem}"), transient)
        })?;
        if let Some(length) = got.content_length().filter(|l| *l as u64 > self.max) {
            return Err(fail(format!("is {length} bytes, over TASK_PAYLOAD_MAX ({} bytes): not read", self.max), false));
        }
        let bytes = got.body.collect().await.map_err(|e| fail(format!("could not be read to its end: {e}"), true))?.into_bytes().to_vec();
        let sha256 = crate::envelope::payload_digest(&bytes);
        if bytes.len() as u64 != r.size || sha256 != r.sha256 {
            return Err(fail(
                format!(
                    "was changed after it was written: it is {} bytes with SHA-256 {sha256}, where its reference says {} bytes with SHA-256 {}",
                    bytes.len(),
                    r.size,
                    r.sha256
                ),
                false,
            ));
        }
        Ok(bytes)
    }

    /// The bytes of `env`, signed with `key` when given. A message over
    /// [`OFFLOAD_ABOVE_BYTES`] sends its arguments through the bucket (and
    /// is signed again, so that the signature covers the reference); with
    /// no bucket, one over Lambda's limit is refused.
    pub(crate) async fn seal(&self, env: &mut Envelope, key: Option<&[u8]>) -> Result<Vec<u8>, SealError> {
        match self.seal_inline(env, key)? {
            Some(bytes) => Ok(bytes),
            None => Box::pin(self.seal_through_s3(env, key)).await,
        }
    }

    /// [`seal`](Self::seal) without S3: the bytes, or `None` when the
    /// arguments must go through the bucket ([`seal_through_s3`](Self::seal_through_s3)).
    /// Synchronous, so that the common path awaits nothing.
    fn seal_inline(&self, env: &mut Envelope, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, SealError> {
        if let Some(key) = key {
            env.sign(key);
        }
        let bytes = serde_json::to_vec(&*env).expect("an Envelope always serializes");
        match self.bucket {
            Some(_) if bytes.len() > OFFLOAD_ABOVE_BYTES && env.args_ref.is_none() => Ok(None),
            _ if bytes.len() > MAX_ASYNC_PAYLOAD_BYTES => Err(SealError::TooLarge { size: bytes.len(), limit: MAX_ASYNC_PAYLOAD_BYTES }),
            _ => Ok(Some(bytes)),
        }
    }

    /// The arguments of `env` put in the bucket, and the message signed again.
    async fn seal_through_s3(&self, env: &mut Envelope, key: Option<&[u8]>) -> Result<Vec<u8>, SealError> {
        let args = serde_json::to_vec(&env.args).expect("JSON values always serialize");
        let r = self.put(&env.id, "args", args).await.map_err(SealError::Payload)?;
        tracing::info!(object = %r, size = r.size, "the arguments are sent through S3");
        env.args = Default::default();
        env.args_ref = Some(r);
        if let Some(key) = key {
            env.sign(key);
        }
        env.to_payload().map_err(|(size, limit)| SealError::TooLarge { size, limit })
    }

    /// The JSON `r` holds, as `T` (`what` names it in the error: "the
    /// arguments' JSON object", "JSON").
    pub(crate) async fn fetch_json<T: serde::de::DeserializeOwned>(&self, r: &PayloadRef, what: &str) -> Result<T, PayloadError> {
        let bytes = self.get(r).await?;
        serde_json::from_slice(&bytes).map_err(|e| PayloadError { object: r.to_string(), problem: format!("is not {what}: {e}"), transient: false })
    }

    /// `state` ready to write: a result over
    /// [`MAX_RESPONSE_BYTES`] or a failure's
    /// message over [`MAX_FAILURE_MESSAGE_BYTES`] put in the bucket, its
    /// reference stored in its place. With no bucket (or when the put
    /// fails), what [`fit`] makes of it: a result too large fails `too_large`,
    /// a message is cut.
    pub(crate) async fn place(&self, id: &str, state: FinalState) -> FinalState {
        if !self.places(&state) {
            return fit(state);
        }
        // Boxed: S3's futures, awaited only for a value too large for the item.
        Box::pin(self.place_in_s3(id, state)).await
    }

    async fn place_in_s3(&self, id: &str, state: FinalState) -> FinalState {
        match state {
            FinalState::Complete(text) if text.len() > MAX_RESPONSE_BYTES => match self.put(id, "result", text.into_bytes()).await {
                Ok(r) => FinalState::Complete(r.marker()),
                Err(e) => FinalState::Failed(Failure::new(FailureKind::TooLarge, format!("the result could not be kept: {e}"))),
            },
            FinalState::Complete(text) => FinalState::Complete(text),
            FinalState::Failed(f) => FinalState::Failed(self.place_failure(id, f).await),
            FinalState::Retrying(f) => FinalState::Retrying(self.place_failure(id, f).await),
            FinalState::Resend { failure, run_at_ms, after_attempt, ttl } => FinalState::Resend { failure: self.place_failure(id, failure).await, run_at_ms, after_attempt, ttl },
        }
    }

    /// Whether [`place`](Self::place) would put anything in the bucket:
    /// there is one, and `state` holds a value too large for the item.
    fn places(&self, state: &FinalState) -> bool {
        let large = |f: &Failure| f.message.len() > MAX_FAILURE_MESSAGE_BYTES;
        self.bucket.is_some()
            && match state {
                FinalState::Complete(text) => text.len() > MAX_RESPONSE_BYTES,
                FinalState::Failed(f) | FinalState::Retrying(f) | FinalState::Resend { failure: f, .. } => large(f),
            }
    }

    async fn place_failure(&self, id: &str, failure: Failure) -> Failure {
        if failure.message.len() <= MAX_FAILURE_MESSAGE_BYTES {
            return failure;
        }
        match self.put(id, "error", failure.message.clone().into_bytes()).await {
            Ok(r) => Failure { kind: failure.kind, message: r.marker() },
            Err(e) => {
                tracing::warn!("the failure's message is cut: {e}");
                failure.bounded()
            }
        }
    }

    /// Whether `r` holds a reference to a value kept in S3 (nothing to read back otherwise).
    pub fn holds_references(r: &AsyncResponse) -> bool {
        r.response.as_ref().and_then(PayloadRef::in_value).is_some() || r.error.as_ref().and_then(|f| PayloadRef::in_text(&f.message)).is_some()
    }

    /// `r` with what it stands for read back: a result or a failure's
    /// message kept in S3.
    pub async fn resolve(&self, r: &mut AsyncResponse) -> Result<(), PayloadError> {
        if let Some(stored) = r.response.as_ref().and_then(PayloadRef::in_value) {
            r.response = Some(self.fetch_json(&stored, "JSON").await?);
        }
        if let Some(stored) = r.error.as_ref().and_then(|f| PayloadRef::in_text(&f.message)) {
            let bytes = self.get(&stored).await?;
            let message = String::from_utf8(bytes).map_err(|e| PayloadError { object: stored.to_string(), problem: format!("is not UTF-8 text: {e}"), transient: false })?;
            if let Some(f) = r.error.as_mut() {
                f.message = message;
            }
        }
        Ok(())
    }
}

/// `state` as it is written with no bucket: a result over
/// [`MAX_RESPONSE_BYTES`] fails `too_large`
/// (naming `TASK_PAYLOAD_BUCKET`), a failure's message is cut.
pub(crate) fn fit(state: FinalState) -> FinalState {
    match state {
        FinalState::Complete(text) if text.len() > MAX_RESPONSE_BYTES => {
            let msg = format!(
                "the response is {} bytes, over the store's {MAX_RESPONSE_BYTES}-byte limit (set TASK_PAYLOAD_BUCKET to keep larger results in S3)",
                text.len()
            );
            FinalState::Failed(Failure::new(FailureKind::TooLarge, msg))
        }
        FinalState::Complete(text) => FinalState::Complete(text),
        FinalState::Failed(f) => FinalState::Failed(f.bounded()),
        FinalState::Retrying(f) => FinalState::Retrying(f.bounded()),
        FinalState::Resend { failure, run_at_ms, after_attempt, ttl } => FinalState::Resend { failure: failure.bounded(), run_at_ms, after_attempt, ttl },
    }
}

/// The key of the object for `what` (`args`, `result`, `error`) of call
/// `id` whose bytes hash to `sha256`.
///
/// ```
/// use task_runtime::store::payloads::object_key;
/// let sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
/// assert_eq!(object_key("order-7", "args", sha), "payloads/order-7/args-9f86d081884c7d659a2feaa0c55ad015");
/// assert!(object_key(&"x".repeat(2000), "result", sha).len() < 200); // a long id by its hash
/// ```
pub fn object_key(id: &str, what: &str, sha256: &str) -> String {
    let name = if id.len() > MAX_ID_IN_KEY { crate::envelope::payload_digest(id.as_bytes()) } else { id.to_owned() };
    format!("{PAYLOAD_PREFIX}{name}/{what}-{}", &sha256[..32.min(sha256.len())])
}

/// The S3 client: by path (`http://host/bucket/key`) when an endpoint of
/// its own is set (moto, MinIO, LocalStack), which serve buckets that way.
fn s3_client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    let own_endpoint = sdk.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(sdk).force_path_style(own_endpoint).build())
}

/// What an S3 error says, and whether it may pass.
fn sdk_problem<E>(e: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> (String, bool)
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    let (status, code, message) = crate::aws::describe(e);
    let transient = match (status, code.as_deref()) {
        (None, _) => true,
        (Some(s), _) if s >= 500 => true,
        (_, Some("SlowDown" | "Throttling" | "ThrottlingException" | "RequestTimeout")) => true,
        _ => false,
    };
    let hint = match code.as_deref() {
        Some("NoSuchKey") => " (it is gone: objects expire with the response's TTL, or it was deleted)",
        Some("NoSuchBucket") => " (the bucket does not exist: check TASK_PAYLOAD_BUCKET)",
        Some("AccessDenied") => " (the role needs s3:GetObject and s3:PutObject on the bucket's payloads/*)",
        _ => "",
    };
    let code = code.map(|c| format!("{c}: ")).unwrap_or_default();
    let status = status.map(|s| format!("HTTP {s}, ")).unwrap_or_default();
    (format!("{status}{code}{message}{hint}"), transient)
}
