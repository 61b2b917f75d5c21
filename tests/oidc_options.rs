//! One test per OIDC connection option of ClearML's "Provider Connection Configuration"
//! (DESIGN 3.2): admission rules (email verification, sign-up, groups), group and admin mapping,
//! claim mappings, where claims come from, signature checking, scopes, explicit endpoints,
//! the callback URL and `debug`. Happy paths run against the real OP where it can express the
//! case (alice, bob, carol), the rest against the BadOp.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::process::Command;

use serde_json::{json, Value};
use support::bad_op::{BadUser, Mode, Target};
use support::browser::Browser;
use support::oidc_stack::{bad_block, bad_stack, logged_in, login, merge, query_param, BadStack};
use support::stack::{Stack, StackOptions, LOCAL};

fn local(config: &mut Value) -> &mut Value {
    &mut config["providers"][LOCAL]
}

/// A login that was refused at the callback: 403 with the reason on the page, no session.
async fn assert_refused(
    stack: &Stack,
    browser: &Browser,
    result: &support::browser::LoginResult,
    reason: &str,
) {
    assert!(
        result.callback_url.is_some(),
        "the flow reached the callback: {}",
        result.trail_text()
    );
    assert_eq!(
        result.status(),
        403,
        "refused with 403: {}",
        result.response.body
    );
    assert!(
        result.response.body.contains(reason),
        "the page says why ({reason:?}): {}",
        result.response.body
    );
    stack.assert_no_secrets_in("refusal page", &result.response.body);
    stack.assert_no_session(browser).await;
}

// ---- email_verification ----------------------------------------------------------------------

#[tokio::test]
async fn email_verification_rejects_unverified_email_with_a_clear_page() {
    let stack = Stack::start(StackOptions::real(), |c| {
        local(c)["email_verification"] = json!(true);
    })
    .await;
    let carol = Browser::new();
    let result = stack.login_local(&carol, "carol", None).await;
    assert_refused(&stack, &carol, &result, "email address is not verified").await;

    let alice = stack.browser_as("alice").await;
    let me = stack.assert_logged_in(&alice).await;
    assert_eq!(me["user"], "alice");
    assert_eq!(me["email"], "alice@example.com");
}

#[tokio::test]
async fn unverified_email_is_accepted_when_email_verification_is_off() {
    let stack = Stack::with_real_op().await;
    let carol = stack.browser_as("carol").await;
    assert_eq!(stack.assert_logged_in(&carol).await["user"], "carol");
}

// ---- create_new_users ------------------------------------------------------------------------

#[tokio::test]
async fn create_new_users_false_rejects_unknown_users_and_admits_listed_ones() {
    let stack = Stack::start(StackOptions::real(), |c| {
        local(c)["create_new_users"] = json!(false);
        c["directory"] = json!({ "known_users": ["ALICE@example.com"] });
    })
    .await;
    let bob = Browser::new();
    let result = stack.login_local(&bob, "bob", None).await;
    assert_refused(&stack, &bob, &result, "new users cannot sign up").await;

    // Listed in `directory.known_users` (e-mails compare case-insensitively).
    let alice = stack.browser_as("alice").await;
    assert_eq!(stack.assert_logged_in(&alice).await["user"], "alice");
}

#[tokio::test]
async fn create_new_users_false_needs_a_verified_email_to_match_a_listed_user() {
    // carol's e-mail is listed but not verified at the IdP: anyone could have typed it there.
    let stack = Stack::start(StackOptions::real(), |c| {
        local(c)["create_new_users"] = json!(false);
        c["directory"] = json!({ "known_users": ["carol@example.com", "alice@example.com"] });
    })
    .await;
    let carol = Browser::new();
    let result = stack.login_local(&carol, "carol", None).await;
    assert_refused(&stack, &carol, &result, "new users cannot sign up").await;
    let alice = stack.browser_as("alice").await;
    assert_eq!(stack.assert_logged_in(&alice).await["user"], "alice");
}

