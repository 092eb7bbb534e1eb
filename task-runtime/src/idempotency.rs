//! Idempotency keys: `#[task(idempotency_key = "order_id")]` (or
//! [`SendOptions::idempotency_key`](crate::SendOptions::idempotency_key))
//! makes a call's id a function of the key, so that every send with one
//! key within its window is one call. Plain data and pure functions: the
//! key read from the arguments, and the id made from it. Sending
//! (`dispatch/ids.rs`) claims the id ([`ResponseStore::claim_id`](crate::store::ResponseStore::claim_id)).
//!
//! | option | field | what it does |
//! |---|---|---|
//! | `idempotency_key = "order_id"` or `"order.id"` | [`KeyFrom::Arg`] | the key is that argument (or a field inside it) |
//! | `idempotency_key = order_key` | [`KeyFrom::Function`] | the key is `order_key(&arg1, &arg2, ..)`, any `Serialize` value |
//! | `idempotency_window = "24h"` | [`Idempotency::window_ms`] | how long a key stays one call (default 24 h) |
//!
//! A key from a function of the arguments; a second send within the
//! window is a handle to the first call, and its body does not run again:
//!
//! ```
//! use task_runtime::task;
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Order { id: u64, lines: Vec<String> }
//!
//! fn order_key(order: &Order, _note: &String) -> u64 {
//!     order.id
//! }
//!
//! #[task(idempotency_key = order_key, idempotency_window = "1h")]
//! async fn charge(order: Order, note: String) -> usize {
//!     order.lines.len()
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # task_runtime::Config::local().install()?;
//! let first = charge(Order { id: 7, lines: vec!["tea".into()] }, "web".into()).await?;
//! // The browser retried with another basket: the same order, the same call.
//! let again = charge(Order { id: 7, lines: vec!["tea".into(), "cake".into()] }, "retry".into()).await?;
//! assert_eq!(first.id(), again.id());
//! assert!(!first.is_existing() && again.is_existing());
//! assert_eq!(again.wait().await?, 1); // the first call's result
//! # Ok(()) }
//! ```

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The default window: a day, the response TTL's default too.
pub const DEFAULT_WINDOW_MS: u64 = 86_400_000;

/// The prefix of the ids that idempotency keys make (`idem:TASK:HASH`):
/// an id a caller chooses may not start with it.
pub const ID_PREFIX: &str = "idem:";

/// A task's idempotency key and window, as `#[task(...)]` declares them.
///
/// ```
/// use task_runtime::idempotency::{Idempotency, KeyFrom};
/// let by_order = Idempotency { key: KeyFrom::Arg("order.id"), window_ms: 3_600_000 };
/// let args = serde_json::json!({"order": {"id": "A-17", "lines": 3}});
/// assert_eq!(by_order.key_of(args.as_object().unwrap()), Ok("A-17".to_owned()));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Idempotency {
    /// Where the key comes from.
    pub key: KeyFrom,
    /// How long, from the first send, a send with the same key is the same
    /// call, in ms. Never shorter, in effect, than the first call's own life:
    /// until Lambda can no longer deliver it, a new call under its id could
    /// be run by a late delivery of the old message.
    pub window_ms: u64,
}

/// Where a task's idempotency key comes from.
#[derive(Debug, Clone, Copy)]
pub enum KeyFrom {
    /// An argument by name, or a field inside it: `"order_id"`, `"order.id"`
    /// (an array's item by its index: `"lines.0"`).
    Arg(&'static str),
    /// A function of the arguments: `name` as written in the attribute, and
    /// `of`, what `#[task]` wraps it in (it decodes the arguments and calls it).
    Function {
        /// The function's path, as written.
        name: &'static str,
        /// The key's value from the arguments, or what is wrong with them.
        of: fn(&Map<String, Value>) -> Result<Value, String>,
    },
}

impl PartialEq for KeyFrom {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (KeyFrom::Arg(a), KeyFrom::Arg(b)) => a == b,
            (KeyFrom::Function { name: a, .. }, KeyFrom::Function { name: b, .. }) => a == b,
            _ => false,
        }
    }
}

impl Eq for KeyFrom {}

