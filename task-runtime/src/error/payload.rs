//! An object of the payload bucket (`TASK_PAYLOAD_BUCKET`) that could not
//! be written or read; raised by `store/payloads.rs`.

/// An object that could not be written or read, or is not what its
/// reference says.
///
/// ```
/// use task_runtime::store::payloads::PayloadError;
/// let e = PayloadError { object: "s3://b/payloads/7/args-ab".into(), problem: "is gone (NoSuchKey)".into(), transient: false };
/// assert_eq!(e.to_string(), "the payload object s3://b/payloads/7/args-ab is gone (NoSuchKey)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the payload object {object} {problem}")]
pub struct PayloadError {
    /// `s3://BUCKET/KEY`.
    pub object: String,
    /// What is wrong with it.
    pub problem: String,
    /// Whether trying again may succeed (no answer, a 5xx, throttling).
    pub transient: bool,
}