#[tokio::test]
async fn create_new_users_false_admits_a_user_who_logged_in_before() {
    let stack = bad_stack(json!({ "create_new_users": false }), |c| {
        c["directory"] = json!({ "known_users": ["dave@example.com"] });
    })
    .await;
    let bad = stack.bad();
    // First login: admitted because the e-mail is listed.
    logged_in(&stack, "bad").await;
    // The IdP changes dave's e-mail to one that is not listed: still admitted, he is known now.
    bad.set_user(BadUser {
        email: "dave@elsewhere.example.org".into(),
        ..BadUser::default()
    });
    let again = logged_in(&stack, "bad").await;
    let me = stack.assert_logged_in(&again).await;
    assert_eq!(me["user"], "dave");
    assert_eq!(me["email"], "dave@elsewhere.example.org");
    // Someone else with an unlisted e-mail is still a new user.
    bad.set_user(BadUser {
        sub: "erin".into(),
        email: "erin@elsewhere.example.org".into(),
        ..BadUser::default()
    });
    let erin = Browser::new();
    let result = login(&stack, "bad", &erin).await;
    assert_refused(&stack, &erin, &result, "new users cannot sign up").await;
}

// ---- groups.prohibit_user_signup_if_not_in_group -------------------------------------------------

#[tokio::test]
async fn prohibit_signup_rejects_users_without_a_known_group() {
    let stack = Stack::start(StackOptions::real(), |c| {
        local(c)["groups"]["prohibit_user_signup_if_not_in_group"] = json!(true);
        c["directory"] = json!({ "groups": ["admins", "data-science"] });
    })
    .await;
    // bob is only in `ml-team`, which the proxy does not know.
    let bob = Browser::new();
    let result = stack.login_local(&bob, "bob", None).await;
    assert_refused(&stack, &bob, &result, "not a member of any group").await;
    // alice is in `admins`.
    let alice = stack.browser_as("alice").await;
    assert_eq!(stack.assert_logged_in(&alice).await["user"], "alice");
}

#[tokio::test]
async fn prohibit_signup_also_refuses_known_users_outside_the_known_groups() {
    // bob is a known user (listed) but in no known group: ClearML's rule is "allow logging in
    // only for the users whose groups are present", so he is refused too.
    let stack = Stack::start(StackOptions::real(), |c| {
        local(c)["groups"]["prohibit_user_signup_if_not_in_group"] = json!(true);
        c["directory"] = json!({ "groups": ["admins"], "known_users": ["bob@example.com"] });
    })
    .await;
    let bob = Browser::new();
    let result = stack.login_local(&bob, "bob", None).await;
    assert_refused(&stack, &bob, &result, "not a member of any group").await;
    let alice = stack.browser_as("alice").await;
    assert_eq!(stack.assert_logged_in(&alice).await["user"], "alice");
}

#[tokio::test]
async fn prohibit_signup_matches_known_groups_case_insensitively_when_configured() {
    let stack = Stack::start(StackOptions::real(), |c| {
        local(c)["groups"]["prohibit_user_signup_if_not_in_group"] = json!(true);
        local(c)["groups"]["case_sensitive"] = json!(false);
        c["directory"] = json!({ "groups": ["ML-TEAM"] });
    })
    .await;
    let bob = stack.browser_as("bob").await;
    assert_eq!(
        stack.assert_logged_in(&bob).await["groups"],
        json!(["ml-team"])
    );
}

#[tokio::test]
async fn prohibit_signup_is_inactive_when_groups_are_disabled() {
    let stack = Stack::start(StackOptions::real(), |c| {
        local(c)["groups"] = json!({
            "enabled": false,
            "prohibit_user_signup_if_not_in_group": true,
        });
        c["directory"] = json!({ "groups": ["nobody-is-here"] });
    })
    .await;
    let bob = stack.browser_as("bob").await;
    assert_eq!(stack.assert_logged_in(&bob).await["user"], "bob");
}

// ---- groups.admins, groups.case_sensitive, groups.enabled ------------------------------------

#[tokio::test]
async fn admin_is_derived_from_groups_admins() {
    // The stack's `local` block has groups.enabled and admins: [admins].
    let stack = Stack::with_real_op().await;
    let alice = stack.browser_as("alice").await;
    let me = stack.assert_logged_in(&alice).await;
    assert_eq!(me["admin"], true, "alice is in `admins`: {me}");
    assert_eq!(me["groups"], json!(["admins", "ml-team"]));
    let page = alice.navigate(&stack.url("/app")).await;
    assert_eq!(page.status, 200);
    assert_eq!(
        stack.echo.last().header("x-forwarded-groups"),
        Some("admins,ml-team")
    );

    let bob = stack.browser_as("bob").await;
    let me = stack.assert_logged_in(&bob).await;
    assert_eq!(me["admin"], false, "bob is not: {me}");
}

