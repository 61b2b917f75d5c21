//! One test per OIDC preset (`provider`): the BadOp is laid out as that IdP lays out its
//! endpoints and claims, and each test runs discovery plus a login and checks the mapped
//! identity. Plus each preset's quirks: Keycloak access-token claims and `admin_role`, Entra's
//! tenant issuer template and group overage through a Microsoft Graph stand-in, Cognito's
//! logout URL, Google's `hd` restriction, ADFS's `upn`/`unique_name`/`group`, Auth0's
//! namespaced claims and trailing-slash issuer, Okta's `groups` scope, and Ping's endpoints-only
//! configuration (issuer discovered from the authorize URL's parent path).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use serde_json::{json, Value};
use support::bad_op::{BadOp, BadUser, Layout, Mode, Signer, Target};
use support::browser::Browser;
use support::graph::Graph;
use support::oidc_stack::{bad_block, logged_in, login, merge, query_param, BadStack};
use support::stack::Stack;

/// Start a stack whose connection `id` uses `preset` against a BadOp laid out as `layout`,
/// with `extra` merged into the usual provider block.
async fn preset_stack(id: &str, preset: &str, layout: Layout, extra: Value) -> Stack {
    BadStack::new(id, layout)
        .start(
            |bad| {
                let mut block = bad_block(bad, preset);
                merge(&mut block, extra);
                block
            },
            |_| {},
        )
        .await
}

/// The discovery document was fetched from `path` (relative to the BadOp root).
fn assert_discovered_at(bad: &BadOp, path: &str) {
    assert!(
        bad.hits(path) >= 1,
        "discovery at {path}; requests: {:?}",
        bad.requests()
    );
}

