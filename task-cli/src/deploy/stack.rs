//! A stage's CloudFormation stack: what state it is in (and what that
//! state means for the user), a change made through a change set and
//! followed event by event, and its deletion.
//!
//! Stack states: <https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/view-stack-events.html>
//! Change sets: <https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateChangeSet.html>

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_cloudformation::error::ProvideErrorMetadata as _;
use aws_sdk_cloudformation::types::{Capability, ChangeSetStatus, ChangeSetType, Parameter, StackEvent};

use crate::Problem;
use crate::deployed::sdk_error;

/// How often a change set and a stack's events are read while they move.
const POLL: Duration = Duration::from_secs(2);

/// A stack as DescribeStacks shows it.
#[derive(Debug)]
pub(crate) struct StackState {
    pub(crate) id: String,
    pub(crate) status: String,
    pub(crate) parameters: BTreeMap<String, String>,
    pub(crate) outputs: Vec<(String, String)>,
}

impl StackState {
    /// Whether it is moving (a change, a rollback or a deletion under way);
    /// REVIEW_IN_PROGRESS is a stack whose first change set was never run.
    pub(crate) fn busy(&self) -> bool {
        self.status.ends_with("_IN_PROGRESS") && self.status != "REVIEW_IN_PROGRESS"
    }

    /// Whether a deploy must not touch it: moving, or left where only a
    /// deletion (or CloudFormation's own recovery) gets it out.
    pub(crate) fn blocks_deploy(&self) -> bool {
        self.busy() || matches!(self.status.as_str(), "ROLLBACK_COMPLETE" | "ROLLBACK_FAILED" | "CREATE_FAILED" | "DELETE_FAILED" | "UPDATE_ROLLBACK_FAILED")
    }

    /// Whether it holds a deployment (created, updated, or put back after a failed update).
    pub(crate) fn serving(&self) -> bool {
        matches!(self.status.as_str(), "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "UPDATE_ROLLBACK_COMPLETE" | "IMPORT_COMPLETE" | "IMPORT_ROLLBACK_COMPLETE")
    }
}

/// What state `status` leaves a stage in, and what to do next.
pub(crate) fn explain(status: &str, stage: &str) -> String {
    match status {
        "ROLLBACK_COMPLETE" | "ROLLBACK_FAILED" | "CREATE_FAILED" => format!(
            "its creation failed and CloudFormation took back what it had made; a stack in {status} cannot be updated, only deleted: \
             run `tasks undeploy {stage}`, then `tasks deploy {stage}` again"
        ),
        "UPDATE_ROLLBACK_COMPLETE" => "the update failed and CloudFormation put the stack back as it was: the stage still serves its previous deployment".to_owned(),
        "UPDATE_ROLLBACK_FAILED" => format!(
            "the update failed and so did putting it back: fix what the events above name, then run \
             `aws cloudformation continue-update-rollback --stack-name STACK`, and `tasks deploy {stage}` again"
        ),
        "DELETE_FAILED" => format!("its deletion failed: fix what the events above name, and run `tasks undeploy {stage}` again"),
        "REVIEW_IN_PROGRESS" => format!("no change set of it ever ran: it holds nothing, and `tasks deploy {stage}` creates it"),
        s if s.ends_with("_IN_PROGRESS") => "a change to it is under way: wait for it to end (the console's Events tab shows it)".to_owned(),
        _ => "it serves the stage".to_owned(),
    }
}

/// The stack `name`, or `None` when there is none.
pub(crate) async fn describe(cfn: &aws_sdk_cloudformation::Client, name: &str) -> Result<Option<StackState>, Problem> {
    let out = match cfn.describe_stacks().stack_name(name).send().await {
        Ok(out) => out,
        // "Stack with id NAME does not exist"
        Err(e) if e.code() == Some("ValidationError") && e.message().is_some_and(|m| m.contains("does not exist")) => return Ok(None),
        Err(e) => return Err(Problem(format!("cannot read stack `{name}`: {}", sdk_error(&e)))),
    };
    let Some(s) = out.stacks().first() else { return Ok(None) };
    Ok(Some(StackState {
        id: s.stack_id().unwrap_or(name).to_owned(),
        status: s.stack_status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
        parameters: s.parameters().iter().filter_map(|p| Some((p.parameter_key()?.to_owned(), p.parameter_value().unwrap_or_default().to_owned()))).collect(),
        outputs: s.outputs().iter().filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value().unwrap_or_default().to_owned()))).collect(),
    }))
}

/// The stack `name`, which must exist and hold a deployment.
pub(crate) async fn serving(cfn: &aws_sdk_cloudformation::Client, name: &str, stage: &str) -> Result<StackState, Problem> {
    match describe(cfn, name).await? {
        None => Err(Problem(format!("stage `{stage}` is not deployed (no stack `{name}`): run `tasks deploy {stage}`"))),
        Some(s) if !s.serving() => Err(Problem(format!("stack `{name}` is {}: {}", s.status, explain(&s.status, stage)))),
        Some(s) => Ok(s),
    }
}

