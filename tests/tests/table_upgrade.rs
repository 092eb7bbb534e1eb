//! `create_table` on tables an earlier version made, against DynamoDB
//! Local: each missing index added once the one before is ACTIVE, and the
//! failed calls of the older layout backfilled.
//!
//! Each test starts a DynamoDB Local of its own (`scripts/dynamodb-local`,
//! stopped by PID when the test ends): in the suite's shared one, after the
//! other tests' thousands of writes, DynamoDB Local left the indexes these
//! tests add `CREATING` for good (seen three times in a row, while a fresh
//! instance makes them ACTIVE in about half a second), and five such tables
//! then refuse any new index with `LimitExceededException`.

mod common;

use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, BillingMode, TimeToLiveStatus};
use task_runtime::store::dynamodb::{DynamoStore, TableProgress};

/// A DynamoDB Local of this test's own, stopped when dropped.
struct OwnDynamo {
    client: aws_sdk_dynamodb::Client,
    pid: String,
}

impl OwnDynamo {
    fn start() -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/dynamodb-local");
        let out = std::process::Command::new(script).arg("start").stderr(std::process::Stdio::inherit()).output().expect("run scripts/dynamodb-local start");
        let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let (endpoint, pid) = line.split_once(' ').unwrap_or_else(|| panic!("scripts/dynamodb-local start printed {line:?}"));
        OwnDynamo { client: aws_sdk_dynamodb::Client::new(&common::sdk_config(endpoint)), pid: pid.to_owned() }
    }
}

impl Drop for OwnDynamo {
    fn drop(&mut self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/dynamodb-local");
        let _ = std::process::Command::new(script).args(["stop", &self.pid]).status();
    }
}

#[tokio::test]
async fn create_table_adds_the_indexes_a_table_made_by_an_earlier_version_lacks() {
    let own = tokio::task::spawn_blocking(OwnDynamo::start).await.expect("started");
    use aws_sdk_dynamodb::types::{AttributeDefinition, KeySchemaElement, KeyType, ScalarAttributeType};
    use task_runtime::store::dynamodb::{FAILED_INDEX, PARENT_INDEX, RECENT_INDEX};
    let client = own.client.clone();
    let indexes_of = |table: String| {
        let client = client.clone();
        async move {
            let t = client.describe_table().table_name(table).send().await.expect("describe");
            let mut names: Vec<String> = t.table().map(|t| t.global_secondary_indexes().iter().filter_map(|i| i.index_name().map(str::to_owned)).collect()).unwrap_or_default();
            names.sort_unstable();
            names
        }
    };
    let key = |name: &str, t: KeyType| KeySchemaElement::builder().attribute_name(name).key_type(t).build().expect("key");
    let attr = |name: &str, t: ScalarAttributeType| AttributeDefinition::builder().attribute_name(name).attribute_type(t).build().expect("attr");
    let index = |name: &str, hash: &str, range: &str| {
        aws_sdk_dynamodb::types::GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key(hash, KeyType::Hash))
            .key_schema(key(range, KeyType::Range))
            .projection(aws_sdk_dynamodb::types::Projection::builder().projection_type(aws_sdk_dynamodb::types::ProjectionType::KeysOnly).build())
            .build()
            .expect("index")
    };
    let old_table = |failed: bool, parent: bool| {
        let client = client.clone();
        async move {
            let table = common::table_name("old");
            let mut create = client.create_table().table_name(&table).billing_mode(BillingMode::PayPerRequest).key_schema(key("id", KeyType::Hash)).attribute_definitions(attr("id", ScalarAttributeType::S));
            if failed {
                create = create.attribute_definitions(attr("failed_shard", ScalarAttributeType::S)).attribute_definitions(attr("updated_at_ms", ScalarAttributeType::N)).global_secondary_indexes(index(FAILED_INDEX, "failed_shard", "updated_at_ms"));
            }
            if parent {
                create = create.attribute_definitions(attr("parent", ScalarAttributeType::S)).attribute_definitions(attr("created_at_ms", ScalarAttributeType::N)).global_secondary_indexes(index(PARENT_INDEX, "parent", "created_at_ms"));
            }
            create.send().await.expect("an old table");
            table
        }
    };
    let upgrade = |table: String| {
        let client = own.client.clone();
        async move { DynamoStore::with_client(client, table).create_table().await }
    };

    // One index missing: it is added, and TTL is on.
    let table = old_table(true, true).await;
    upgrade(table.clone()).await.expect("upgrade");
    assert_eq!(indexes_of(table.clone()).await, [RECENT_INDEX, PARENT_INDEX, FAILED_INDEX]);
    let ttl = client.describe_time_to_live().table_name(&table).send().await.expect("ttl");
    assert_eq!(ttl.time_to_live_description().and_then(|d| d.time_to_live_status()), Some(&TimeToLiveStatus::Enabled));

    // Made by the version before this one (the failed index only): each
    // missing index is added once the one before is ACTIVE (DynamoDB creates
    // one index of a table at a time), and told as it goes.
    let table = old_table(true, false).await;
    let mut seen = Vec::new();
    let report = DynamoStore::with_client(own.client.clone(), table.clone())
        .create_or_upgrade_table(Duration::from_secs(60), &mut |p| seen.push(p.clone()))
        .await
        .expect("every index added, one at a time");
    assert_eq!(report.added, [PARENT_INDEX, RECENT_INDEX]);
    assert_eq!(indexes_of(table.clone()).await, [RECENT_INDEX, PARENT_INDEX, FAILED_INDEX]);
    let added: Vec<&str> = seen.iter().filter_map(|p| match p { TableProgress::Adding { index } => Some(index.as_str()), _ => None }).collect();
    assert_eq!(added, [PARENT_INDEX, RECENT_INDEX]);
    assert_eq!(report.backfilled, None, "the failed index was there: nothing to backfill");

    // Made with no index at all: all three, and nothing more on a second run.
    let table = old_table(false, false).await;
    let store = DynamoStore::with_client(own.client.clone(), table.clone());
    let report = store.create_or_upgrade_table(Duration::from_secs(60), &mut |_| {}).await.expect("upgrade");
    assert_eq!(report.added, [FAILED_INDEX, PARENT_INDEX, RECENT_INDEX]);
    assert_eq!(indexes_of(table.clone()).await, [RECENT_INDEX, PARENT_INDEX, FAILED_INDEX]);
    let again = store.create_or_upgrade_table(Duration::from_secs(60), &mut |_| {}).await.expect("whole");
    assert!(again.added.is_empty() && !again.created, "{again:?}");
}