/// The upstream's view of the identity after a request through the proxy.
async fn upstream_headers(stack: &Stack, b: &Browser) -> support::echo::EchoRequest {
    let page = b.navigate(&stack.url("/app/whoami")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    stack.echo.last()
}

async fn post_logout(stack: &Stack, b: &Browser) -> url::Url {
    let page = b
        .send(
            b.client
                .post(stack.url("/_sso/logout"))
                .header("origin", stack.base()),
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    page.location().unwrap()
}

// ---- auth0 -------------------------------------------------------------------------------------

#[tokio::test]
async fn auth0_trailing_slash_issuer_and_namespaced_claims_map_groups_and_admin() {
    let stack = preset_stack(
        "auth0",
        "auth0",
        Layout::auth0(),
        json!({
            "claims": { "user_id": "https://example.com/employee_id" },
            "groups": {
                "enabled": true,
                "claim": "https://example.com/roles",
                "admins": ["ml-admins"],
            },
        }),
    )
    .await;
    let bad = stack.bad();
    assert!(bad.issuer.ends_with('/'), "Auth0 issuers end with /");
    assert_discovered_at(bad, "/.well-known/openid-configuration");
    bad.set_extra_claims(
        Target::IdToken,
        json!({
            "https://example.com/roles": ["ml-admins", "users"],
            "https://example.com/employee_id": "auth0-77",
        }),
    );
    bad.set_user(BadUser {
        sub: "auth0|5f1a2b3c".into(),
        ..BadUser::default()
    });
    let b = logged_in(&stack, "auth0").await;
    assert_eq!(bad.hits("/oauth/token"), 1);
    assert_eq!(bad.hits("/.well-known/jwks.json"), 1);
    let me = stack.assert_logged_in(&b).await;
    assert_eq!(me["user"], "auth0-77");
    assert_eq!(me["groups"], json!(["ml-admins", "users"]));
    assert_eq!(me["admin"], true);
    assert_eq!(
        upstream_headers(&stack, &b)
            .await
            .header("x-forwarded-groups"),
        Some("ml-admins,users")
    );
}

// ---- cognito -----------------------------------------------------------------------------------

const POOL: &str = "us-east-1_AbCdEf123";

#[tokio::test]
async fn cognito_pool_issuer_hosted_ui_endpoints_and_cognito_groups() {
    let stack = preset_stack(
        "cognito",
        "cognito",
        Layout::cognito(POOL),
        json!({ "groups": { "enabled": true, "admins": ["ml-admins"] } }),
    )
    .await;
    let bad = stack.bad();
    assert!(bad.issuer.ends_with(&format!("/{POOL}")));
    assert_discovered_at(bad, &format!("/{POOL}/.well-known/openid-configuration"));
    bad.set_omitted_claims(Target::IdToken, &["groups", "preferred_username"]);
    bad.set_extra_claims(
        Target::IdToken,
        json!({ "cognito:groups": ["ml-admins"], "cognito:username": "dave-cognito" }),
    );
    let b = logged_in(&stack, "cognito").await;
    assert_eq!(bad.hits("/oauth2/authorize"), 1);
    assert_eq!(bad.hits("/oauth2/token"), 1);
    let me = stack.assert_logged_in(&b).await;
    assert_eq!(me["user"], "dave");
    assert_eq!(me["preferred_username"], "dave-cognito");
    assert_eq!(me["groups"], json!(["ml-admins"]));
    assert_eq!(me["admin"], true);
}

#[tokio::test]
async fn cognito_logout_uses_its_own_logout_url() {
    let stack = preset_stack(
        "cognito",
        "cognito",
        Layout::cognito(POOL),
        json!({ "idp_logout": true }),
    )
    .await;
    let b = logged_in(&stack, "cognito").await;
    let to = post_logout(&stack, &b).await;
    assert_eq!(
        format!("{}://{}", to.scheme(), to.authority()),
        stack.bad().base,
        "{to}"
    );
    assert_eq!(to.path(), "/logout");
    assert_eq!(query_param(&to, "client_id").as_deref(), Some("bad-client"));
    assert_eq!(
        query_param(&to, "logout_uri"),
        Some(format!("{}/", stack.proxy.public_url))
    );
    assert_eq!(query_param(&to, "id_token_hint"), None);
    assert_eq!(query_param(&to, "post_logout_redirect_uri"), None);
    stack.assert_no_session(&b).await;
}

// ---- google ------------------------------------------------------------------------------------

#[tokio::test]
async fn google_issuer_without_its_scheme_is_accepted_and_others_are_not() {
    let stack = preset_stack("google", "google", Layout::google(), json!({})).await;
    let bad = stack.bad();
    bad.set_mode(Mode::IssWithoutScheme);
    logged_in(&stack, "google").await;

    bad.set_mode(Mode::IssTrailingSlash);
    let b = Browser::new();
    let result = login(&stack, "google", &b).await;
    assert!(
        result.status().is_client_error(),
        "{}",
        result.response.body
    );
    stack.assert_no_session(&b).await;
}

#[tokio::test]
async fn google_login_with_the_allowed_hosted_domain() {
    let stack = preset_stack(
        "google",
        "google",
        Layout::google(),
        json!({ "hosted_domain": ["example.com"] }),
    )
    .await;
    let bad = stack.bad();
    assert_discovered_at(bad, "/.well-known/openid-configuration");
    bad.set_extra_claims(
        Target::IdToken,
        json!({ "hd": "example.com", "picture": "https://lh3.googleusercontent.com/a/dave" }),
    );
    let b = logged_in(&stack, "google").await;
    // The single allowed domain is also sent as the `hd` hint.
    assert_eq!(
        bad.last_authorize_param("hd").as_deref(),
        Some("example.com")
    );
    assert_eq!(bad.hits("/o/oauth2/v2/auth"), 1);
    let me = stack.assert_logged_in(&b).await;
    assert_eq!(me["email"], "dave@example.com");
    assert_eq!(me["picture"], "https://lh3.googleusercontent.com/a/dave");
}

#[tokio::test]
async fn google_hosted_domain_rejects_another_or_missing_hd() {
    let stack = preset_stack(
        "google",
        "google",
        Layout::google(),
        json!({ "hosted_domain": ["example.com"] }),
    )
    .await;
    let bad = stack.bad();
    for hd in [json!({ "hd": "other.example.org" }), json!({})] {
        bad.set_extra_claims(Target::IdToken, hd.clone());
        let b = Browser::new();
        let result = login(&stack, "google", &b).await;
        assert_eq!(result.status(), 403, "{hd}: {}", result.response.body);
        assert!(
            result.response.body.contains("not allowed"),
            "{}",
            result.response.body
        );
        stack.assert_no_session(&b).await;
    }
}

#[tokio::test]
async fn google_several_hosted_domains_send_no_hint_and_accept_each() {
    let stack = preset_stack(
        "google",
        "google",
        Layout::google(),
        json!({ "hosted_domain": ["example.com", "example.org"] }),
    )
    .await;
    let bad = stack.bad();
    bad.set_extra_claims(Target::IdToken, json!({ "hd": "EXAMPLE.ORG" }));
    logged_in(&stack, "google").await;
    assert_eq!(bad.last_authorize_param("hd"), None);
}

// ---- keycloak ----------------------------------------------------------------------------------

/// A Keycloak-laid-out stack (`base_url` = realm URL) with JWT access tokens.
async fn keycloak_stack(extra: Value) -> Stack {
    let stack = BadStack::new("keycloak", Layout::keycloak("acme"))
        .start(
            |bad| {
                let mut block = json!({
                    "provider": "keycloak",
                    "display_name": "Keycloak",
                    "base_url": bad.url("/realms/acme"),
                    "client_id": bad.client_id,
                    "client_secret": bad.client_secret,
                });
                merge(&mut block, extra);
                block
            },
            |_| {},
        )
        .await;
    stack.bad().set_jwt_access_tokens(true);
    stack
}

fn keycloak_roles(realm: &[&str], client: &[&str]) -> Value {
    json!({
        "realm_access": { "roles": realm },
        "resource_access": { "bad-client": { "roles": client }, "account": { "roles": ["view-profile"] } },
    })
}

#[tokio::test]
async fn keycloak_realm_layout_and_claims_from_the_access_token() {
    let stack =
        keycloak_stack(json!({ "groups": { "enabled": true, "admins": ["ml-admins"] } })).await;
    let bad = stack.bad();
    assert!(bad.issuer.ends_with("/realms/acme"));
    assert_discovered_at(bad, "/realms/acme/.well-known/openid-configuration");
    // Groups only in the access token, as a Keycloak mapper may be set up.
    bad.set_omitted_claims(Target::IdToken, &["groups"]);
    bad.set_extra_claims(
        Target::AccessToken,
        json!({ "groups": ["ml-admins", "qa"] }),
    );
    let b = logged_in(&stack, "keycloak").await;
    assert_eq!(bad.hits("/realms/acme/protocol/openid-connect/auth"), 1);
    assert_eq!(bad.hits("/realms/acme/protocol/openid-connect/token"), 1);
    assert_eq!(
        bad.userinfo_requests(),
        0,
        "get_info_from_access_token (default) needs no userinfo call"
    );
    let me = stack.assert_logged_in(&b).await;
    assert_eq!(me["user"], "dave");
    assert_eq!(me["groups"], json!(["ml-admins", "qa"]));
    assert_eq!(me["admin"], true);
}

#[tokio::test]
async fn keycloak_access_token_with_a_bad_signature_refuses_the_login() {
    let stack = keycloak_stack(json!({})).await;
    stack.bad().set_access_token_signer(Signer::Other);
    let b = Browser::new();
    let result = login(&stack, "keycloak", &b).await;
    assert_eq!(result.status(), 403, "{}", result.response.body);
    assert!(
        result.response.body.contains("access token"),
        "{}",
        result.response.body
    );
    stack.assert_no_session(&b).await;
}

#[tokio::test]
async fn keycloak_access_token_for_another_subject_refuses_the_login() {
    let stack = keycloak_stack(json!({})).await;
    stack
        .bad()
        .set_extra_claims(Target::AccessToken, json!({ "sub": "mallory" }));
    let b = Browser::new();
    let result = login(&stack, "keycloak", &b).await;
    assert!(
        result.status().is_client_error(),
        "{}",
        result.response.body
    );
    stack.assert_no_session(&b).await;
}

#[tokio::test]
async fn keycloak_get_info_from_access_token_false_uses_userinfo() {
    let stack = keycloak_stack(json!({ "get_info_from_access_token": false })).await;
    let bad = stack.bad();
    bad.set_extra_claims(Target::AccessToken, json!({ "name": "From Access Token" }));
    bad.set_extra_claims(Target::Userinfo, json!({ "name": "From Userinfo" }));
    let b = logged_in(&stack, "keycloak").await;
    assert_eq!(
        bad.userinfo_requests(),
        1,
        "ClearML: get_info_from_access_token=false returns the user info through the userinfo endpoint"
    );
    assert_eq!(stack.assert_logged_in(&b).await["name"], "From Userinfo");
}

#[tokio::test]
async fn keycloak_admin_role_from_realm_roles() {
    let stack = keycloak_stack(json!({ "admin_role": "clearml-admin" })).await;
    let bad = stack.bad();
    bad.set_extra_claims(
        Target::AccessToken,
        keycloak_roles(&["offline_access", "clearml-admin"], &[]),
    );
    let b = logged_in(&stack, "keycloak").await;
    assert_eq!(stack.assert_logged_in(&b).await["admin"], true);

    // Without the role: not an admin.
    bad.set_extra_claims(
        Target::AccessToken,
        keycloak_roles(&["offline_access"], &["viewer"]),
    );
    let b = logged_in(&stack, "keycloak").await;
    assert_eq!(stack.assert_logged_in(&b).await["admin"], false);
}

#[tokio::test]
async fn keycloak_admin_role_from_client_roles() {
    let stack = keycloak_stack(json!({ "admin_role": "clearml-admin" })).await;
    stack.bad().set_extra_claims(
        Target::AccessToken,
        keycloak_roles(&["offline_access"], &["clearml-admin"]),
    );
    let b = logged_in(&stack, "keycloak").await;
    assert_eq!(stack.assert_logged_in(&b).await["admin"], true);
}

#[tokio::test]
async fn keycloak_admin_role_of_another_client_does_not_make_an_admin() {
    let stack = keycloak_stack(json!({ "admin_role": "clearml-admin" })).await;
    stack.bad().set_extra_claims(
        Target::AccessToken,
        json!({
            "realm_access": { "roles": ["offline_access"] },
            "resource_access": { "account": { "roles": ["clearml-admin"] } },
        }),
    );
    let b = logged_in(&stack, "keycloak").await;
    assert_eq!(
        stack.assert_logged_in(&b).await["admin"],
        false,
        "only realm roles and roles of our own client count"
    );
}

#[tokio::test]
async fn keycloak_admin_role_defaults_to_admin_as_in_clearml() {
    let stack = keycloak_stack(json!({})).await;
    let bad = stack.bad();
    bad.set_extra_claims(Target::AccessToken, keycloak_roles(&["admin"], &[]));
    let b = logged_in(&stack, "keycloak").await;
    assert_eq!(stack.assert_logged_in(&b).await["admin"], true);

    bad.set_extra_claims(Target::AccessToken, keycloak_roles(&["viewer"], &[]));
    let b = logged_in(&stack, "keycloak").await;
    assert_eq!(stack.assert_logged_in(&b).await["admin"], false);
}

#[tokio::test]
async fn keycloak_empty_admin_role_disables_role_mapping() {
    let stack = keycloak_stack(json!({ "admin_role": "" })).await;
    stack.bad().set_extra_claims(
        Target::AccessToken,
        keycloak_roles(&["admin", "clearml-admin"], &["admin"]),
    );
    let b = logged_in(&stack, "keycloak").await;
    assert_eq!(stack.assert_logged_in(&b).await["admin"], false);
}

#[tokio::test]
async fn keycloak_idp_logout_goes_to_the_realm_end_session_endpoint() {
    let stack = keycloak_stack(json!({ "idp_logout": true })).await;
    let b = logged_in(&stack, "keycloak").await;
    let id_token = stack.bad().last_id_token().unwrap();
    let to = post_logout(&stack, &b).await;
    assert_eq!(to.path(), "/realms/acme/protocol/openid-connect/logout");
    assert_eq!(query_param(&to, "id_token_hint"), Some(id_token));
    assert_eq!(query_param(&to, "client_id").as_deref(), Some("bad-client"));
    assert_eq!(
        query_param(&to, "post_logout_redirect_uri"),
        Some(format!("{}/", stack.proxy.public_url))
    );
    stack.assert_no_session(&b).await;
}

// ---- microsoft_ad (ADFS) -----------------------------------------------------------------------

#[tokio::test]
async fn adfs_upn_unique_name_and_group_claims() {
    let stack = preset_stack(
        "adfs",
        "microsoft_ad",
        Layout::adfs(),
        json!({ "groups": { "enabled": true, "admins": ["ML-Admins"] } }),
    )
    .await;
    let bad = stack.bad();
    assert!(bad.issuer.ends_with("/adfs"));
    assert_discovered_at(bad, "/adfs/.well-known/openid-configuration");
    bad.set_omitted_claims(
        Target::IdToken,
        &["email", "preferred_username", "name", "groups"],
    );
    bad.set_extra_claims(
        Target::IdToken,
        json!({
            "upn": "dave@corp.example.com",
            "unique_name": "CORP\\dave",
            "group": ["ML-Admins", "Domain Users"],
        }),
    );
    let b = logged_in(&stack, "adfs").await;
    assert_eq!(bad.hits("/adfs/oauth2/authorize/"), 1);
    assert_eq!(bad.hits("/adfs/oauth2/token/"), 1);
    let me = stack.assert_logged_in(&b).await;
    assert_eq!(me["email"], "dave@corp.example.com");
    assert_eq!(me["preferred_username"], "dave@corp.example.com");
    assert_eq!(me["name"], "CORP\\dave");
    assert_eq!(me["groups"], json!(["ML-Admins", "Domain Users"]));
    assert_eq!(me["admin"], true);
}

#[tokio::test]
async fn adfs_without_upn_falls_back_to_unique_name_and_reads_one_group_as_a_string() {
    let stack = preset_stack(
        "adfs",
        "microsoft_ad",
        Layout::adfs(),
        json!({ "groups": { "enabled": true, "admins": ["ML-Admins"] } }),
    )
    .await;
    let bad = stack.bad();
    bad.set_omitted_claims(
        Target::IdToken,
        &["email", "preferred_username", "name", "groups"],
    );
    bad.set_extra_claims(
        Target::IdToken,
        json!({ "unique_name": "CORP\\dave", "group": "ML-Admins" }),
    );
    let b = logged_in(&stack, "adfs").await;
    let me = stack.assert_logged_in(&b).await;
    assert_eq!(me["preferred_username"], "CORP\\dave");
    assert_eq!(me["groups"], json!(["ML-Admins"]));
    assert_eq!(me["admin"], true);
}

// ---- azure (Entra ID) --------------------------------------------------------------------------

const TENANT: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";
const GROUP_ADMINS: &str = "5f0a6c1e-1d3b-4a9f-9a53-2f3d7c7f0a11";
const GROUP_USERS: &str = "c3e1d2f0-8f55-4d0b-a1e2-3c4d5e6f7a8b";

fn entra_claims(tid: &str) -> Value {
    json!({
        "tid": tid,
        "oid": "00000000-0000-0000-66f3-3332eca7ea81",
        "preferred_username": "dave@contoso.onmicrosoft.com",
        "ver": "2.0",
    })
}

#[tokio::test]
async fn azure_tenant_issuer_and_preferred_username_as_email() {
    let stack = preset_stack(
        "azure",
        "azure",
        Layout::entra(TENANT),
        json!({ "groups": { "enabled": true, "admins": [GROUP_ADMINS] } }),
    )
    .await;
    let bad = stack.bad();
    assert!(bad.issuer.ends_with(&format!("/{TENANT}/v2.0")));
    assert_discovered_at(
        bad,
        &format!("/{TENANT}/v2.0/.well-known/openid-configuration"),
    );
    bad.set_omitted_claims(Target::IdToken, &["email"]);
    let mut claims = entra_claims(TENANT);
    claims["groups"] = json!([GROUP_ADMINS, GROUP_USERS]);
    bad.set_extra_claims(Target::IdToken, claims);
    let b = logged_in(&stack, "azure").await;
    assert_eq!(bad.hits(&format!("/{TENANT}/oauth2/v2.0/authorize")), 1);
    assert_eq!(bad.hits(&format!("/{TENANT}/oauth2/v2.0/token")), 1);
    let me = stack.assert_logged_in(&b).await;
    assert_eq!(me["email"], "dave@contoso.onmicrosoft.com");
    assert_eq!(me["groups"], json!([GROUP_ADMINS, GROUP_USERS]));
    assert_eq!(me["admin"], true);
}

#[tokio::test]
async fn azure_multi_tenant_issuer_template_is_filled_from_tid() {
    let stack = BadStack::new("azure", Layout::entra_common(TENANT))
        .start(
            |bad| {
                let mut block = bad_block(bad, "azure");
                block["issuer"] = json!(bad.url("/common/v2.0"));
                block
            },
            |_| {},
        )
        .await;
    let bad = stack.bad();
    assert_discovered_at(bad, "/common/v2.0/.well-known/openid-configuration");
    bad.set_extra_claims(Target::IdToken, entra_claims(TENANT));
    let b = logged_in(&stack, "azure").await;
    assert_eq!(bad.hits("/common/oauth2/v2.0/authorize"), 1);
    assert_eq!(stack.assert_logged_in(&b).await["user"], "dave");

    // A token whose `tid` is not the tenant of its `iss` does not fill the template to `iss`.
    bad.set_extra_claims(Target::IdToken, entra_claims("another-tenant"));
    let b = Browser::new();
    let result = login(&stack, "azure", &b).await;
    assert!(
        result.status().is_client_error(),
        "refused: {}",
        result.response.body
    );
    stack.assert_no_session(&b).await;
}

/// Entra with group overage: no `groups`, `_claim_names.groups` instead.
async fn overage_stack(graph: &Graph) -> Stack {
    let graph_url = graph.url.clone();
    let stack = preset_stack(
        "azure",
        "azure",
        Layout::entra(TENANT),
        json!({
            "graph_url": graph_url,
            "groups": { "enabled": true, "admins": [GROUP_ADMINS] },
        }),
    )
    .await;
    let bad = stack.bad();
    bad.set_omitted_claims(Target::IdToken, &["groups"]);
    let mut claims = entra_claims(TENANT);
    claims["_claim_names"] = json!({ "groups": "src1" });
    claims["_claim_sources"] = json!({
        "src1": { "endpoint": format!("https://graph.windows.net/{TENANT}/users/x/getMemberObjects") }
    });
    bad.set_extra_claims(Target::IdToken, claims);
    stack
}

#[tokio::test]
async fn azure_group_overage_fetches_groups_from_graph_with_the_access_token() {
    let graph = Graph::start(&[GROUP_USERS, GROUP_ADMINS]);
    let stack = overage_stack(&graph).await;
    let b = logged_in(&stack, "azure").await;
    let calls = graph.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].method, "POST");
    assert_eq!(calls[0].path, "/v1.0/me/getMemberGroups");
    let access_token = stack.bad().last_access_token().unwrap();
    assert_eq!(
        calls[0].authorization.as_deref(),
        Some(format!("Bearer {access_token}").as_str())
    );
    let me = stack.assert_logged_in(&b).await;
    assert_eq!(me["groups"], json!([GROUP_USERS, GROUP_ADMINS]));
    assert_eq!(me["admin"], true);
    assert_eq!(
        upstream_headers(&stack, &b)
            .await
            .header("x-forwarded-groups"),
        Some(format!("{GROUP_USERS},{GROUP_ADMINS}").as_str())
    );
}