impl Idempotency {
    /// The key of a call with `args`: a string as it is, any other value as
    /// its canonical JSON text (`42`, `{"a":1}`). `Err` says what is wrong:
    /// a path that names nothing, or a null key.
    pub fn key_of(&self, args: &Map<String, Value>) -> Result<String, String> {
        let value = match self.key {
            KeyFrom::Arg(path) => {
                let mut parts = path.split('.');
                let first = parts.next().unwrap_or_default();
                let mut at = args.get(first).ok_or_else(|| format!("`{path}`: the call has no argument `{first}`"))?;
                for part in parts {
                    let next = match at {
                        Value::Object(map) => map.get(part),
                        Value::Array(items) => part.parse::<usize>().ok().and_then(|i| items.get(i)),
                        _ => None,
                    };
                    at = next.ok_or_else(|| format!("`{path}`: the argument has no `{part}` (it is {})", crate::envelope::json_type(at)))?;
                }
                at.clone()
            }
            KeyFrom::Function { name, of } => of(args).map_err(|why| format!("`{name}`: {why}"))?,
        };
        key_text(&value).ok_or_else(|| match self.key {
            KeyFrom::Arg(path) => format!("`{path}` is null: a call without a key cannot be told from another"),
            KeyFrom::Function { name, .. } => format!("`{name}` gave null: a call without a key cannot be told from another"),
        })
    }
}

/// A key's text: a string as it is, any other value as its canonical JSON;
/// `None` for null.
pub fn key_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(String::from_utf8(crate::envelope::canonical(other)).expect("JSON text is UTF-8")),
    }
}

/// The call id of `key` for task `task`: `idem:TASK:` and 32 hex digits of
/// SHA-256 over the task and the key, so the key itself (an email, an order)
/// is not in the id, and two tasks' keys never meet.
///
/// ```
/// use task_runtime::idempotency::id_for;
/// let id = id_for("shop::charge", "A-17");
/// assert_eq!(id, id_for("shop::charge", "A-17"));
/// assert_ne!(id, id_for("shop::refund", "A-17"));
/// assert!(id.starts_with("idem:shop::charge:") && !id.contains("A-17"));
/// ```
pub fn id_for(task: &str, key: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(task.as_bytes());
    hash.update([0]);
    hash.update(key.as_bytes());
    format!("{ID_PREFIX}{task}:{}", hex::encode(&hash.finalize()[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("an object")
    }

    #[test]
    fn a_key_is_read_from_an_argument_or_a_field_inside_it() {
        let a = args(serde_json::json!({"order_id": 7, "order": {"id": "A", "lines": [{"sku": "x"}]}, "none": null}));
        let at = |path| Idempotency { key: KeyFrom::Arg(path), window_ms: 1 }.key_of(&a);
        assert_eq!(at("order_id"), Ok("7".into()));
        assert_eq!(at("order.id"), Ok("A".into()));
        assert_eq!(at("order.lines.0.sku"), Ok("x".into()));
        assert_eq!(at("order"), Ok(r#"{"id":"A","lines":[{"sku":"x"}]}"#.into()));
        assert!(at("missing").expect_err("refused").contains("no argument `missing`"));
        assert!(at("order.lines.9").expect_err("refused").contains("has no `9` (it is an array)"));
        assert!(at("order_id.x").expect_err("refused").contains("(it is a number)"));
        assert!(at("none").expect_err("refused").contains("is null"));
    }

    #[test]
    fn a_key_function_s_value_and_its_errors_are_named() {
        fn sum(a: &Map<String, Value>) -> Result<Value, String> {
            let n = |k: &str| a.get(k).and_then(Value::as_u64).ok_or(format!("argument `{k}` is missing"));
            Ok(Value::from(n("a")? + n("b")?))
        }
        let key = Idempotency { key: KeyFrom::Function { name: "sum", of: sum }, window_ms: 1 };
        assert_eq!(key.key_of(&args(serde_json::json!({"a": 1, "b": 2}))), Ok("3".into()));
        assert_eq!(key.key_of(&args(serde_json::json!({"a": 1}))), Err("`sum`: argument `b` is missing".into()));
    }

    #[test]
    fn a_string_key_and_the_same_text_sent_by_hand_make_one_id() {
        assert_eq!(key_text(&Value::from("A-17")).as_deref(), Some("A-17"));
        assert_eq!(key_text(&Value::from(42)).as_deref(), Some("42"));
        assert_eq!(id_for("t", "42"), id_for("t", &key_text(&Value::from(42)).expect("a key")));
    }
}
