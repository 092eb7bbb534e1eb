//! Traces across calls: each task message carries its caller's trace
//! context as a W3C `traceparent`, and the worker's `task` span continues
//! it, so that one trace runs caller → task → the calls that task sends.
//!
//! - A call sent from inside a running task continues that task's trace,
//!   with the task's call as the parent span.
//! - A call sent elsewhere inside a Lambda invocation continues the
//!   invocation's X-Ray trace (`_X_AMZN_TRACE_ID`, which lambda_runtime sets
//!   per invocation): its W3C trace id is the X-Ray trace id without its
//!   version and dashes, as X-Ray documents
//!   (<https://docs.aws.amazon.com/xray/latest/devguide/xray-concepts.html#xray-concepts-tracingheader>).
//!   The AWS SDK also sends that header with the invoke, so X-Ray itself
//!   links the invocations when the function traces actively.
//! - Otherwise the call starts a trace.
//!
//! The format is <https://www.w3.org/TR/trace-context/#traceparent-header>:
//! `00-<trace-id: 32 hex>-<parent-id: 16 hex>-<flags: 2 hex>`.

use std::fmt;

use sha2::{Digest, Sha256};

/// A W3C trace context: the trace, the span it came from, and whether it is sampled.
///
/// ```
/// use task_runtime::trace::TraceParent;
/// let t = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").expect("valid");
/// assert_eq!(t.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// let child = t.child_of_call("order-42");
/// assert_eq!(child.trace_id(), t.trace_id());
/// assert_eq!(child.to_string().len(), 55);
/// assert!(TraceParent::parse("00-00000000000000000000000000000000-00f067aa0ba902b7-01").is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent {
    trace_id: String,
    parent_id: String,
    flags: u8,
}

impl TraceParent {
    /// Read a `traceparent` header; `None` unless it is a valid version-00
    /// header (a later version is read by its first four fields, as the
    /// specification asks).
    pub fn parse(header: &str) -> Option<Self> {
        let (trace_id, parent_id, flags) = fields(header)?;
        Some(TraceParent { trace_id: trace_id.to_owned(), parent_id: parent_id.to_owned(), flags })
    }

    /// Read an X-Ray trace header (`Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1`).
    ///
    /// ```
    /// use task_runtime::trace::TraceParent;
    /// let t = TraceParent::from_xray("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1").expect("valid");
    /// assert_eq!(t.to_string(), "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01");
    /// ```
    pub fn from_xray(header: &str) -> Option<Self> {
        let field = |name: &str| header.split(';').find_map(|kv| kv.trim().strip_prefix(name)?.strip_prefix('='));
        let root = field("Root")?;
        let mut root_parts = root.split('-');
        let (version, time, rest) = (root_parts.next()?, root_parts.next()?, root_parts.next()?);
        if version != "1" || root_parts.next().is_some() {
            return None;
        }
        let trace_id = format!("{time}{rest}").to_ascii_lowercase();
        // An invocation's header may have no parent yet: the invocation is then its own.
        let parent_id = field("Parent").map_or_else(|| span_id(&trace_id), str::to_ascii_lowercase);
        let sampled = field("Sampled") == Some("1");
        TraceParent::parse(&format!("00-{trace_id}-{parent_id}-{:02x}", u8::from(sampled)))
    }

    /// A new trace, sampled.
    pub fn new_root() -> Self {
        Self::root_of(&uuid::Uuid::new_v4().to_string())
    }

