//! What a signature and a digest cover: HMAC-SHA256 over the canonical
//! form of a message without `sig`, and the canonical form itself.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::Envelope;

impl Envelope {

    /// HMAC-SHA256 over the [`canonical`] form of the message without `sig`:
    /// bytes that depend on the message alone, not on how serde_json was
    /// built (its `preserve_order` feature changes the order of object keys).
    fn mac(&self, key: &[u8]) -> Hmac<Sha256> {
        let unsigned = Envelope { sig: None, ..self.clone() };
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
        mac.update(&canonical(&serde_json::to_value(&unsigned).expect("an Envelope always serializes")));
        mac
    }

    /// Sign the message with HMAC-SHA256 (sets `sig`).
    pub fn sign(&mut self, key: &[u8]) {
        self.sig = Some(hex::encode(self.mac(key).finalize().into_bytes()));
    }

    /// SHA-256 (hex) of the whole message, signature included: what the
    /// caller stores with its `pending` item when signing is on. Only the
    /// caller's own message, byte for byte, has it.
    ///
    /// ```
    /// # use task_runtime::envelope::Envelope;
    /// let mut message = Envelope::new("t", Default::default(), true, 2);
    /// message.sign(b"key");
    /// let mut forged = message.clone();
    /// forged.task = "other".into();
    /// assert_ne!(message.digest(), forged.digest());
    /// assert_eq!(message.digest().len(), 64);
    /// ```
    pub fn digest(&self) -> String {
        payload_digest(&canonical(&serde_json::to_value(self).expect("an Envelope always serializes")))
    }

    /// Check `sig` against the key; `Err` says what is wrong.
    pub fn verify(&self, key: &[u8]) -> Result<(), &'static str> {
        let sig = self.sig.as_deref().ok_or("the message has no signature (`sig`)")?;
        let bytes = hex::decode(sig).map_err(|_| "the signature (`sig`) is not hex")?;
        self.mac(key).verify_slice(&bytes).map_err(|_| "the signature (`sig`) does not match the message")
    }
}

/// SHA-256 (hex) of bytes.
pub(crate) fn payload_digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(Sha256::digest(bytes))
}

/// The canonical form of a JSON value, which signatures and digests cover:
/// JSON text with no whitespace, every object's keys in ascending order of
/// their UTF-8 bytes (whatever order the map keeps), strings and numbers as
/// serde_json writes them (`"\u001f"`-style escapes for control characters
/// only, shortest round-trip floats). Python's
/// `json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`
/// gives the same bytes for messages of plain strings and integers.
///
/// ```
/// use task_runtime::envelope::canonical;
/// let v: serde_json::Value = serde_json::from_str(r#"{"b": [1, {"d": 1, "c": "é"}], "a": null}"#).unwrap();
/// assert_eq!(String::from_utf8(canonical(&v)).unwrap(), r#"{"a":null,"b":[1,{"c":"é","d":1}]}"#);
/// ```
pub fn canonical(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_canonical(value, &mut out);
    out
}

/// SHA-256 (hex) of a call's task name and the [`canonical`] form of its
/// arguments: what a call whose id the caller chose keeps on its item, so
/// that a second send of the id can tell the same call (a handle to it)
/// from another (an error). The same arguments give the same digest
/// whatever order their map keeps.
///
/// ```
/// use task_runtime::envelope::args_digest;
/// let args = |v: serde_json::Value| v.as_object().cloned().unwrap();
/// let a = args(serde_json::json!({"order": 7, "items": ["a", "b"]}));
/// let b = args(serde_json::json!({"items": ["a", "b"], "order": 7}));
/// assert_eq!(args_digest("shop::charge", &a), args_digest("shop::charge", &b));
/// assert_ne!(args_digest("shop::charge", &a), args_digest("shop::refund", &a));
/// assert_ne!(args_digest("shop::charge", &a), args_digest("shop::charge", &args(serde_json::json!({"order": 8}))));
/// ```
pub fn args_digest(task: &str, args: &serde_json::Map<String, Value>) -> String {
    let mut out = Vec::with_capacity(256);
    serde_json::to_writer(&mut out, task).expect("a string always serializes");
    out.push(b':');
    write_canonical_map(args, &mut out);
    payload_digest(&out)
}

fn write_canonical_map(map: &serde_json::Map<String, Value>, out: &mut Vec<u8>) {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    out.push(b'{');
    for (i, (k, v)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, k).expect("a string always serializes");
        out.push(b':');
        write_canonical(v, out);
    }
    out.push(b'}');
}

pub(super) fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => write_canonical_map(map, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(v, out);
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar).expect("a scalar always serializes"),
    }
}
