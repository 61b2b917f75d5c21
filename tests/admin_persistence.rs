//! What the admin plane stores survives a restart of the proxy (`state.path` in a temp dir):
//! connections (secrets included, still never returned), their active flag, groups, invites
//! and the audit log. A stored connection logs in after the restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use reqwest::Method;
use serde_json::json;
use support::admin::{AdminStack, LOCAL, SECOND};
use support::browser::Browser;

#[tokio::test]
async fn admin_changes_survive_a_restart() {
    let mut stack = AdminStack::start(|_| {}).await;
    stack.create_second("Second OP").await;
    let inactive = json!({"id": "spare", "issuer": stack.op.issuer, "client_id": "spare-client",
                          "client_secret": "spare-secret-value", "active": false});
    let (status, _, raw) = stack
        .call(Method::POST, "connections", Some(inactive))
        .await;
    assert_eq!(status, 201, "{raw}");
    let group = Some(json!({"name": "ml-team"}));
    assert_eq!(stack.call(Method::POST, "groups", group).await.0, 201);
    let invite = Some(json!({"email": "dave@example.com"}));
    assert_eq!(stack.call(Method::POST, "invites", invite).await.0, 201);
    let (_, before, _) = stack.get("connections").await;

    stack.restart().await;

    let (status, after, raw) = stack.get("connections").await;
    assert_eq!(status, 200);
    assert!(!raw.contains("spare-secret-value") && !raw.contains(&stack.second_secret));
    let summary = |list: &serde_json::Value| -> Vec<(String, bool, String, bool)> {
        list["connections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["id"].as_str().unwrap().to_owned(),
                    c["active"].as_bool().unwrap(),
                    c["source"].as_str().unwrap().to_owned(),
                    c["client_secret_set"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(summary(&after), summary(&before));
    let ids: Vec<&str> = after["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [LOCAL, SECOND, "spare"]);
    assert_eq!(
        after["connections"][1]["created_at"],
        before["connections"][1]["created_at"]
    );

    // The stored secret still works: a login through the stored connection.
    Browser::new()
        .login(&stack.base_url, Some(SECOND), "alice", "alice-pw", None)
        .await
        .expect_success();
    let chooser = stack.login_page().await;
    assert!(
        chooser.body.contains("Second OP") && !chooser.body.contains("spare"),
        "{}",
        chooser.body
    );

    let (_, groups, _) = stack.get("groups").await;
    assert_eq!(groups["groups"][0]["name"], "ml-team");
    let (_, invites, _) = stack.get("invites").await;
    assert_eq!(invites["invites"][0]["email"], "dave@example.com");
    let (_, audit, _) = stack.get("audit").await;
    assert_eq!(audit["entries"].as_array().unwrap().len(), 4, "{audit}");
    let (_, users, _) = stack.get("users").await;
    assert_eq!(users["users"][0]["user"], "alice");
}
