//! Helpers shared by the integration tests: the DynamoDB Local endpoint
//! that `scripts/test` starts, and SDK clients pointed at loopback.
#![allow(dead_code, unreachable_pub)]

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};

/// The DynamoDB Local endpoint; fails the test, saying how to get one, when absent.
pub fn dynamodb_endpoint() -> String {
    match std::env::var("TASK_TEST_DYNAMODB_ENDPOINT") {
        Ok(e) if !e.is_empty() => e,
        _ => panic!(
            "TASK_TEST_DYNAMODB_ENDPOINT is not set: this test needs DynamoDB Local. Run the suite with \
             `scripts/test` (it installs and starts DynamoDB Local), or start it yourself with \
             `scripts/dynamodb-local start` and export TASK_TEST_DYNAMODB_ENDPOINT=<the endpoint it prints>."
        ),
    }
}

/// An SDK configuration for loopback: static test credentials, us-east-1.
pub fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(Credentials::new(
            "test", "test", None, None, "tests",
        )))
        .endpoint_url(endpoint)
        .build()
}

/// A DynamoDB client for DynamoDB Local.
pub fn dynamodb() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&sdk_config(&dynamodb_endpoint()))
}

/// A table name no other test uses.
pub fn table_name(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
