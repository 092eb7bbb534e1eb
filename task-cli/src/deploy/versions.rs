//! A function's published versions and its alias `live`, which every
//! caller and schedule invokes: `tasks update` publishes a version and
//! moves the alias to it, `tasks rollback` moves it back.
//!
//! <https://docs.aws.amazon.com/lambda/latest/dg/configuration-aliases.html>

use std::time::Duration;

use aws_sdk_lambda::error::ProvideErrorMetadata as _;

use crate::Problem;
use crate::deployed::sdk_error;
use crate::template::ALIAS;

/// One published version.
#[derive(Debug, Clone)]
pub(crate) struct Version {
    pub(crate) number: u64,
    /// When it was published (Lambda's LastModified of the version).
    pub(crate) published: String,
    pub(crate) description: String,
}

/// The version `live` serves on function `name`; `None` when it has no such alias.
pub(crate) async fn live(lambda: &aws_sdk_lambda::Client, name: &str) -> Result<Option<u64>, Problem> {
    match lambda.get_alias().function_name(name).name(ALIAS).send().await {
        Ok(a) => Ok(a.function_version().and_then(|v| v.parse().ok())),
        Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(None),
        Err(e) => Err(Problem(format!("cannot read alias `{ALIAS}` of {name}: {}", sdk_error(&e)))),
    }
}

/// The version `live` serves on each of `functions`, all of which must have the alias.
pub(crate) async fn live_all<'a>(lambda: &aws_sdk_lambda::Client, functions: impl Iterator<Item = &'a str>) -> Result<Vec<(&'a str, u64)>, Problem> {
    let mut all = Vec::new();
    for name in functions {
        match live(lambda, name).await? {
            Some(v) => all.push((name, v)),
            None => {
                return Err(Problem(format!(
                    "function {name} has no alias `{ALIAS}`, which callers and schedules invoke: its stack made none \
                     (an implementation without AWS::Lambda::Alias in CloudFormation, or it was deleted by hand); `tasks deploy` makes it; nothing was changed"
                )));
            }
        }
    }
    Ok(all)
}

/// The published versions of function `name`, oldest first (not `$LATEST`).
pub(crate) async fn published(lambda: &aws_sdk_lambda::Client, name: &str) -> Result<Vec<Version>, Problem> {
    let mut all = Vec::new();
    let mut pages = lambda.list_versions_by_function().function_name(name).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| Problem(format!("cannot list the versions of {name}: {}", sdk_error(&e))))?;
        for v in page.versions() {
            if let Some(number) = v.version().and_then(|v| v.parse().ok()) {
                all.push(Version { number, published: v.last_modified().unwrap_or_default().to_owned(), description: v.description().unwrap_or_default().to_owned() });
            }
        }
    }
    all.sort_by_key(|v| v.number);
    Ok(all)
}

/// The version `n` published versions before `from` in `versions`.
pub(crate) fn back<'a>(versions: &'a [Version], from: u64, n: u32, name: &str) -> Result<&'a Version, Problem> {
    let at = versions.iter().position(|v| v.number == from).ok_or_else(|| Problem(format!("{name}: `{ALIAS}` serves version {from}, which is not among its published versions")))?;
    let n = n as usize;
    if n > at {
        let first = versions.first().map_or(from, |v| v.number);
        return Err(Problem(format!(
            "{name}: there is no version {n} before version {from}: {at} published version(s) come before it (the first is {first}); nothing was changed"
        )));
    }
    Ok(&versions[at - n])
}

/// Point `live` of function `name` at `version`.
pub(crate) async fn point(lambda: &aws_sdk_lambda::Client, name: &str, version: u64) -> Result<(), Problem> {
    lambda
        .update_alias()
        .function_name(name)
        .name(ALIAS)
        .function_version(version.to_string())
        .send()
        .await
        .map_err(|e| Problem(format!("cannot move alias `{ALIAS}` of {name} to version {version}: {}", sdk_error(&e))))?;
    Ok(())
}

/// New code for function `name` from `s3://bucket/key`, waited for, and
/// published as a version; its number.
pub(crate) async fn publish_code(lambda: &aws_sdk_lambda::Client, name: &str, bucket: &str, key: &str, description: &str) -> Result<u64, Problem> {
    let updated = lambda
        .update_function_code()
        .function_name(name)
        .s3_bucket(bucket)
        .s3_key(key)
        .send()
        .await
        .map_err(|e| Problem(format!("cannot update the code of {name}: {}", sdk_error(&e))))?;
    // An update is applied in the background; a version is published from
    // what it leaves. https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html
    for _ in 0..150 {
        let c = lambda.get_function_configuration().function_name(name).send().await.map_err(|e| Problem(format!("cannot read {name}: {}", sdk_error(&e))))?;
        match c.last_update_status().map(|s| s.as_str()) {
            Some("InProgress") => tokio::time::sleep(Duration::from_secs(2)).await,
            Some("Failed") => return Err(Problem(format!("Lambda could not apply the new code of {name}: {}", c.last_update_status_reason().unwrap_or_default()))),
            _ => break,
        }
    }
    let mut publish = lambda.publish_version().function_name(name).description(description);
    // Published only if the code is still what this update put there.
    if let Some(sha) = updated.code_sha256() {
        publish = publish.code_sha256(sha);
    }
    let v = publish.send().await.map_err(|e| Problem(format!("cannot publish a version of {name}: {}", sdk_error(&e))))?;
    v.version().and_then(|v| v.parse().ok()).ok_or_else(|| Problem(format!("Lambda published a version of {name} with no number")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(numbers: &[u64]) -> Vec<Version> {
        numbers.iter().map(|&number| Version { number, published: format!("t{number}"), description: String::new() }).collect()
    }

    #[test]
    fn back_counts_published_versions_and_stops_at_the_first() {
        let v = versions(&[1, 2, 4, 7]);
        assert_eq!(back(&v, 7, 1, "f").expect("one back").number, 4, "a version deleted by hand is skipped");
        assert_eq!(back(&v, 7, 3, "f").expect("three back").number, 1);
        let Problem(why) = back(&v, 7, 4, "f").expect_err("past the first");
        assert!(why.contains("no version 4 before version 7") && why.contains("the first is 1"), "{why}");
        assert!(back(&v, 3, 1, "f").is_err(), "a version not published is named");
    }
}