#[tokio::test]
async fn admin_group_need_not_exist_locally() {
    // `directory.groups` does not list the admin group: it still makes admins.
    let stack = Stack::start(StackOptions::real(), |c| {
        c["directory"] = json!({ "groups": ["ml-team"] });
    })
    .await;
    let alice = stack.browser_as("alice").await;
    assert_eq!(stack.assert_logged_in(&alice).await["admin"], true);
}

#[tokio::test]
async fn groups_disabled_means_no_admin_mapping_but_groups_still_reach_the_upstream() {
    let stack = Stack::start(StackOptions::real(), |c| {
        local(c)["groups"]["enabled"] = json!(false);
    })
    .await;
    let alice = stack.browser_as("alice").await;
    let me = stack.assert_logged_in(&alice).await;
    assert_eq!(me["admin"], false, "{me}");
    assert_eq!(me["groups"], json!(["admins", "ml-team"]));
}

#[tokio::test]
async fn case_sensitive_false_matches_admins_in_another_case() {
    let stack = Stack::start(StackOptions::real(), |c| {
        local(c)["groups"]["admins"] = json!(["ADMINS"]);
        local(c)["groups"]["case_sensitive"] = json!(false);
    })
    .await;
    let alice = stack.browser_as("alice").await;
    assert_eq!(stack.assert_logged_in(&alice).await["admin"], true);
}

#[tokio::test]
async fn case_sensitive_is_the_default_so_admins_in_another_case_do_not_match() {
    let stack = Stack::start(StackOptions::real(), |c| {
        local(c)["groups"]["admins"] = json!(["ADMINS"]);
    })
    .await;
    let alice = stack.browser_as("alice").await;
    assert_eq!(stack.assert_logged_in(&alice).await["admin"], false);
}

#[tokio::test]
async fn group_removal_at_the_idp_is_reflected_at_the_next_login() {
    let stack = bad_stack(
        json!({ "groups": { "enabled": true, "admins": ["admins"] } }),
        |_| {},
    )
    .await;
    let bad = stack.bad();
    bad.set_user(BadUser {
        groups: vec!["admins".into(), "qa".into()],
        ..BadUser::default()
    });
    let b = logged_in(&stack, "bad").await;
    let me = stack.assert_logged_in(&b).await;
    assert_eq!(me["admin"], true);
    assert_eq!(me["groups"], json!(["admins", "qa"]));

    // The IdP drops dave from `admins`; the next login sees it.
    bad.set_user(BadUser {
        groups: vec!["qa".into()],
        ..BadUser::default()
    });
    login(&stack, "bad", &b).await.expect_success();
    let me = stack.assert_logged_in(&b).await;
    assert_eq!(me["admin"], false, "{me}");
    assert_eq!(me["groups"], json!(["qa"]));
    b.navigate(&stack.url("/after")).await;
    assert_eq!(stack.echo.last().header("x-forwarded-groups"), Some("qa"));
}

// ---- claims.* ----------------------------------------------------------------------------------

#[tokio::test]
async fn claim_mappings_use_dotted_paths_and_fallbacks() {
    let stack = bad_stack(
        json!({
            "claims": {
                "user_id": "ids.employee",
                "email": "mail|email",
                "preferred_username": "profile.login",
                "picture": "profile.avatar",
                "given_name": "first",
                "family_name": "last",
            },
            "groups": { "claim": "authz.teams" },
        }),
        |_| {},
    )
    .await;
    let bad = stack.bad();
    bad.set_extra_claims(
        Target::IdToken,
        json!({
            "ids": { "employee": "E-1042" },
            "profile": { "login": "dave.t", "avatar": "https://img.example.com/dave.png" },
            "first": "Dora",
            "last": "Explorer",
            "authz": { "teams": ["blue", "green"] },
        }),
    );
    // No `name`: it is built from the mapped given and family names.
    bad.set_omitted_claims(Target::IdToken, &["name", "given_name", "family_name"]);
    let b = logged_in(&stack, "bad").await;
    let me = stack.assert_logged_in(&b).await;
    assert_eq!(me["user"], "E-1042");
    // `mail` is absent, so `email` is used.
    assert_eq!(me["email"], "dave@example.com");
    assert_eq!(me["preferred_username"], "dave.t");
    assert_eq!(me["picture"], "https://img.example.com/dave.png");
    assert_eq!(me["given_name"], "Dora");
    assert_eq!(me["family_name"], "Explorer");
    assert_eq!(me["name"], "Dora Explorer");
    assert_eq!(me["groups"], json!(["blue", "green"]));

    b.navigate(&stack.url("/whoami")).await;
    let seen = stack.echo.last();
    assert_eq!(seen.header("x-forwarded-user"), Some("E-1042"));
    assert_eq!(seen.header("x-forwarded-email"), Some("dave@example.com"));
    assert_eq!(
        seen.header("x-forwarded-preferred-username"),
        Some("dave.t")
    );
    assert_eq!(seen.header("x-forwarded-name"), Some("Dora Explorer"));
    assert_eq!(seen.header("x-forwarded-groups"), Some("blue,green"));
}