/// A table of the older layout (the index of failed calls by `failed_day`):
/// upgrading it adds the sharded index and backfills the calls that failed
/// under the older layout, so that `failed_since` lists them; a call that
/// is not failed, or is indexed already, is left as it is.
#[tokio::test]
async fn create_table_backfills_the_failed_calls_of_the_older_layout_into_the_failed_index() {
    let own = tokio::task::spawn_blocking(OwnDynamo::start).await.expect("started");
    use aws_sdk_dynamodb::types::{AttributeDefinition, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType, ScalarAttributeType};
    let client = own.client.clone();
    let table = common::table_name("older-layout");
    let key = |name: &str, t: KeyType| KeySchemaElement::builder().attribute_name(name).key_type(t).build().expect("key");
    let attr = |name: &str, t: ScalarAttributeType| AttributeDefinition::builder().attribute_name(name).attribute_type(t).build().expect("attr");
    let older = GlobalSecondaryIndex::builder()
        .index_name("failed-by-day")
        .key_schema(key("failed_day", KeyType::Hash))
        .key_schema(key("updated_at_ms", KeyType::Range))
        .projection(Projection::builder().projection_type(ProjectionType::All).build())
        .build()
        .expect("index");
    client
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("id", KeyType::Hash))
        .attribute_definitions(attr("id", ScalarAttributeType::S))
        .attribute_definitions(attr("failed_day", ScalarAttributeType::S))
        .attribute_definitions(attr("updated_at_ms", ScalarAttributeType::N))
        .global_secondary_indexes(older)
        .send()
        .await
        .expect("an older table");
    let now = common::now_ms();
    let put = |id: String, status: &str| {
        let client = client.clone();
        let table = table.clone();
        let status = status.to_owned();
        async move {
            let s = |v: &str| AttributeValue::S(v.to_owned());
            let n = |v: u64| AttributeValue::N(v.to_string());
            client
                .put_item()
                .table_name(table)
                .item("id", s(&id))
                .item("task", s("older.task"))
                .item("status", s(&status))
                .item("attempts", n(3))
                .item("created_at_ms", n(now - 1_000))
                .item("updated_at_ms", n(now))
                .item("failed_day", s(&task_runtime::store::dynamodb::failure_shard(&id, now)[..10]))
                .item("ttl", n(now / 1000 + 3600))
                .send()
                .await
                .expect("put")
        }
    };
    let failed: Vec<String> = (0..30).map(|i| format!("older-failed-{i}-{}", uuid::Uuid::new_v4())).collect();
    for id in &failed {
        put(id.clone(), "failed").await;
    }
    put(format!("older-complete-{}", uuid::Uuid::new_v4()), "complete").await;

    let store = DynamoStore::with_client(own.client.clone(), table.clone());
    assert!(store.failed_since(now - 60_000, 100).await.is_err(), "no sharded index yet");
    let mut pages = 0;
    let report = store
        .create_or_upgrade_table(Duration::from_secs(60), &mut |p| pages += u32::from(matches!(p, TableProgress::Backfilling { .. })))
        .await
        .expect("upgrade");
    assert_eq!(report.backfilled, Some(30), "{report:?}");
    assert!(pages >= 2, "told before and after the scan's page(s)");
    let mut listed: Vec<String> = store.failed_since(now - 60_000, 100).await.expect("listed").into_iter().map(|c| c.id).collect();
    listed.sort_unstable();
    let mut expected = failed.clone();
    expected.sort_unstable();
    assert_eq!(listed, expected, "every older failed call is listed, the complete one is not");
    // A second run finds nothing left to backfill (the older index is still there).
    let again = store.create_or_upgrade_table(Duration::from_secs(60), &mut |_| {}).await.expect("again");
    assert_eq!(again.backfilled, Some(0));
}