/// The template of a change.
pub(crate) enum Template<'a> {
    /// A new template.
    Body(&'a str),
    /// The stack's own: only parameters change.
    Previous,
}

/// A parameter of a change.
pub(crate) enum Param {
    Value(String),
    /// The value the stack has.
    Previous,
}

/// What a change came to.
pub(crate) enum Applied {
    /// CloudFormation found nothing to change.
    Unchanged,
    /// The change ran, and the stack ended in `status`.
    Ran { status: String, failure: Option<String> },
}

/// Make the change (`create` for a new stack) through a change set, run
/// it, and print the stack's events as they come until it ends.
pub(crate) async fn apply(cfn: &aws_sdk_cloudformation::Client, name: &str, create: bool, template: Template<'_>, params: Vec<(&str, Param)>) -> Result<Applied, Problem> {
    let change_set = format!("tasks-{}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis());
    let mut req = cfn
        .create_change_set()
        .stack_name(name)
        .change_set_name(&change_set)
        .change_set_type(if create { ChangeSetType::Create } else { ChangeSetType::Update })
        // The template makes an IAM role (no name of its own).
        .capabilities(Capability::CapabilityIam)
        .description("tasks deploy");
    req = match template {
        Template::Body(body) => req.template_body(body),
        Template::Previous => req.use_previous_template(true),
    };
    for (key, value) in params {
        let p = Parameter::builder().parameter_key(key);
        req = req.parameters(match value {
            Param::Value(v) => p.parameter_value(v).build(),
            Param::Previous => p.use_previous_value(true).build(),
        });
    }
    req.send().await.map_err(|e| Problem(format!("CloudFormation refused the change set of stack `{name}`: {}", sdk_error(&e))))?;
    // Wait for CloudFormation to work the change set out.
    loop {
        let cs = cfn
            .describe_change_set()
            .stack_name(name)
            .change_set_name(&change_set)
            .send()
            .await
            .map_err(|e| Problem(format!("cannot read change set {change_set} of stack `{name}`: {}", sdk_error(&e))))?;
        match cs.status() {
            Some(ChangeSetStatus::CreateComplete) => {
                let changes = cs.changes();
                eprintln!("change set {change_set}: {} change(s)", changes.len());
                for c in changes {
                    if let Some(r) = c.resource_change() {
                        eprintln!(
                            "  {:<8} {:<34} {}{}",
                            r.action().map(|a| a.as_str()).unwrap_or_default(),
                            r.resource_type().unwrap_or_default(),
                            r.logical_resource_id().unwrap_or_default(),
                            match r.replacement().map(|r| r.as_str()) {
                                Some("True") => " (replaced)",
                                _ => "",
                            }
                        );
                    }
                }
                break;
            }
            Some(ChangeSetStatus::Failed) => {
                let reason = cs.status_reason().unwrap_or_default().to_owned();
                let _ = cfn.delete_change_set().stack_name(name).change_set_name(&change_set).send().await;
                // "The submitted information didn't contain changes. Submit different information to create a change set."
                if reason.contains("didn't contain changes") || reason.contains("No updates are to be performed") {
                    return Ok(Applied::Unchanged);
                }
                return Err(Problem(format!("CloudFormation could not make the change set of stack `{name}`: {reason}; nothing was changed")));
            }
            _ => tokio::time::sleep(POLL).await,
        }
    }
    let seen = event_ids(cfn, name).await?;
    // A first deploy that fails takes back all it made, the retained table
    // and log groups too, so that the next try does not find them in its way.
    // https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ExecuteChangeSet.html
    cfn.execute_change_set()
        .stack_name(name)
        .change_set_name(&change_set)
        .retain_except_on_create(true)
        .send()
        .await
        .map_err(|e| Problem(format!("cannot run change set {change_set} of stack `{name}`: {}", sdk_error(&e))))?;
    let (status, failure) = follow(cfn, name, seen).await?;
    Ok(Applied::Ran { status, failure })
}

/// The ids of the stack's events so far (the newest page), not to be shown again.
async fn event_ids(cfn: &aws_sdk_cloudformation::Client, stack: &str) -> Result<std::collections::HashSet<String>, Problem> {
    let out = cfn.describe_stack_events().stack_name(stack).send().await.map_err(|e| Problem(format!("cannot read the events of stack `{stack}`: {}", sdk_error(&e))))?;
    Ok(out.stack_events().iter().filter_map(|e| e.event_id().map(ToOwned::to_owned)).collect())
}

/// One event as a progress line.
fn line(e: &StackEvent) -> String {
    let at = e.timestamp().and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok()).unwrap_or_default();
    let at = at.get(11..19).unwrap_or_default();
    let reason = e.resource_status_reason().map(|r| format!("  {r}")).unwrap_or_default();
    format!(
        "  {at}  {:<20} {:<34} {}{reason}",
        e.resource_status().map(|s| s.as_str()).unwrap_or_default(),
        e.resource_type().unwrap_or_default(),
        e.logical_resource_id().unwrap_or_default()
    )
}