#[tokio::test]
async fn azure_group_overage_with_graph_failing_fails_the_login_cleanly() {
    let graph = Graph::start(&[GROUP_ADMINS]);
    graph.fail_with(Some(503));
    let stack = overage_stack(&graph).await;
    let b = Browser::new();
    let result = login(&stack, "azure", &b).await;
    assert_eq!(graph.calls().len(), 1);
    assert!(
        result.callback_url.is_some() && !result.response.is_redirect(),
        "an error page at the callback: {}",
        result.trail_text()
    );
    let status = result.status().as_u16();
    assert!((400..600).contains(&status), "{status}");
    assert!(
        result.response.body.contains("Microsoft Graph"),
        "says why: {}",
        result.response.body
    );
    stack.assert_no_secrets_in("error page", &result.response.body);
    stack.assert_no_secrets_in("logs", &stack.proxy.logs());
    stack.assert_no_session(&b).await;
}

#[tokio::test]
async fn azure_groups_in_the_token_do_not_call_graph() {
    let graph = Graph::start(&[GROUP_ADMINS]);
    let stack = overage_stack(&graph).await;
    let mut claims = entra_claims(TENANT);
    claims["groups"] = json!([GROUP_USERS]);
    stack.bad().set_extra_claims(Target::IdToken, claims);
    let b = logged_in(&stack, "azure").await;
    assert!(graph.calls().is_empty());
    assert_eq!(
        stack.assert_logged_in(&b).await["groups"],
        json!([GROUP_USERS])
    );
}

