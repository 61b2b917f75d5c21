//! ClearML Enterprise's SSO variables, with the exact names of ClearML's Keycloak and Ping
//! guides, given as the proxy's environment: they load, and they take effect in a real login
//! against a BadOp laid out as that IdP (admin mapping, the sign-up rule, PKCE, IdP logout,
//! debug logs).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::process::Command;

use serde_json::json;
use support::bad_op::{BadOp, BadUser, Layout, Target};
use support::browser::Browser;
use support::oidc_stack::{logged_in, login, query_param, BadStack};
use support::stack::Stack;

fn var(name: &str, value: impl Into<String>) -> (String, String) {
    (name.to_owned(), value.into())
}

const PING_ENV: &str = "0f3c5a7e-2b4d-4c6e-8f1a-3b5d7f9a1c2e";

/// The Keycloak guide's variables, names verbatim. `base_url` is "the token or authorization
/// endpoint before the protocol/openid-connect/... part" (so it ends with `/`).
fn keycloak_guide_env(bad: &BadOp) -> Vec<(String, String)> {
    vec![
        var(
            "CLEARML__services__login__sso__oauth_client__keycloak__base_url",
            bad.url("/realms/acme/"),
        ),
        var(
            "CLEARML__services__login__sso__oauth_client__keycloak__authorize_url",
            bad.url("/realms/acme/protocol/openid-connect/auth"),
        ),
        var(
            "CLEARML__services__login__sso__oauth_client__keycloak__access_token_url",
            bad.url("/realms/acme/protocol/openid-connect/token"),
        ),
        var(
            "CLEARML__secure__login__sso__oauth_client__keycloak__client_id",
            format!("\"{}\"", bad.client_id),
        ),
        var(
            "CLEARML__secure__login__sso__oauth_client__keycloak__client_secret",
            format!("\"{}\"", bad.client_secret),
        ),
        var(
            "CLEARML__secure__login__sso__oauth_client__keycloak__default_company",
            "\"d1bd92a3b039400cbafc60a7a5b1e52b\"",
        ),
        var(
            "CLEARML__services__login__sso__oauth_client__keycloak__groups__enabled",
            "true",
        ),
        var(
            "CLEARML__services__login__sso__oauth_client__keycloak__groups__claim",
            "groups",
        ),
        var(
            "CLEARML__services__login__sso__oauth_client__keycloak__groups__admins",
            "[\"ml-admins\"]",
        ),
        var(
            "CLEARML__services__login__sso__oauth_client__keycloak__groups__prohibit_user_signup_if_not_in_group",
            "true",
        ),
        var(
            "CLEARML__services__login__sso__oauth_client__keycloak__idp_logout",
            "true",
        ),
    ]
}

async fn keycloak_env_stack(more: Vec<(String, String)>) -> Stack {
    let stack = BadStack::new("keycloak", Layout::keycloak("acme"))
        .start_env(
            |_| serde_json::Value::Null,
            |bad| {
                let mut env = keycloak_guide_env(bad);
                env.extend(more);
                env
            },
            |c| {
                c["directory"] = json!({ "groups": ["ml-team"] });
            },
        )
        .await;
    stack.bad().set_jwt_access_tokens(true);
    stack
}