    /// The trace that call `id`, sent from outside any trace, starts,
    /// sampled: the id's own 128 bits when it is a UUID (the runtime's ids
    /// are random v4 UUIDs, so no more randomness is drawn per call), else
    /// the first 128 bits of its SHA-256. Its parent is the trace id's low
    /// 64 bits (the caller, which has no span of its own).
    ///
    /// ```
    /// use task_runtime::trace::TraceParent;
    /// let t = TraceParent::root_of("5cd2fef9-10de-4a1e-8c1d-87df7a9423a7");
    /// assert_eq!(t.to_string(), "00-5cd2fef910de4a1e8c1d87df7a9423a7-8c1d87df7a9423a7-01");
    /// assert_eq!(TraceParent::root_of("report-2026-11-30").trace_id().len(), 32);
    /// ```
    pub fn root_of(id: &str) -> Self {
        let hex: String = id.chars().filter(|c| *c != '-').collect();
        let trace_id = if hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) && hex.bytes().any(|b| b != b'0') {
            hex
        } else {
            hex::encode(&Sha256::digest(id.as_bytes())[..16])
        };
        let parent_id = match &trace_id[16..] {
            low if low.bytes().any(|b| b != b'0') => low.to_owned(),
            _ => span_id(&trace_id),
        };
        TraceParent { trace_id, parent_id, flags: 1 }
    }

    /// The context a call sent by call `id` carries: the same trace, with
    /// `id`'s span ([`span_id`]) as the parent.
    pub fn child_of_call(&self, id: &str) -> Self {
        TraceParent { trace_id: self.trace_id.clone(), parent_id: span_id(id), flags: self.flags }
    }

    /// The trace id, 32 lowercase hex digits.
    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }

    /// The span this context came from, 16 lowercase hex digits.
    pub fn parent_id(&self) -> &str {
        &self.parent_id
    }

    /// Whether the caller sampled the trace.
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "00-{}-{}-{:02x}", self.trace_id, self.parent_id, self.flags)
    }
}