#[tokio::test]
async fn claims_name_wins_over_given_and_family_names() {
    let stack = bad_stack(json!({ "claims": { "name": "display" } }), |_| {}).await;
    stack
        .bad()
        .set_extra_claims(Target::IdToken, json!({ "display": "Dave the Tester" }));
    let b = logged_in(&stack, "bad").await;
    assert_eq!(stack.assert_logged_in(&b).await["name"], "Dave the Tester");
}

#[tokio::test]
async fn missing_user_id_claim_refuses_the_login() {
    let stack = bad_stack(json!({ "claims": { "user_id": "employee_id" } }), |_| {}).await;
    let b = Browser::new();
    let result = login(&stack, "bad", &b).await;
    assert!(
        result.status().is_client_error(),
        "refused: {}",
        result.response.body
    );
    assert!(
        result.response.body.contains("employee_id"),
        "names the claim: {}",
        result.response.body
    );
    stack.assert_no_session(&b).await;
}

// ---- user_info_from_id_token -------------------------------------------------------------------

#[tokio::test]
async fn user_info_from_id_token_false_reads_claims_from_userinfo() {
    let stack = bad_stack(json!({ "user_info_from_id_token": false }), |_| {}).await;
    let bad = stack.bad();
    bad.set_extra_claims(
        Target::Userinfo,
        json!({ "name": "Name From Userinfo", "groups": ["from-userinfo"] }),
    );
    let b = logged_in(&stack, "bad").await;
    assert_eq!(bad.userinfo_requests(), 1);
    let me = stack.assert_logged_in(&b).await;
    assert_eq!(me["name"], "Name From Userinfo");
    assert_eq!(me["groups"], json!(["from-userinfo"]));
}

#[tokio::test]
async fn user_info_from_id_token_is_the_default_and_skips_userinfo() {
    let stack = bad_stack(json!({}), |_| {}).await;
    let bad = stack.bad();
    bad.set_extra_claims(Target::Userinfo, json!({ "name": "Name From Userinfo" }));
    let b = logged_in(&stack, "bad").await;
    assert_eq!(bad.userinfo_requests(), 0);
    assert_eq!(stack.assert_logged_in(&b).await["name"], "Dave Tester");
}

// ---- verify_token_signature --------------------------------------------------------------------

#[tokio::test]
async fn verify_token_signature_false_accepts_a_bad_signature_and_warns_at_start() {
    let stack = bad_stack(json!({ "verify_token_signature": false }), |_| {}).await;
    let logs = stack.proxy.logs();
    assert!(
        logs.lines().any(|l| l.contains("WARN")
            && l.contains("verify_token_signature is off")
            && l.contains("insecure")),
        "start-up warning:\n{logs}"
    );
    stack.bad().set_mode(Mode::BadSignature);
    let b = logged_in(&stack, "bad").await;
    assert_eq!(stack.assert_logged_in(&b).await["user"], "dave");
}

#[tokio::test]
async fn verify_token_signature_is_on_by_default_without_a_warning() {
    let stack = bad_stack(json!({}), |_| {}).await;
    assert!(!stack.proxy.logs().contains("verify_token_signature is off"));
    stack.bad().set_mode(Mode::BadSignature);
    let b = Browser::new();
    let result = login(&stack, "bad", &b).await;
    assert_eq!(result.status(), 403, "{}", result.response.body);
    stack.assert_no_session(&b).await;
}

// ---- scopes, additional_scopes -----------------------------------------------------------------