// ---- okta --------------------------------------------------------------------------------------

#[tokio::test]
async fn okta_requests_the_groups_scope_when_groups_are_enabled() {
    // No `provider`: the id `okta` names the preset.
    let stack = BadStack::new("okta", Layout::okta())
        .start(
            |bad| {
                let mut block = bad_block(bad, "okta");
                block.as_object_mut().unwrap().remove("provider");
                block["groups"] = json!({ "enabled": true, "admins": ["Everyone-Admins"] });
                block
            },
            |_| {},
        )
        .await;
    let bad = stack.bad();
    assert!(bad.issuer.ends_with("/oauth2/default"));
    assert_discovered_at(bad, "/oauth2/default/.well-known/openid-configuration");
    bad.set_user(BadUser {
        groups: vec!["Everyone".into(), "Everyone-Admins".into()],
        ..BadUser::default()
    });
    let b = logged_in(&stack, "okta").await;
    assert_eq!(
        bad.last_authorize_param("scope").as_deref(),
        Some("openid profile email groups")
    );
    assert_eq!(bad.hits("/oauth2/default/v1/authorize"), 1);
    assert_eq!(bad.hits("/oauth2/default/v1/token"), 1);
    let me = stack.assert_logged_in(&b).await;
    assert_eq!(me["groups"], json!(["Everyone", "Everyone-Admins"]));
    assert_eq!(me["admin"], true);
}