/// The trace id, parent id and flags of a valid `traceparent`, borrowed.
fn fields(header: &str) -> Option<(&str, &str, u8)> {
    let mut parts = header.trim().split('-');
    let (version, trace_id, parent_id, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let extra = parts.next();
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !hex(version, 2) || version == "ff" || (version == "00" && extra.is_some()) {
        return None;
    }
    if !hex(trace_id, 32) || trace_id.bytes().all(|b| b == b'0') || !hex(parent_id, 16) || parent_id.bytes().all(|b| b == b'0') || !hex(flags, 2) {
        return None;
    }
    Some((trace_id, parent_id, u8::from_str_radix(flags, 16).ok()?))
}

/// The trace id of a `traceparent` header, when it is valid: what the
/// worker's `task` span records as `trace_id`.
///
/// ```
/// let h = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
/// assert_eq!(task_runtime::trace::trace_id_of(h), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
/// assert_eq!(task_runtime::trace::trace_id_of("nonsense"), None);
/// ```
pub fn trace_id_of(header: &str) -> Option<&str> {
    fields(header).map(|(trace_id, _, _)| trace_id)
}

/// The span id of call `id`'s run: the first 8 bytes of SHA-256 of the id,
/// so that the caller can name it as the parent of the calls it sends
/// without a write, and a reader can find it again from the id alone.
///
/// ```
/// let s = task_runtime::trace::span_id("order-42");
/// assert_eq!((s.len(), s == task_runtime::trace::span_id("order-42")), (16, true));
/// ```
pub fn span_id(id: &str) -> String {
    let digest = Sha256::digest(id.as_bytes());
    let mut out = hex::encode(&digest[..8]);
    if out.bytes().all(|b| b == b'0') {
        out.replace_range(15.., "1"); // all zeros is invalid
    }
    out
}

/// The trace context for call `id`, sent by `running` (the running task's
/// id and the `traceparent` its message carried, if a task is running):
/// the running task's trace, else the Lambda invocation's X-Ray trace, else
/// the trace the call starts ([`TraceParent::root_of`]).
pub(crate) fn outgoing(id: &str, running: Option<(&str, Option<&str>)>) -> TraceParent {
    if let Some((sender, Some(header))) = running
        && let Some(t) = TraceParent::parse(header)
    {
        return t.child_of_call(sender);
    }
    match std::env::var_os("_X_AMZN_TRACE_ID") {
        Some(xray) => xray.to_str().and_then(TraceParent::from_xray).unwrap_or_else(|| TraceParent::root_of(id)),
        None => TraceParent::root_of(id),
    }
}

/// The `traceparent` a message for call `id` carries: `None` when the
/// call starts the trace its own id names ([`TraceParent::root_of`]),
/// which the worker derives from the id again (`Envelope::trace_context`),
/// so that the common message is 71 bytes shorter, and neither the header
/// nor those bytes' share of the invoke's SigV4 hashing is paid per call.
/// `_X_AMZN_TRACE_ID` is still read each call: lambda_runtime sets it per
/// invocation.
pub(crate) fn carried(id: &str, running: Option<(&str, Option<&str>)>) -> Option<String> {
    let traced = matches!(running, Some((_, Some(_)))) || std::env::var_os("_X_AMZN_TRACE_ID").is_some();
    if !traced {
        return None;
    }
    let t = outgoing(id, running);
    (t != TraceParent::root_of(id)).then(|| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_w3c_examples_parse_and_print_back() {
        // The example of https://www.w3.org/TR/trace-context/#examples-of-http-traceparent-headers
        for header in ["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"] {
            assert_eq!(TraceParent::parse(header).map(|t| t.to_string()).as_deref(), Some(header));
        }
        assert_eq!(TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").map(|t| t.sampled()), Some(false));
    }

    #[test]
    fn invalid_headers_are_refused() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", // uppercase
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",  // short trace id
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
        }
        // A later version is read by its first four fields.
        assert!(TraceParent::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra").is_some());
    }

    #[test]
    fn an_xray_header_maps_to_the_same_trace_id() {
        // The header of https://docs.aws.amazon.com/xray/latest/devguide/xray-concepts.html#xray-concepts-tracingheader
        let t = TraceParent::from_xray("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1");
        assert_eq!(t.as_ref().map(TraceParent::trace_id), Some("5759e988bd862e3fe1be46a994272793"));
        assert_eq!(t.map(|t| t.sampled()), Some(true));
        let unsampled = TraceParent::from_xray("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0");
        assert_eq!(unsampled.map(|t| (t.parent_id().to_owned(), t.sampled())), Some(("53995c3f42cd8ad8".to_owned(), false)));
        assert_eq!(TraceParent::from_xray("Root=2-5759e988-bd862e3fe1be46a994272793"), None);
        assert_eq!(TraceParent::from_xray("Parent=53995c3f42cd8ad8"), None);
    }

    #[test]
    fn a_call_from_outside_a_trace_starts_its_own() {
        let a = outgoing("5cd2fef9-10de-4a1e-8c1d-87df7a9423a7", None);
        assert_eq!(a.trace_id(), "5cd2fef910de4a1e8c1d87df7a9423a7");
        assert_ne!(outgoing("another", None).trace_id(), outgoing("one more", None).trace_id());
        // From inside a task: the task's trace, the task's call as the parent.
        let header = a.to_string();
        let child = outgoing("child-id", Some(("5cd2fef9-10de-4a1e-8c1d-87df7a9423a7", Some(&header))));
        assert_eq!((child.trace_id(), child.parent_id()), (a.trace_id(), span_id("5cd2fef9-10de-4a1e-8c1d-87df7a9423a7").as_str()));
        // An all-zero id still makes a valid context.
        assert!(TraceParent::parse(&TraceParent::root_of("00000000-0000-0000-0000-000000000000").to_string()).is_some());
    }

    #[test]
    fn a_message_carries_only_a_trace_its_id_does_not_name() {
        let id = "5cd2fef9-10de-4a1e-8c1d-87df7a9423a7";
        // From outside any trace: none carried; the id names the trace.
        assert_eq!(carried(id, None), None);
        assert_eq!(carried(id, Some(("sender", None))), None);
        // From inside a task: the task's trace, its call as the parent.
        let header = outgoing("sender", None).to_string();
        let inside = carried(id, Some(("sender", Some(&header))));
        assert_eq!(inside, Some(outgoing(id, Some(("sender", Some(&header)))).to_string()));
        assert_ne!(inside, Some(TraceParent::root_of(id).to_string()));
        // A header that does not parse: the id's own trace again.
        assert_eq!(carried(id, Some(("sender", Some("nonsense")))), None);
    }

    #[test]
    fn a_child_keeps_the_trace_and_names_its_sender() {
        let root = TraceParent::new_root();
        let child = root.child_of_call("a");
        assert_eq!((child.trace_id(), child.parent_id()), (root.trace_id(), span_id("a").as_str()));
        assert_ne!(span_id("a"), span_id("b"));
        assert_ne!(TraceParent::new_root().trace_id(), root.trace_id());
    }
}