#[tokio::test]
async fn scopes_and_additional_scopes_reach_the_authorize_request() {
    let stack = bad_stack(
        json!({ "scopes": "openid,email", "additional_scopes": ["groups", "offline_access"] }),
        |_| {},
    )
    .await;
    logged_in(&stack, "bad").await;
    assert_eq!(
        stack.bad().last_authorize_param("scope").as_deref(),
        Some("openid email groups offline_access")
    );
}

#[tokio::test]
async fn default_scopes_are_openid_profile_email() {
    let stack = bad_stack(json!({}), |_| {}).await;
    logged_in(&stack, "bad").await;
    assert_eq!(
        stack.bad().last_authorize_param("scope").as_deref(),
        Some("openid profile email")
    );
}

#[tokio::test]
async fn scopes_without_openid_still_send_openid() {
    let stack = bad_stack(json!({ "scopes": ["profile", "email"] }), |_| {}).await;
    logged_in(&stack, "bad").await;
    assert_eq!(
        stack.bad().last_authorize_param("scope").as_deref(),
        Some("openid profile email")
    );
}

// ---- code_challenge_method (more in pkce.rs) ----------------------------------------------------

#[tokio::test]
async fn code_challenge_method_none_sends_no_challenge_and_no_verifier() {
    let stack = bad_stack(json!({ "code_challenge_method": "none" }), |_| {}).await;
    logged_in(&stack, "bad").await;
    let bad = stack.bad();
    assert_eq!(bad.last_authorize_param("code_challenge"), None);
    assert_eq!(bad.last_authorize_param("code_challenge_method"), None);
    let token = bad.last_token_params().unwrap();
    assert!(
        !token.iter().any(|(n, _)| n == "code_verifier"),
        "{token:?}"
    );
}

#[tokio::test]
async fn code_challenge_method_plain_sends_the_verifier_as_challenge() {
    let stack = bad_stack(json!({ "code_challenge_method": "plain" }), |_| {}).await;
    logged_in(&stack, "bad").await;
    let bad = stack.bad();
    assert_eq!(
        bad.last_authorize_param("code_challenge_method").as_deref(),
        Some("plain")
    );
    let challenge = bad.last_authorize_param("code_challenge").unwrap();
    let token = bad.last_token_params().unwrap();
    let verifier = token
        .iter()
        .find(|(n, _)| n == "code_verifier")
        .map(|(_, v)| v.clone());
    assert_eq!(verifier.as_deref(), Some(challenge.as_str()));
}

#[tokio::test]
async fn code_challenge_method_s256_is_the_default() {
    let stack = bad_stack(json!({}), |_| {}).await;
    logged_in(&stack, "bad").await;
    let bad = stack.bad();
    assert_eq!(
        bad.last_authorize_param("code_challenge_method").as_deref(),
        Some("S256")
    );
    assert!(bad.token_errors().is_empty(), "{:?}", bad.token_errors());
}

// ---- explicit endpoints ------------------------------------------------------------------------

