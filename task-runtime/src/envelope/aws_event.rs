//! Which AWS service an event comes from, read from its shape: what routes
//! it to an `#[on_event]` handler.

use serde_json::Value;

/// The AWS events a handler can take.
///
/// ```
/// use task_runtime::envelope::aws_event::EventKind;
///
/// let upload = serde_json::json!({"Records": [{"eventSource": "aws:s3", "s3": {}}]});
/// assert_eq!(EventKind::of(&upload), Some(EventKind::S3));
/// let rule = serde_json::json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
/// assert_eq!(EventKind::of(&rule), Some(EventKind::EventBridge));
/// assert_eq!(EventKind::of(&serde_json::json!({"path": "/"})), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// S3 notifications (`aws_lambda_events::event::s3::S3Event`).
    S3,
    /// An SQS batch (`aws_lambda_events::event::sqs::SqsEvent`).
    Sqs,
    /// SNS notifications (`aws_lambda_events::event::sns::SnsEvent`).
    Sns,
    /// An EventBridge event (`aws_lambda_events::event::eventbridge::EventBridgeEvent`).
    EventBridge,
    /// A DynamoDB Streams batch (`aws_lambda_events::event::dynamodb::Event`).
    DynamoDbStream,
}

impl EventKind {
    /// The kind of `event`, when it has the shape of one.
    pub fn of(event: &Value) -> Option<EventKind> {
        if let Some(first) = event.get("Records").and_then(Value::as_array).and_then(|r| r.first()) {
            let source = first.get("eventSource").or_else(|| first.get("EventSource")).and_then(Value::as_str)?;
            return match source {
                "aws:s3" => Some(EventKind::S3),
                "aws:sqs" => Some(EventKind::Sqs),
                "aws:sns" => Some(EventKind::Sns),
                "aws:dynamodb" => Some(EventKind::DynamoDbStream),
                _ => None,
            };
        }
        let is_bridge = event.get("detail-type").is_some_and(Value::is_string) && event.get("source").is_some_and(Value::is_string);
        is_bridge.then_some(EventKind::EventBridge)
    }

    /// `s3`, `sqs`, `sns`, `eventbridge`, `dynamodb`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::S3 => "s3",
            EventKind::Sqs => "sqs",
            EventKind::Sns => "sns",
            EventKind::EventBridge => "eventbridge",
            EventKind::DynamoDbStream => "dynamodb",
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The object key of an S3 notification, decoded: S3 sends keys
/// URL-encoded as an HTML form would, so `red flower.jpg` arrives as
/// `red+flower.jpg` and `résumé.pdf` as `r%C3%A9sum%C3%A9.pdf`
/// (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html>:
/// "The s3 key provided in the event notification is URL encoded").
/// A `%` not followed by two hex digits is kept as it is, and bytes that
/// are not UTF-8 are replaced, so that any key decodes.
///
/// ```
/// use task_runtime::decode_s3_key;
/// assert_eq!(decode_s3_key("uploads/red+flower.jpg"), "uploads/red flower.jpg");
/// assert_eq!(decode_s3_key("r%C3%A9sum%C3%A9+%2B+cv.pdf"), "résumé + cv.pdf");
/// assert_eq!(decode_s3_key("100%"), "100%");
/// ```
pub fn decode_s3_key(encoded: &str) -> String {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
                (Some(hi), Some(lo)) => {
                    out.push((hi * 16 + lo) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_decode_as_s3_encodes_them() {
        assert_eq!(decode_s3_key("a%2Bb+c"), "a+b c");
        assert_eq!(decode_s3_key("r%C3%A9sum%C3%A9.pdf"), "résumé.pdf");
        assert_eq!(decode_s3_key("%7e%7E"), "~~", "either case of hex");
        assert_eq!(decode_s3_key("100%"), "100%");
        assert_eq!(decode_s3_key("%zz%4"), "%zz%4", "a % without two hex digits is kept");
        assert_eq!(decode_s3_key("%FF"), "\u{FFFD}", "not UTF-8: replaced, not refused");
    }

    #[test]
    fn kinds_are_named_and_an_event_bridge_event_needs_both_its_fields() {
        let names: Vec<String> =
            [EventKind::S3, EventKind::Sqs, EventKind::Sns, EventKind::EventBridge, EventKind::DynamoDbStream].iter().map(ToString::to_string).collect();
        assert_eq!(names, ["s3", "sqs", "sns", "eventbridge", "dynamodb"]);
        assert_eq!(EventKind::of(&json!({"source": "my.app", "detail-type": "x", "detail": {}})), Some(EventKind::EventBridge));
        assert_eq!(EventKind::of(&json!({"source": "my.app"})), None, "no detail-type");
        assert_eq!(EventKind::of(&json!({"detail-type": "x"})), None, "no source");
        assert_eq!(EventKind::of(&json!({"Records": [{"EventSource": "aws:sns"}]})), Some(EventKind::Sns), "SNS spells it EventSource");
        assert_eq!(EventKind::of(&json!({"Records": [{"eventSource": "aws:kinesis"}]})), None);
    }
}