/// Print the stack's new events, oldest first, until it stops moving; its
/// last state, and the first resource that failed with CloudFormation's reason.
pub(crate) async fn follow(cfn: &aws_sdk_cloudformation::Client, stack: &str, mut seen: std::collections::HashSet<String>) -> Result<(String, Option<String>), Problem> {
    let mut failure: Option<String> = None;
    loop {
        let events = cfn.describe_stack_events().stack_name(stack).send().await.map_err(|e| Problem(format!("cannot read the events of stack `{stack}`: {}", sdk_error(&e))))?;
        let new: Vec<&StackEvent> = events.stack_events().iter().filter(|e| e.event_id().is_some_and(|id| !seen.contains(id))).collect();
        for e in new.iter().rev() {
            seen.insert(e.event_id().unwrap_or_default().to_owned());
            eprintln!("{}", line(e));
            let status = e.resource_status().map(|s| s.as_str()).unwrap_or_default();
            let reason = e.resource_status_reason().unwrap_or_default();
            // The first failure is the cause; those after it are CloudFormation cancelling the rest.
            if failure.is_none() && status.ends_with("_FAILED") && !reason.contains("cancelled") && e.resource_type() != Some("AWS::CloudFormation::Stack") {
                failure = Some(format!("{} ({}): {reason}", e.logical_resource_id().unwrap_or_default(), e.resource_type().unwrap_or_default()));
            }
        }
        let state = cfn.describe_stacks().stack_name(stack).send().await.map_err(|e| Problem(format!("cannot read stack `{stack}`: {}", sdk_error(&e))))?;
        let status = state.stacks().first().and_then(|s| s.stack_status()).map(|s| s.as_str().to_owned()).unwrap_or_default();
        if !status.ends_with("_IN_PROGRESS") {
            return Ok((status, failure));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Delete the stack (by its id, which still answers once it is gone) and
/// follow it; its last state.
pub(crate) async fn delete(cfn: &aws_sdk_cloudformation::Client, stack: &StackState) -> Result<(String, Option<String>), Problem> {
    let seen = event_ids(cfn, &stack.id).await?;
    cfn.delete_stack().stack_name(&stack.id).send().await.map_err(|e| Problem(format!("cannot delete stack `{}`: {}", stack.id, sdk_error(&e))))?;
    match follow(cfn, &stack.id, seen).await {
        Ok(end) => Ok(end),
        // An implementation that forgets a deleted stack at once (moto) answers "does not exist".
        Err(_) if describe(cfn, &stack.id).await?.is_none() => Ok(("DELETE_COMPLETE".to_owned(), None)),
        Err(e) => Err(e),
    }
}

/// The physical ids of the stack's resources, by type: what a deletion keeps.
pub(crate) async fn resources(cfn: &aws_sdk_cloudformation::Client, stack: &str) -> Result<Vec<(String, String, String)>, Problem> {
    let mut all = Vec::new();
    let mut pages = cfn.list_stack_resources().stack_name(stack).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| Problem(format!("cannot list the resources of stack `{stack}`: {}", sdk_error(&e))))?;
        for r in page.stack_resource_summaries() {
            all.push((r.resource_type().unwrap_or_default().to_owned(), r.logical_resource_id().unwrap_or_default().to_owned(), r.physical_resource_id().unwrap_or_default().to_owned()));
        }
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(status: &str) -> StackState {
        StackState { id: "id".into(), status: status.into(), parameters: BTreeMap::new(), outputs: Vec::new() }
    }

    #[test]
    fn a_stack_a_deploy_cannot_update_is_explained_with_the_command_that_recovers_it() {
        for status in ["ROLLBACK_COMPLETE", "CREATE_FAILED", "UPDATE_IN_PROGRESS", "UPDATE_ROLLBACK_FAILED", "DELETE_FAILED"] {
            assert!(state(status).blocks_deploy(), "{status}");
        }
        for status in ["CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "REVIEW_IN_PROGRESS"] {
            assert!(!state(status).blocks_deploy(), "{status}");
        }
        let why = explain("ROLLBACK_COMPLETE", "dev");
        assert!(why.contains("cannot be updated, only deleted") && why.contains("`tasks undeploy dev`, then `tasks deploy dev`"), "{why}");
        assert!(explain("UPDATE_ROLLBACK_FAILED", "dev").contains("continue-update-rollback"));
        assert!(explain("UPDATE_ROLLBACK_COMPLETE", "dev").contains("still serves its previous deployment"));
        assert!(state("UPDATE_ROLLBACK_COMPLETE").serving() && !state("ROLLBACK_COMPLETE").serving());
    }
}