#[tokio::test]
async fn explicit_endpoints_beat_discovery() {
    // The BadOp serves every endpoint under `/alt` too; discovery names the plain ones.
    let stack = BadStack::new("bad", Default::default())
        .start(
            |bad| {
                let mut block = bad_block(bad, "custom");
                merge(
                    &mut block,
                    json!({
                        "authorize_url": bad.url("/alt/authorize"),
                        "access_token_url": bad.url("/alt/token"),
                        "userinfo_url": bad.url("/alt/userinfo"),
                        "jwks_uri": bad.url("/alt/jwks"),
                        "end_session_url": bad.url("/alt/logout"),
                        "revocation_url": bad.url("/alt/revoke"),
                        "user_info_from_id_token": false,
                        "idp_logout": true,
                    }),
                );
                block
            },
            |_| {},
        )
        .await;
    let bad = stack.bad();
    bad.issue_refresh_tokens(false);
    let b = logged_in(&stack, "bad").await;
    for path in ["/authorize", "/token", "/userinfo", "/jwks"] {
        assert_eq!(bad.hits(path), 0, "{path} from discovery is not used");
        assert_eq!(bad.hits(&format!("/alt{path}")), 1, "/alt{path} is used");
    }
    let page = b
        .send(
            b.client
                .post(stack.url("/_sso/logout"))
                .header("origin", stack.base()),
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let location = page.location().unwrap();
    assert_eq!(location.path(), "/alt/logout");
    assert_eq!(bad.hits("/alt/revoke"), 1);
    assert_eq!(bad.hits("/revoke"), 0);
}

/// `issuer` plus the endpoints a login needs, with the IdP's discovery document gone.
fn standalone_block(bad: &support::bad_op::BadOp, extra: Value) -> Value {
    bad.set_discovery_available(false);
    let mut block = bad_block(bad, "custom");
    merge(
        &mut block,
        json!({
            "authorize_url": bad.url("/alt/authorize"),
            "access_token_url": bad.url("/alt/token"),
            "jwks_uri": bad.url("/alt/jwks"),
            "userinfo_url": bad.url("/alt/userinfo"),
            "user_info_from_id_token": false,
        }),
    );
    merge(&mut block, extra);
    block
}

#[tokio::test]
async fn explicit_endpoints_with_issuer_stand_alone_without_discovery() {
    let stack = BadStack::new("bad", Default::default())
        .start(|bad| standalone_block(bad, json!({})), |_| {})
        .await;
    let b = Browser::new();
    let ready = b.api_get(&stack.url("/_sso/readyz")).await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    let b = logged_in(&stack, "bad").await;
    let me = stack.assert_logged_in(&b).await;
    assert_eq!(me["user"], "dave");
    let bad = stack.bad();
    assert_eq!(bad.hits("/alt/token"), 1);
    assert_eq!(
        bad.hits("/alt/userinfo"),
        1,
        "claims came from userinfo_url"
    );
    assert!(bad.hits("/alt/jwks") >= 1);
    // Without a document, client_secret_basic is used.
    assert_eq!(bad.token_auth_methods(), vec!["client_secret_basic"]);
}

#[tokio::test]
async fn explicit_endpoints_missing_one_still_need_discovery() {
    // Userinfo is where the claims come from, but no userinfo_url is set: not enough to stand
    // alone, and discovery is gone, so the connection is never ready.
    let mut stack = BadStack::new("bad", Default::default());
    stack.wait_ready = false;
    let stack = stack
        .start(
            |bad| {
                let mut block = standalone_block(bad, json!({}));
                block.as_object_mut().unwrap().remove("userinfo_url");
                block
            },
            |_| {},
        )
        .await;
    support::util::wait_for(
        "the discovery document to be asked for",
        std::time::Duration::from_secs(5),
        || async { (stack.bad().hits("/.well-known/openid-configuration") >= 1).then_some(()) },
    )
    .await;
    let ready = Browser::new().api_get(&stack.url("/_sso/readyz")).await;
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert!(ready.body.contains("bad"), "{}", ready.body);
}

// ---- client authentication and secret files -----------------------------------------------

#[tokio::test]
async fn client_secret_post_is_used_when_it_is_the_only_advertised_method() {
    let stack = BadStack::new("bad", Default::default())
        .start(
            |bad| {
                // The OP advertises and accepts only client_secret_post (like a real OP would).
                bad.set_auth_methods(&["client_secret_post"]);
                bad_block(bad, "custom")
            },
            |_| {},
        )
        .await;
    let b = logged_in(&stack, "bad").await;
    stack.assert_logged_in(&b).await;
    let bad = stack.bad();
    assert_eq!(bad.token_auth_methods(), vec!["client_secret_post"]);
    let params = bad.last_token_params().unwrap();
    assert!(
        params.contains(&("client_id".to_owned(), bad.client_id.clone())),
        "client_id in the form: {params:?}"
    );
}

#[tokio::test]
async fn client_secret_file_is_read_for_the_token_request() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("client-secret");
    let stack = BadStack::new("bad", Default::default())
        .start(
            |bad| {
                // One trailing newline, as `echo` writes it, is trimmed.
                std::fs::write(&file, format!("{}\n", bad.client_secret)).unwrap();
                let mut block = bad_block(bad, "custom");
                block.as_object_mut().unwrap().remove("client_secret");
                block["client_secret_file"] = json!(file.display().to_string());
                block
            },
            |_| {},
        )
        .await;
    let b = logged_in(&stack, "bad").await;
    stack.assert_logged_in(&b).await;
    assert_eq!(
        stack.bad().token_auth_methods(),
        vec!["client_secret_basic"]
    );
    assert!(stack.bad().token_errors().is_empty());
}

// ---- the callback URL, display_name ------------------------------------------------------------

