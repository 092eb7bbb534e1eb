//! `tasks tree`: the calls under a call, level by level, from the index
//! of calls by parent.

use serde_json::{Value, json};
use task_runtime::{AsyncResponse, get_async_response, get_children};

use crate::cli::TreeArgs;
use crate::render::exit_of;
use crate::setup::{install, store_problem};
use crate::{Exit, Problem};

/// One call and the calls it sent.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) id: String,
    pub(crate) response: Option<AsyncResponse>,
    pub(crate) children: Vec<Node>,
    /// Children left out: past `--depth`, or past `--limit` calls in all.
    pub(crate) more: bool,
}

pub(crate) async fn tree(a: TreeArgs) -> Result<Exit, Problem> {
    install(None)?;
    let root = read_tree(&a.id, a.depth, a.limit).await?;
    if a.json {
        println!("{}", json_of(&root));
    } else {
        print!("{}", text_of(&root));
    }
    Ok(match &root.response {
        None => Exit::Unknown,
        Some(_) => worst(&root),
    })
}

/// Read the tree under `id`: at most `depth` levels below it and `limit`
/// calls in all, one query per call that has children.
pub(crate) async fn read_tree(id: &str, depth: u32, limit: usize) -> Result<Node, Problem> {
    let response = get_async_response(id).await.map_err(store_problem)?;
    let mut root = Node { id: id.to_owned(), response, children: Vec::new(), more: false };
    let mut budget = limit;
    // Breadth first, so that a limit keeps the levels nearest the root.
    let mut level: Vec<Vec<usize>> = vec![Vec::new()];
    for _ in 0..depth {
        let mut next = Vec::new();
        for path in &level {
            let node = at(&mut root, path);
            if budget == 0 {
                node.more = true;
                continue;
            }
            let found = get_children(&node.id, budget + 1).await.map_err(store_problem)?;
            node.more = found.len() > budget;
            for (i, c) in found.into_iter().take(budget).enumerate() {
                node.children.push(Node { id: c.id, response: Some(c.response), children: Vec::new(), more: false });
                let mut p = path.clone();
                p.push(i);
                next.push(p);
            }
            budget -= node.children.len();
        }
        if next.is_empty() {
            return Ok(root);
        }
        level = next;
    }
    // Past the depth: say whether anything is below.
    for path in &level {
        let node = at(&mut root, path);
        node.more = !get_children(&node.id, 1).await.map_err(store_problem)?.is_empty();
    }
    Ok(root)
}

fn at<'a>(root: &'a mut Node, path: &[usize]) -> &'a mut Node {
    path.iter().fold(root, |n, i| &mut n.children[*i])
}

/// The worst exit of the calls of a tree.
fn worst(n: &Node) -> Exit {
    n.children.iter().map(worst).fold(exit_of(n.response.as_ref()), Exit::max)
}

/// A tree as JSON: each call as `tasks status --json` prints it, with `children`.
pub(crate) fn json_of(n: &Node) -> Value {
    let mut v = crate::render::json_of(&n.id, n.response.as_ref());
    v["children"] = Value::Array(n.children.iter().map(json_of).collect());
    if n.more {
        v["more"] = json!(true);
    }
    v
}

/// A tree as text, one call a line, drawn with box characters.
pub(crate) fn text_of(root: &Node) -> String {
    let mut out = format!("{}\n", line(root));
    draw(root, "", &mut out);
    out
}

fn draw(n: &Node, prefix: &str, out: &mut String) {
    let count = n.children.len() + usize::from(n.more);
    for (i, c) in n.children.iter().enumerate() {
        let last = i + 1 == count;
        out.push_str(&format!("{prefix}{}{}\n", if last { "└─ " } else { "├─ " }, line(c)));
        draw(c, &format!("{prefix}{}", if last { "   " } else { "│  " }), out);
    }
    if n.more {
        out.push_str(&format!("{prefix}└─ … (more: raise --depth or --limit)\n"));
    }
}

fn line(n: &Node) -> String {
    match &n.response {
        None => format!("{}  unknown (no such call, or it expired)", n.id),
        Some(r) => {
            let mut l = format!("{}  {}  {}", n.id, r.task, r.status);
            if r.attempts > 1 {
                l.push_str(&format!(" after {} attempts", r.attempts));
            }
            if r.stale {
                l.push_str(" (stale)");
            }
            if let Some(f) = &r.error {
                l.push_str(&format!(": {}: {}", f.kind, f.message.lines().next().unwrap_or_default()));
            }
            l
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: &str, status: &str, children: Vec<Node>) -> Node {
        let response = serde_json::from_value(json!({
            "status": status, "response": null, "error": null, "task": "t", "attempts": 1, "created_at": 0, "updated_at": 0,
        }))
        .ok();
        Node { id: id.into(), response, children, more: false }
    }

    #[test]
    fn a_tree_is_drawn_with_its_branches_and_its_worst_exit() {
        let mut b = call("b", "failed", vec![call("b1", "complete", vec![])]);
        b.more = true;
        let root = call("root", "complete", vec![call("a", "complete", vec![]), b]);
        assert_eq!(
            text_of(&root),
            "root  t  complete\n├─ a  t  complete\n└─ b  t  failed\n   ├─ b1  t  complete\n   └─ … (more: raise --depth or --limit)\n"
        );
        assert_eq!(worst(&root), Exit::Failed);
        assert_eq!(json_of(&root)["children"][1]["children"][0]["id"], "b1");
        assert_eq!(json_of(&root)["children"][1]["more"], true);
    }
}
