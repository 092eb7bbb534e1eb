//! `task-local event KIND`: realistic sample events, as `sam local
//! generate-event` makes them (an S3 put, an SQS batch, an EventBridge
//! event, a warm-up ping), printed, or sent to a served function with
//! `--invoke NAME` and its answer printed.

use serde_json::{Value, json};

use crate::cli::{EventArgs, Kind};
use crate::stats::now_ms;

/// The event `a` asks for.
pub(crate) fn event(a: &EventArgs) -> Result<Value, String> {
    let time = crate::queue::iso8601(now_ms());
    let id = uuid::Uuid::new_v4().to_string();
    Ok(match a.kind {
        Kind::S3Put => {
            let records: Vec<Value> = a
                .keys
                .iter()
                .map(|key| {
                    json!({
                        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1", "eventTime": time,
                        "eventName": "ObjectCreated:Put", "userIdentity": {"principalId": "EXAMPLE"},
                        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                        "responseElements": {"x-amz-request-id": "EXAMPLE123456789", "x-amz-id-2": "EXAMPLE123/abcdefghijklmnopqrstuvwxyz"},
                        "s3": {
                            "s3SchemaVersion": "1.0", "configurationId": "task-local",
                            "bucket": {"name": a.bucket, "ownerIdentity": {"principalId": "EXAMPLE"}, "arn": format!("arn:aws:s3:::{}", a.bucket)},
                            "object": {"key": s3_key(key), "size": 1024, "eTag": "0123456789abcdef0123456789abcdef", "sequencer": "0A1B2C3D4E5F678901"},
                        },
                    })
                })
                .collect();
            json!({"Records": records})
        }
        Kind::Sqs => json!({"Records": [{
            "messageId": id, "receiptHandle": "MessageReceiptHandle", "body": a.body,
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": now_ms().to_string(), "SenderId": "123456789012", "ApproximateFirstReceiveTimestamp": now_ms().to_string()},
            "messageAttributes": {}, "md5OfBody": "7b270e59b47ff90a553787216d55d91d", "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:MyQueue", "awsRegion": "us-east-1",
        }]}),
        Kind::Eventbridge => {
            let detail: Value = serde_json::from_str(&a.detail).map_err(|e| format!("--detail is not JSON: {e}"))?;
            json!({"version": "0", "id": id, "detail-type": a.detail_type, "source": a.source, "account": "123456789012",
                   "time": time, "region": "us-east-1", "resources": [], "detail": detail})
        }
        Kind::Warmup => json!({"task_runtime_warmup": {"instances": a.instances}}),
    })
}

/// An object key as S3 puts it in a notification: URL-encoded as an HTML
/// form would (`red flower.jpg` is `red+flower.jpg`).
/// <https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html>
fn s3_key(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b' ' => "+".to_owned(),
            b if b.is_ascii_alphanumeric() || b"-_.*/".contains(&b) => char::from(b).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// Print the event, or send it and print the answer.
pub(crate) async fn run(a: EventArgs) -> Result<(), String> {
    let event = event(&a)?;
    let Some(function) = &a.invoke else {
        say!("{}", serde_json::to_string_pretty(&event).unwrap_or_default());
        return Ok(());
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = event.to_string();
    let mut s = tokio::net::TcpStream::connect(&a.endpoint).await.map_err(|e| format!("cannot reach task-local at {}: {e}", a.endpoint))?;
    let request = format!(
        "POST /2015-03-31/functions/{function}/invocations HTTP/1.0\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        a.endpoint,
        body.len()
    );
    s.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.map_err(|e| e.to_string())?;
    let (head, payload) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    if let Some(error) = head.lines().find(|l| l.to_ascii_lowercase().starts_with("x-amz-function-error")) {
        complain!("task-local: the function answered with an error ({})", error.trim());
    }
    say!("{payload}");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn s3_keys_are_url_encoded_as_s3_sends_them() {
        assert_eq!(super::s3_key("uploads/red flower.jpg"), "uploads/red+flower.jpg");
        assert_eq!(super::s3_key("résumé+cv.pdf"), "r%C3%A9sum%C3%A9%2Bcv.pdf");
    }
}
