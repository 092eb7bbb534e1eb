//! A reference to a value kept in S3 in place of where it would go: a
//! message's arguments (the envelope's `args_ref`), a call's result, or
//! its failure's message (a stored text that is [`PayloadRef::marker`]).
//! What reads and writes the objects is `store/payloads.rs`; here is only
//! the reference, so that a signed message covers it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The key of the object a stored text stands for: `{"task_runtime_payload": {...}}`.
pub const PAYLOAD_MARKER: &str = "task_runtime_payload";

/// Where a value too large for its message or item is kept: the S3 object,
/// its size and its SHA-256, checked when it is read.
///
/// ```
/// use task_runtime::envelope::PayloadRef;
///
/// let r = PayloadRef { bucket: "pies-payloads".into(), key: "payloads/7/result-ab12".into(), size: 20_000_000, sha256: "ab12".into() };
/// let stored = r.marker();
/// assert!(stored.starts_with(r#"{"task_runtime_payload":"#));
/// assert_eq!(PayloadRef::in_text(&stored), Some(r.clone()));
/// assert_eq!(PayloadRef::in_value(&serde_json::from_str(&stored).unwrap()), Some(r.clone()));
/// assert_eq!(r.to_string(), "s3://pies-payloads/payloads/7/result-ab12");
/// // A value that merely has the key among others is the value itself.
/// assert_eq!(PayloadRef::in_value(&serde_json::json!({"task_runtime_payload": 1, "x": 2})), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayloadRef {
    /// The bucket (`TASK_PAYLOAD_BUCKET` of the process that wrote it).
    pub bucket: String,
    /// The object's key.
    pub key: String,
    /// The object's size in bytes.
    pub size: u64,
    /// SHA-256 of the object's bytes, lowercase hex.
    pub sha256: String,
}

impl PayloadRef {
    /// The text stored in place of the value: a JSON object with the one key
    /// [`PAYLOAD_MARKER`].
    pub fn marker(&self) -> String {
        serde_json::json!({ PAYLOAD_MARKER: self }).to_string()
    }

    /// The reference `text` stands for, when it is a [`marker`](Self::marker).
    pub fn in_text(text: &str) -> Option<PayloadRef> {
        if !text.starts_with(r#"{"task_runtime_payload":"#) {
            return None;
        }
        Self::in_value(&serde_json::from_str(text).ok()?)
    }

    /// What a listing shows in place of the value: its size and where it is
    /// (a listing reads an index, and does not fetch every object).
    ///
    /// ```
    /// # use task_runtime::envelope::PayloadRef;
    /// let r = PayloadRef { bucket: "b".into(), key: "payloads/7/error-ab".into(), size: 2_000_000, sha256: "ab".into() };
    /// assert_eq!(r.summary(), "(2000000 bytes, kept in s3://b/payloads/7/error-ab)");
    /// ```
    pub fn summary(&self) -> String {
        format!("({} bytes, kept in {self})", self.size)
    }

    /// The reference a stored JSON value stands for, when it is a marker.
    pub fn in_value(value: &Value) -> Option<PayloadRef> {
        match value.as_object() {
            Some(map) if map.len() == 1 => serde_json::from_value(map.get(PAYLOAD_MARKER)?.clone()).ok(),
            _ => None,
        }
    }
}

impl std::fmt::Display for PayloadRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}
