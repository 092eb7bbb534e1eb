//! A message's arguments: a JSON object keyed by parameter name.
//!
//! A typed `#[task]` call writes its arguments straight into JSON text
//! ([`ArgsWriter`]), with no `serde_json::Value` tree in between, and the
//! message's bytes copy that text as it is: building the tree and dropping
//! it again was a good part of what a call cost its caller beyond the
//! invoke. [`Args`] reads as a `Map` all the same (it derefs to one), so
//! whatever reads the arguments on the caller's side (an idempotency key,
//! a signature's digest) parses the text then, and only then. A worker
//! decodes a message's arguments as a `Map`, as it always has.

use std::ops::{Deref, DerefMut};
use std::sync::OnceLock;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// The arguments of a message: a `Map`, or the JSON text of one as a
/// typed call wrote it (read as a `Map` when something asks).
///
/// ```
/// use task_runtime::envelope::{Args, ArgsWriter};
/// let mut w = ArgsWriter::new();
/// w.put("flavor", &"apple").unwrap();
/// w.put("slices", &8).unwrap();
/// let args: Args = w.finish();
/// assert_eq!(serde_json::to_string(&args).unwrap(), r#"{"flavor":"apple","slices":8}"#);
/// assert_eq!(args["slices"], 8); // read as a Map
/// assert_eq!(args, Args::from(serde_json::json!({"slices": 8, "flavor": "apple"}).as_object().cloned().unwrap()));
/// ```
#[derive(Default, Clone)]
pub struct Args {
    /// The text as written, when it was; dropped once the map is changed.
    raw: Option<Box<RawValue>>,
    /// The map: given, or parsed from `raw` on first read.
    map: OnceLock<Map<String, Value>>,
}

impl Args {
    /// The arguments as a `Map`, taken out.
    pub fn into_map(mut self) -> Map<String, Value> {
        self.parsed();
        self.map.take().unwrap_or_default()
    }

    /// The map, parsed from the text the first time it is read. Text this
    /// crate wrote is a JSON object; one nested deeper than serde_json reads
    /// (128 levels) reads as no arguments here, and its worker refuses the
    /// message, naming the decode error.
    fn parsed(&self) -> &Map<String, Value> {
        self.map.get_or_init(|| match &self.raw {
            Some(raw) => serde_json::from_str(raw.get()).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "a call's arguments, as written, do not read back as a JSON object");
                Map::new()
            }),
            None => Map::new(),
        })
    }
}

impl From<Map<String, Value>> for Args {
    fn from(map: Map<String, Value>) -> Self {
        Args { raw: None, map: OnceLock::from(map) }
    }
}

impl Deref for Args {
    type Target = Map<String, Value>;

    fn deref(&self) -> &Self::Target {
        self.parsed()
    }
}

impl DerefMut for Args {
    /// The map to change: the text, if any, no longer says what it holds.
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.parsed();
        self.raw = None;
        self.map.get_mut().expect("parsed just now")
    }
}

impl PartialEq for Args {
    fn eq(&self, other: &Self) -> bool {
        self.parsed() == other.parsed()
    }
}

impl std::fmt::Debug for Args {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.raw, self.map.get()) {
            (_, Some(map)) => map.fmt(f),
            (Some(raw), None) => f.write_str(raw.get()),
            (None, None) => f.write_str("{}"),
        }
    }
}

impl Serialize for Args {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.raw {
            Some(raw) => raw.serialize(s),
            None => self.parsed().serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Args {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Map::deserialize(d).map(Args::from)
    }
}

/// Writes arguments one by one into the JSON text of an object: what a
/// typed `#[task]` call sends, with no `Value` built for them.
#[derive(Debug, Default)]
pub struct ArgsWriter {
    text: Vec<u8>,
}

impl ArgsWriter {
    /// No arguments yet.
    pub fn new() -> Self {
        Self { text: Vec::with_capacity(128) }
    }

    /// Add argument `name`. On an error (a value serde_json cannot write,
    /// such as a map with keys that are not strings) the writer is left as
    /// it was before.
    pub fn put<T: Serialize + ?Sized>(&mut self, name: &str, value: &T) -> Result<(), serde_json::Error> {
        let start = self.text.len();
        self.text.push(if start == 0 { b'{' } else { b',' });
        let written = serde_json::to_writer(&mut self.text, name).and_then(|()| {
            self.text.push(b':');
            serde_json::to_writer(&mut self.text, value)
        });
        if written.is_err() {
            self.text.truncate(start);
        }
        written
    }

    /// The arguments written.
    pub fn finish(mut self) -> Args {
        if self.text.is_empty() {
            self.text.push(b'{');
        }
        self.text.push(b'}');
        // serde_json wrote it: UTF-8, and one JSON object, which `from_string` checks again.
        let text = String::from_utf8(self.text).expect("serde_json writes UTF-8");
        match RawValue::from_string(text) {
            Ok(raw) => Args { raw: Some(raw), map: OnceLock::new() },
            Err(e) => {
                tracing::warn!(error = %e, "the arguments written do not read as JSON");
                Args::default()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn written_arguments_send_as_written_and_read_as_a_map() {
        let mut w = ArgsWriter::new();
        w.put("order", &json!({"flavor": "apple", "notes": ["no nuts"]})).unwrap();
        w.put("we\"ird", &1.5).unwrap();
        let args = w.finish();
        let text = r#"{"order":{"flavor":"apple","notes":["no nuts"]},"we\"ird":1.5}"#;
        assert_eq!(serde_json::to_string(&args).unwrap(), text);
        assert!(args.map.get().is_none(), "not parsed until read");
        assert_eq!(args.get("we\"ird"), Some(&json!(1.5)));
        assert_eq!(serde_json::from_str::<Args>(text).unwrap(), args);
        assert_eq!(serde_json::to_string(&ArgsWriter::new().finish()).unwrap(), "{}");
    }

    #[test]
    fn a_changed_map_is_what_is_sent() {
        let mut w = ArgsWriter::new();
        w.put("a", &1).unwrap();
        let mut args = w.finish();
        args.insert("b".into(), json!(2));
        assert_eq!(serde_json::to_string(&args).unwrap(), r#"{"a":1,"b":2}"#);
        assert_eq!(args.clone().into_map().len(), 2);
    }

    #[test]
    fn a_value_that_cannot_be_written_leaves_the_rest() {
        let mut w = ArgsWriter::new();
        w.put("a", &1).unwrap();
        let bad: std::collections::HashMap<(u8, u8), u8> = [((1, 2), 3)].into();
        assert!(w.put("b", &bad).is_err());
        w.put("c", &3).unwrap();
        assert_eq!(serde_json::to_string(&w.finish()).unwrap(), r#"{"a":1,"c":3}"#);
    }
}