#[tokio::test]
async fn okta_without_groups_does_not_add_the_groups_scope() {
    let stack = preset_stack("okta", "okta", Layout::okta(), json!({})).await;
    logged_in(&stack, "okta").await;
    assert_eq!(
        stack.bad().last_authorize_param("scope").as_deref(),
        Some("openid profile email")
    );
}

// ---- ping --------------------------------------------------------------------------------------

const PING_ENV: &str = "6a8d3c2e-1f4b-4e5a-9c7d-0b1a2c3d4e5f";

#[tokio::test]
async fn ping_with_only_authorize_and_token_urls_discovers_the_issuer_from_the_parent_path() {
    // Exactly what ClearML's Ping guide sets: authorize_url, access_token_url, id and secret.
    let stack = BadStack::new("ping", Layout::ping(PING_ENV))
        .start(
            |bad| {
                json!({
                    "authorize_url": bad.url(&format!("/{PING_ENV}/as/authorize")),
                    "access_token_url": bad.url(&format!("/{PING_ENV}/as/token")),
                    "client_id": bad.client_id,
                    "client_secret": bad.client_secret,
                    "groups": { "enabled": true, "claim": "memberOf", "admins": ["ml-admins"] },
                })
            },
            |_| {},
        )
        .await;
    let bad = stack.bad();
    assert_discovered_at(
        bad,
        &format!("/{PING_ENV}/as/.well-known/openid-configuration"),
    );
    bad.set_extra_claims(Target::IdToken, json!({ "memberOf": ["ml-admins"] }));
    let b = logged_in(&stack, "ping").await;
    // The keys came from the discovered JWKS URI.
    assert_eq!(bad.hits(&format!("/{PING_ENV}/as/jwks")), 1);
    assert_eq!(bad.hits(&format!("/{PING_ENV}/as/token")), 1);
    let me = stack.assert_logged_in(&b).await;
    assert_eq!(me["user"], "dave");
    assert_eq!(me["groups"], json!(["ml-admins"]));
    assert_eq!(me["admin"], true);
}