#[tokio::test]
async fn redirect_uri_is_public_url_callback_id() {
    let stack = BadStack::new("corp-sso", Default::default())
        .start(|bad| bad_block(bad, "custom"), |_| {})
        .await;
    logged_in(&stack, "corp-sso").await;
    let sent = stack.bad().last_authorize_param("redirect_uri").unwrap();
    assert_eq!(
        sent,
        format!("{}/callback_corp-sso", stack.proxy.public_url)
    );
    let token = stack.bad().last_token_params().unwrap();
    assert!(token.contains(&("redirect_uri".to_owned(), sent)));
}

#[tokio::test]
async fn duplicate_display_names_are_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    let provider = |id: &str| {
        json!({
            "issuer": "https://idp.example.com",
            "client_id": id,
            "client_secret": "s3cret-value",
            "display_name": "Corporate Login",
        })
    };
    let config = json!({
        "upstream": "http://127.0.0.1:9",
        "public_url": "https://app.example.com",
        "session": { "secret": "0123456789abcdef0123456789abcdef0123" },
        "providers": { "one": provider("one"), "two": provider("two") },
    });
    std::fs::write(&path, serde_yaml::to_string(&config).unwrap()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sso-proxy"))
        .arg("--config")
        .arg(&path)
        .arg("--check-config")
        .env_clear()
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(64), "{text}");
    assert!(text.contains("providers.two.display_name"), "{text}");
}

// ---- debug ---------------------------------------------------------------------------------------

#[tokio::test]
async fn debug_logs_the_flow_without_tokens() {
    let stack = bad_stack(
        json!({ "debug": true, "email_verification": true, "user_info_from_id_token": false }),
        |c| {
            c["log"]["level"] = json!("info");
        },
    )
    .await;
    let bad = stack.bad();
    bad.issue_refresh_tokens(true);
    logged_in(&stack, "bad").await;
    // A refused login says why.
    bad.set_user(BadUser {
        email_verified: false,
        ..BadUser::default()
    });
    let refused = Browser::new();
    let result = login(&stack, "bad", &refused).await;
    assert_eq!(result.status(), 403, "{}", result.response.body);
    // The proxy's output reaches the test through a pipe: wait for the last line expected.
    stack.proxy.wait_for_log("login refused", 1).await;
    let logs = stack.proxy.logs();
    // Text logs may colour field names, so look for the parts, not `provider=bad`.
    let flow: Vec<&str> = logs.lines().filter(|l| l.contains("bad")).collect();
    assert!(
        flow.iter().any(|l| l.contains("discovery done")),
        "discovery is logged:\n{logs}"
    );
    assert!(
        flow.iter()
            .any(|l| l.contains("login verified") && l.contains("dave")),
        "the verified login is logged:\n{logs}"
    );
    for step in ["token endpoint answered", "userinfo endpoint answered"] {
        assert!(
            flow.iter().any(|l| l.contains(step) && l.contains("200")),
            "{step}:\n{logs}"
        );
    }
    assert!(
        flow.iter().any(|l| l.contains("claims received")
            && l.contains("email_verified")
            && l.contains("dave@example.com")),
        "the received claims are logged:\n{logs}"
    );
    assert!(
        flow.iter()
            .any(|l| l.contains("login refused") && l.contains("not verified")),
        "the refusal reason is logged:\n{logs}"
    );
    stack.assert_no_secrets_in("logs", &logs);
}

#[tokio::test]
async fn without_debug_the_flow_details_are_not_logged() {
    let stack = bad_stack(json!({}), |c| {
        c["log"]["level"] = json!("info");
    })
    .await;
    logged_in(&stack, "bad").await;
    let logs = stack.proxy.logs();
    assert!(!logs.contains("discovery done"), "{logs}");
    assert!(!logs.contains("login verified"), "{logs}");
}

#[tokio::test]
async fn authorization_request_carries_state_nonce_and_client_id() {
    let stack = bad_stack(json!({}), |_| {}).await;
    let b = Browser::new();
    let start = b.navigate(&stack.url("/_sso/login?provider=bad")).await;
    let to_idp = start.location().unwrap();
    assert!(to_idp.as_str().starts_with(&stack.bad().url("/authorize")));
    assert_eq!(
        query_param(&to_idp, "client_id").as_deref(),
        Some("bad-client")
    );
    assert_eq!(
        query_param(&to_idp, "response_type").as_deref(),
        Some("code")
    );
    assert!(query_param(&to_idp, "state").is_some_and(|s| s.len() >= 16));
    assert!(query_param(&to_idp, "nonce").is_some_and(|s| s.len() >= 16));
}