#[tokio::test]
async fn keycloak_guide_variables_load_and_take_effect() {
    let stack = keycloak_env_stack(Vec::new()).await;
    let bad = stack.bad();
    assert!(
        bad.hits("/realms/acme/.well-known/openid-configuration") >= 1,
        "{:?}",
        bad.requests()
    );
    // groups__admins: members of `ml-admins` are admins (the group need not exist locally).
    bad.set_user(BadUser {
        groups: vec!["ml-admins".into(), "ml-team".into()],
        ..BadUser::default()
    });
    let admin = logged_in(&stack, "keycloak").await;
    let me = stack.assert_logged_in(&admin).await;
    assert_eq!(me["provider"], "keycloak");
    assert_eq!(me["groups"], json!(["ml-admins", "ml-team"]));
    assert_eq!(me["admin"], true);
    assert_eq!(
        bad.last_authorize_param("redirect_uri"),
        Some(format!("{}/callback_keycloak", stack.proxy.public_url))
    );

    // groups__prohibit_user_signup_if_not_in_group: no group the proxy knows → refused.
    bad.set_user(BadUser {
        sub: "frank".into(),
        email: "frank@example.com".into(),
        groups: vec!["contractors".into()],
        ..BadUser::default()
    });
    let frank = Browser::new();
    let result = login(&stack, "keycloak", &frank).await;
    assert_eq!(result.status(), 403, "{}", result.response.body);
    stack.assert_no_session(&frank).await;

    // idp_logout: sign-out continues at Keycloak's end-session endpoint with the ID token.
    let page = admin
        .send(
            admin
                .client
                .post(stack.url("/_sso/logout"))
                .header("origin", stack.base()),
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let to = page.location().unwrap();
    assert_eq!(to.path(), "/realms/acme/protocol/openid-connect/logout");
    assert!(query_param(&to, "id_token_hint").is_some(), "{to}");
}

#[tokio::test]
async fn keycloak_guide_admin_role_variable_makes_role_holders_admins() {
    let stack = keycloak_env_stack(vec![var(
        "CLEARML__services__login__sso__oauth_client__keycloak__admin_role",
        "clearml-admin",
    )])
    .await;
    let bad = stack.bad();
    bad.set_extra_claims(
        Target::AccessToken,
        json!({ "realm_access": { "roles": ["clearml-admin", "offline_access"] } }),
    );
    let b = logged_in(&stack, "keycloak").await;
    let me = stack.assert_logged_in(&b).await;
    assert_eq!(me["groups"], json!(["ml-team", "qa"]));
    assert_eq!(me["admin"], true, "by role, not by group: {me}");
}

#[tokio::test]
async fn keycloak_guide_empty_admin_role_variable_disables_role_mapping() {
    let stack = keycloak_env_stack(vec![var(
        "CLEARML__services__login__sso__oauth_client__keycloak__admin_role",
        "",
    )])
    .await;
    stack.bad().set_extra_claims(
        Target::AccessToken,
        json!({ "realm_access": { "roles": ["admin", "clearml-admin"] } }),
    );
    let b = logged_in(&stack, "keycloak").await;
    assert_eq!(stack.assert_logged_in(&b).await["admin"], false);
}

/// The Ping guide's variables, names verbatim: only the authorize and token URLs.
fn ping_guide_env(bad: &BadOp) -> Vec<(String, String)> {
    vec![
        var(
            "CLEARML__services__login__sso__oauth_client__ping__authorize_url",
            bad.url(&format!("/{PING_ENV}/as/authorize")),
        ),
        var(
            "CLEARML__services__login__sso__oauth_client__ping__access_token_url",
            bad.url(&format!("/{PING_ENV}/as/token")),
        ),
        var(
            "CLEARML__secure__login__sso__oauth_client__ping__client_id",
            format!("\"{}\"", bad.client_id),
        ),
        var(
            "CLEARML__secure__login__sso__oauth_client__ping__client_secret",
            format!("\"{}\"", bad.client_secret),
        ),
        var(
            "CLEARML__services__login__sso__oauth_client__ping__code_challenge",
            "true",
        ),
        var(
            "CLEARML__services__login__sso__oauth_client__ping__code_challenge_method",
            "S256",
        ),
        var(
            "CLEARML__secure__login__sso__oauth_client__ping__default_company",
            "\"d1bd92a3b039400cbafc60a7a5b1e52b\"",
        ),
        var(
            "CLEARML__services__login__sso__oauth_client__ping__debug",
            "true",
        ),
        var(
            "CLEARML__services__login__sso__oauth_client__ping__groups__enabled",
            "true",
        ),
        var(
            "CLEARML__services__login__sso__oauth_client__ping__groups__claim",
            "memberOf",
        ),
        var(
            "CLEARML__services__login__sso__oauth_client__ping__groups__case_sensitive",
            "false",
        ),
        var(
            "CLEARML__services__login__sso__oauth_client__ping__groups__admins",
            "[\"ml-admins\"]",
        ),
        var(
            "CLEARML__services__login__sso__oauth_client__ping__groups__prohibit_user_signup_if_not_in_group",
            "true",
        ),
    ]
}

#[tokio::test]
async fn ping_guide_variables_load_and_take_effect() {
    let stack = BadStack::new("ping", Layout::ping(PING_ENV))
        .start_env(
            |_| serde_json::Value::Null,
            ping_guide_env,
            |c| {
                c["directory"] = json!({ "groups": ["data-science"] });
                c["log"]["level"] = json!("info");
            },
        )
        .await;
    let bad = stack.bad();
    // Issuer and keys discovered from the authorize URL's parent path.
    assert!(bad.hits(&format!("/{PING_ENV}/as/.well-known/openid-configuration")) >= 1);
    // groups__case_sensitive=false: `ML-Admins` matches `ml-admins`, `Data-Science` the
    // local `data-science` (so the sign-up rule admits the user).
    bad.set_extra_claims(
        Target::IdToken,
        json!({ "memberOf": ["ML-Admins", "Data-Science"] }),
    );
    let b = logged_in(&stack, "ping").await;
    assert_eq!(bad.hits(&format!("/{PING_ENV}/as/jwks")), 1);
    let me = stack.assert_logged_in(&b).await;
    assert_eq!(me["provider"], "ping");
    assert_eq!(me["groups"], json!(["ML-Admins", "Data-Science"]));
    assert_eq!(me["admin"], true);
    // code_challenge + code_challenge_method=S256.
    assert_eq!(
        bad.last_authorize_param("code_challenge_method").as_deref(),
        Some("S256")
    );
    // debug=true: the flow is in the logs, the tokens are not.
    let logs = stack.proxy.logs();
    assert!(logs.contains("login verified"), "{logs}");
    stack.assert_no_secrets_in("logs", &logs);

    // Not in any local group: the sign-up rule refuses.
    bad.set_extra_claims(Target::IdToken, json!({ "memberOf": ["ML-Admins"] }));
    bad.set_user(BadUser {
        sub: "gina".into(),
        email: "gina@example.com".into(),
        ..BadUser::default()
    });
    let gina = Browser::new();
    let result = login(&stack, "ping", &gina).await;
    assert_eq!(result.status(), 403, "{}", result.response.body);
    stack.assert_no_session(&gina).await;
}

#[tokio::test]
async fn guide_variables_show_in_check_config_with_secrets_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    std::fs::write(
        &path,
        "upstream: http://127.0.0.1:9\npublic_url: https://app.example.com\n\
         session:\n  secret: 0123456789abcdef0123456789abcdef0123\n",
    )
    .unwrap();
    let secret = "kc-Secret-7f3a9d";
    let out = Command::new(env!("CARGO_BIN_EXE_sso-proxy"))
        .arg("--config")
        .arg(&path)
        .arg("--check-config")
        .env_clear()
        .env(
            "CLEARML__services__login__sso__oauth_client__keycloak__base_url",
            "https://kc.example.com/realms/acme/",
        )
        .env(
            "CLEARML__secure__login__sso__oauth_client__keycloak__client_id",
            "\"clearml\"",
        )
        .env(
            "CLEARML__secure__login__sso__oauth_client__keycloak__client_secret",
            format!("\"{secret}\""),
        )
        .env(
            "CLEARML__secure__login__sso__oauth_client__keycloak__default_company",
            "\"d1bd92a3b039400cbafc60a7a5b1e52b\"",
        )
        .env(
            "CLEARML__services__login__sso__oauth_client__ping__authorize_url",
            "https://auth.pingone.com/env-1/as/authorize",
        )
        .env(
            "CLEARML__services__login__sso__oauth_client__ping__access_token_url",
            "https://auth.pingone.com/env-1/as/token",
        )
        .env(
            "CLEARML__secure__login__sso__oauth_client__ping__client_id",
            "\"ping-client\"",
        )
        .env(
            "CLEARML__services__login__sso__oauth_client__ping__groups__admins",
            "[\"ml-admins\"]",
        )
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("d1bd92a3b039400cbafc60a7a5b1e52b"), "{text}");
    assert!(
        text.contains("https://kc.example.com/realms/acme"),
        "{text}"
    );
    assert!(text.contains("ml-admins"), "{text}");
    assert!(text.contains("ping-client"), "{text}");
    assert!(!text.contains(secret), "the secret is redacted: {text}");
}