#[tokio::test]
async fn ping_discovery_ignores_a_document_for_another_authorize_url() {
    // The parent path serves a document, but for other endpoints: the connection never becomes
    // ready, rather than trusting an unrelated issuer.
    let stack = BadStack {
        wait_ready: false,
        ..BadStack::new("ping", Layout::ping(PING_ENV))
    }
    .start(
        |bad| {
            json!({
                "authorize_url": bad.url(&format!("/{PING_ENV}/as/authorize-other")),
                "access_token_url": bad.url(&format!("/{PING_ENV}/as/token")),
                "client_id": bad.client_id,
                "client_secret": bad.client_secret,
            })
        },
        |_| {},
    )
    .await;
    let b = Browser::new();
    support::util::wait_for(
        "the parent discovery document to be fetched",
        std::time::Duration::from_secs(5),
        || async {
            (stack
                .bad()
                .hits(&format!("/{PING_ENV}/as/.well-known/openid-configuration"))
                >= 1)
                .then_some(())
        },
    )
    .await;
    let ready = b.api_get(&stack.url("/_sso/readyz")).await;
    assert_ne!(ready.status, 200, "{}", ready.body);
}

// ---- custom ------------------------------------------------------------------------------------

#[tokio::test]
async fn the_issuer_without_its_scheme_is_refused_outside_the_google_preset() {
    let stack = preset_stack("corp", "custom", Layout::default(), json!({})).await;
    stack.bad().set_mode(Mode::IssWithoutScheme);
    let b = Browser::new();
    let result = login(&stack, "corp", &b).await;
    assert!(
        result.status().is_client_error(),
        "{}",
        result.response.body
    );
    stack.assert_no_session(&b).await;
}

#[tokio::test]
async fn custom_preset_with_an_issuer_path_uses_the_standard_claims() {
    let layout = Layout {
        issuer_path: "/sso/oidc".into(),
        authorize: "/sso/oidc/authorize".into(),
        token: "/sso/oidc/token".into(),
        userinfo: "/sso/oidc/userinfo".into(),
        jwks: "/sso/oidc/jwks".into(),
        end_session: Some("/sso/oidc/end".into()),
        revocation: Some("/sso/oidc/revoke".into()),
        ..Layout::default()
    };
    let stack = preset_stack(
        "corp",
        "custom",
        layout,
        json!({ "groups": { "enabled": true, "admins": ["qa"] } }),
    )
    .await;
    let bad = stack.bad();
    assert_discovered_at(bad, "/sso/oidc/.well-known/openid-configuration");
    let b = logged_in(&stack, "corp").await;
    assert_eq!(bad.hits("/sso/oidc/authorize"), 1);
    let me = stack.assert_logged_in(&b).await;
    assert_eq!(me["user"], "dave");
    assert_eq!(me["email"], "dave@example.com");
    assert_eq!(me["name"], "Dave Tester");
    assert_eq!(me["preferred_username"], "dave");
    assert_eq!(me["groups"], json!(["ml-team", "qa"]));
    assert_eq!(me["admin"], true);
    let seen = upstream_headers(&stack, &b).await;
    assert_eq!(seen.header("x-forwarded-user"), Some("dave"));
    assert_eq!(seen.header("x-forwarded-email"), Some("dave@example.com"));
}
