//! The admin JSON API (`/_sso/api/…`) against the real binary and the real OP: who may call it,
//! the same-origin/CSRF rule, every connection operation with its effect on logins, validation
//! errors naming the field, secrets never returned, invites, groups, users and the audit log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use reqwest::Method;
use serde_json::{json, Value};
use support::admin::{csrf_from, problem_fields, AdminStack, LOCAL, SECOND};
use support::browser::Browser;

const ROUTES: &[(&str, &str)] = &[
    ("GET", "connections"),
    ("POST", "connections"),
    ("GET", "connections/local"),
    ("PUT", "connections/local"),
    ("DELETE", "connections/local"),
    ("POST", "connections/local/active"),
    ("POST", "connections/local/test"),
    ("POST", "connections/test"),
    ("GET", "users"),
    ("GET", "invites"),
    ("POST", "invites"),
    ("DELETE", "invites/a@example.com"),
    ("GET", "groups"),
    ("POST", "groups"),
    ("DELETE", "groups/g"),
    ("GET", "audit"),
];

fn method(m: &str) -> Method {
    Method::from_bytes(m.as_bytes()).unwrap()
}

#[tokio::test]
async fn api_and_pages_refuse_everyone_but_admins() {
    let stack = AdminStack::start(|_| {}).await;
    let anonymous = Browser::new();
    let bob = stack.browser_as("bob").await;
    let origin = stack.public_url.clone();
    for (m, path) in ROUTES {
        let headers = [("origin", origin.as_str())];
        let page = stack
            .session_call(&anonymous, method(m), path, Some(json!({})), &headers)
            .await;
        assert_eq!(
            page.status, 403,
            "{m} {path} without credentials: {}",
            page.body
        );
        let page = stack
            .session_call(&bob, method(m), path, Some(json!({})), &headers)
            .await;
        assert_eq!(page.status, 403, "{m} {path} as bob: {}", page.body);
        let wrong = [("authorization", "Bearer not-the-token")];
        let page = stack
            .session_call(&anonymous, method(m), path, None, &wrong)
            .await;
        assert_eq!(
            page.status, 403,
            "{m} {path} with a wrong token: {}",
            page.body
        );
    }
    // Admins: the token, and alice (group `admins`).
    let (status, body, _) = stack.get("connections").await;
    assert_eq!(status, 200, "{body}");
    let alice = stack.browser_as("alice").await;
    let page = stack
        .session_call(&alice, Method::GET, "connections", None, &[])
        .await;
    assert_eq!(page.status, 200, "{}", page.body);

    // Pages: no session → login; bob → 403; alice → the page.
    let page = anonymous
        .navigate(&stack.url("/_sso/admin/connections"))
        .await;
    assert_eq!(page.status, 302);
    let location = page.location().unwrap();
    assert_eq!(location.path(), "/_sso/login");
    assert!(
        location
            .query()
            .unwrap()
            .contains("rd=%2F_sso%2Fadmin%2Fconnections"),
        "{location}"
    );
    let page = bob.navigate(&stack.url("/_sso/admin/connections")).await;
    assert_eq!(page.status, 403);
    for path in ["connections", "users", "groups", "invites", "audit"] {
        let page = alice
            .navigate(&stack.url(&format!("/_sso/admin/{path}")))
            .await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        let csp = page.header("content-security-policy").unwrap();
        assert!(
            csp.contains("script-src 'nonce-") && csp.contains("connect-src 'self'"),
            "{csp}"
        );
        assert!(!page.body.contains("src=\"http"), "no external assets");
    }
    let page = alice.navigate(&stack.url("/_sso/admin")).await;
    assert_eq!(page.location().unwrap().path(), "/_sso/admin/connections");
}

#[tokio::test]
async fn admin_token_file_is_read_and_works_like_admin_token() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("admin-token");
    let stack = AdminStack::start(|c| {
        let token = c["admin"]["token"].as_str().unwrap().to_owned();
        std::fs::write(&file, format!("{token}\n")).unwrap();
        c["admin"] = json!({ "token_file": file.display().to_string() });
    })
    .await;
    let (status, body, raw) = stack.get("connections").await;
    assert_eq!(status, 200, "{raw}");
    assert!(body.to_string().contains(LOCAL), "{raw}");
    let wrong = stack
        .api
        .get(stack.url("/_sso/api/connections"))
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 403);
}

#[tokio::test]
async fn session_writes_need_same_origin_or_the_csrf_token() {
    let stack = AdminStack::start(|_| {}).await;
    let alice = stack.browser_as("alice").await;
    let group = |name: &str| Some(json!({"name": name}));
    let post = |headers: Vec<(&'static str, String)>, name: &'static str| {
        let alice = &alice;
        let stack = &stack;
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            stack
                .session_call(alice, Method::POST, "groups", group(name), &headers)
                .await
        }
    };
    assert_eq!(post(vec![], "g0").await.status, 403, "no Origin, no token");
    let evil = vec![("origin", "https://evil.example".to_owned())];
    assert_eq!(post(evil, "g1").await.status, 403, "foreign Origin");
    let bad_token = vec![("x-csrf-token", "nope".to_owned())];
    assert_eq!(post(bad_token, "g2").await.status, 403, "wrong CSRF token");
    let same = vec![("origin", stack.public_url.clone())];
    assert_eq!(post(same, "g3").await.status, 201);
    let fetch_site = vec![("sec-fetch-site", "same-origin".to_owned())];
    assert_eq!(post(fetch_site, "g4").await.status, 201);
    let page = alice.navigate(&stack.url("/_sso/admin/groups")).await;
    let token = vec![("x-csrf-token", csrf_from(&page.body))];
    assert_eq!(post(token, "g5").await.status, 201);
    // The bearer token is no browser credential: no Origin needed.
    let (status, _, raw) = stack.call(Method::POST, "groups", group("g6")).await;
    assert_eq!(status, 201, "{raw}");
    let (_, groups, _) = stack.get("groups").await;
    let names: Vec<&str> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["g3", "g4", "g5", "g6"]);
    let (_, audit, _) = stack.get("audit").await;
    let first = &audit["entries"][0];
    assert_eq!(
        (first["actor"].as_str(), first["action"].as_str()),
        (Some("admin-token"), Some("group.create"))
    );
    assert_eq!(audit["entries"][1]["actor"], "alice@example.com");
}

fn ids(list: &Value) -> Vec<String> {
    list["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn oidc_connection_lifecycle_applies_at_once() {
    let stack = AdminStack::start(|_| {}).await;
    let created = stack.create_second("Second OP").await;
    stack.assert_no_secrets("create answer", &created.to_string());
    assert_eq!(created["source"], "admin");
    assert_eq!(created["editable"], true);
    assert_eq!(created["client_secret_set"], true);
    assert!(created["settings"].get("client_secret").is_none());
    assert_eq!(
        created["callback_url"],
        format!("{}/callback_second", stack.public_url)
    );

    let (status, list, raw) = stack.get("connections").await;
    assert_eq!(status, 200);
    stack.assert_no_secrets("connection list", &raw);
    assert_eq!(ids(&list), [LOCAL, SECOND]);
    let local = &list["connections"][0];
    assert_eq!(
        (local["source"].as_str(), local["editable"].as_bool()),
        (Some("file"), Some(false))
    );
    assert_eq!(local["client_secret_set"], true);

    // Both on the login page; a login through the new connection works.
    let chooser = stack.login_page().await;
    assert!(
        chooser.body.contains("Second OP") && chooser.body.contains("Local OP"),
        "{}",
        chooser.body
    );
    let browser = Browser::new();
    let login = browser
        .login(&stack.base_url, Some(SECOND), "bob", "bob-pw", None)
        .await;
    login.expect_success();

    // Rename without resending the secret: the secret is kept (a login still works).
    let mut settings = stack.second_settings("Renamed OP");
    settings.as_object_mut().unwrap().remove("client_secret");
    let (status, updated, raw) = stack
        .call(Method::PUT, "connections/second", Some(settings))
        .await;
    assert_eq!(status, 200, "{raw}");
    assert_eq!(updated["client_secret_set"], true);
    stack.assert_no_secrets("update answer", &raw);
    let chooser = stack.login_page().await;
    assert!(chooser.body.contains("Renamed OP") && !chooser.body.contains("Second OP"));
    stack.wait_ready().await;
    Browser::new()
        .login(&stack.base_url, Some(SECOND), "alice", "alice-pw", None)
        .await
        .expect_success();

    // Deactivate: gone from the login page and refused as a login target.
    let off = Some(json!({"active": false}));
    let (status, toggled, _) = stack
        .call(Method::POST, "connections/second/active", off)
        .await;
    assert_eq!((status, toggled["active"].as_bool()), (200, Some(false)));
    let chooser = stack.login_page().await;
    assert!(!chooser.body.contains("Renamed OP"), "{}", chooser.body);
    let page = Browser::new()
        .navigate(&stack.url("/_sso/login?provider=second"))
        .await;
    assert_eq!(page.status, 400);
    let on = Some(json!({"active": true}));
    let (status, _, _) = stack
        .call(Method::POST, "connections/second/active", on)
        .await;
    assert_eq!(status, 200);
    assert!(stack.login_page().await.body.contains("Renamed OP"));

    // Delete.
    let (status, _, _) = stack.call(Method::DELETE, "connections/second", None).await;
    assert_eq!(status, 204);
    assert_eq!(stack.get("connections/second").await.0, 404);
    assert_eq!(
        stack
            .call(Method::DELETE, "connections/second", None)
            .await
            .0,
        404
    );
    let page = Browser::new()
        .navigate(&stack.url("/_sso/login?provider=second"))
        .await;
    assert_eq!(page.status, 400);

    let (_, audit, raw) = stack.get("audit").await;
    stack.assert_no_secrets("audit log", &raw);
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "connection.delete",
            "connection.activate",
            "connection.deactivate",
            "connection.update",
            "connection.create"
        ]
    );
    let update = &audit["entries"][3];
    assert!(
        update["detail"].as_str().unwrap().contains("display_name"),
        "{update}"
    );
    stack.assert_no_secrets("proxy logs", &stack.proxy().logs());
}

#[tokio::test]
async fn validation_errors_name_the_field_and_change_nothing() {
    let stack = AdminStack::start(|_| {}).await;
    let issuer = stack.op.issuer.clone();
    let no_cert = r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.example"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>"#;
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!({"id": "x1", "client_secret": "s"}),
            vec!["client_id", "issuer"],
        ),
        (
            json!({"id": "x2", "issuer": "not a url", "client_id": "c"}),
            vec!["issuer"],
        ),
        (
            json!({"id": "x3", "issuer": issuer, "client_id": "c", "claims": {"emial": "mail"}}),
            vec!["claims.emial"],
        ),
        (
            json!({"id": "Bad Id", "issuer": issuer, "client_id": "c"}),
            vec!["id"],
        ),
        (
            json!({"id": "local", "issuer": issuer, "client_id": "c"}),
            vec!["id"],
        ),
        (
            json!({"id": "x4", "issuer": issuer, "client_id": "c", "display_name": "local op"}),
            vec!["display_name"],
        ),
        (
            json!({"id": "x5", "issuer": issuer, "client_id": "c", "client_secret_file": "/etc/passwd"}),
            vec!["client_secret_file"],
        ),
        (
            json!({"id": "x6", "issuer": issuer, "client_id": "c", "code_challenge_method": "S512"}),
            vec!["code_challenge_method"],
        ),
        (
            json!({"id": "x7", "issuer": issuer, "client_id": "c", "provider": "nope"}),
            vec!["provider"],
        ),
        (
            json!({"id": "x8", "protocol": "saml", "idp_metadata": no_cert}),
            vec!["idp_metadata"],
        ),
        (
            json!({"id": "x9", "protocol": "saml", "idp_metadata": "/etc/hosts"}),
            vec!["idp_metadata"],
        ),
        (
            json!({"id": "x10", "protocol": "saml"}),
            vec!["idp_metadata"],
        ),
        (
            json!({"id": "x11", "active": "yes", "issuer": issuer, "client_id": "c"}),
            vec!["active"],
        ),
    ];
    for (body, want) in cases {
        let (status, answer, raw) = stack
            .call(Method::POST, "connections", Some(body.clone()))
            .await;
        assert_eq!(status, 400, "{body} → {raw}");
        let mut fields = problem_fields(&answer);
        fields.sort();
        assert_eq!(fields, want, "{body} → {raw}");
        for p in answer["problems"].as_array().unwrap() {
            assert!(!p["message"].as_str().unwrap().is_empty());
        }
    }
    let no_cert_message = {
        let body = json!({"id": "x8", "protocol": "saml", "idp_metadata": no_cert});
        stack.call(Method::POST, "connections", Some(body)).await.1
    };
    assert!(no_cert_message["problems"][0]["message"]
        .as_str()
        .unwrap()
        .contains("signing certificate"));

    // Not JSON, not an object.
    let (status, answer, _) = stack.call(Method::POST, "connections", None).await;
    assert_eq!(status, 400, "an empty body has no client_id: {answer}");
    let raw = stack
        .api
        .post(stack.url("/_sso/api/connections"))
        .bearer_auth(&stack.token)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    let (status, _, _) = stack
        .call(Method::POST, "connections", Some(json!([1, 2])))
        .await;
    assert_eq!(status, 400);

    // Configured connections are read-only; unknown ids are 404.
    let put = Some(json!({"issuer": issuer, "client_id": "c"}));
    let (status, answer, _) = stack
        .call(Method::PUT, "connections/local", put.clone())
        .await;
    assert_eq!((status, answer["error"].as_str()), (409, Some("read_only")));
    assert_eq!(
        stack
            .call(Method::DELETE, "connections/local", None)
            .await
            .0,
        409
    );
    let off = Some(json!({"active": false}));
    assert_eq!(
        stack
            .call(Method::POST, "connections/local/active", off.clone())
            .await
            .0,
        409
    );
    assert_eq!(
        stack.call(Method::PUT, "connections/nope", put).await.0,
        404
    );
    assert_eq!(
        stack
            .call(Method::POST, "connections/nope/active", off)
            .await
            .0,
        404
    );
    assert_eq!(
        stack
            .call(Method::POST, "connections/local/active", Some(json!({})))
            .await
            .0,
        400
    );
    assert_eq!(stack.get("nothing-here").await.0, 404);
    assert_eq!(stack.call(Method::PATCH, "connections", None).await.0, 405);

    // An invalid update leaves the connection as it was.
    stack.create_second("Second OP").await;
    let bad = Some(json!({"issuer": "ftp://x", "client_id": "c"}));
    let (status, answer, _) = stack.call(Method::PUT, "connections/second", bad).await;
    assert_eq!(
        (status, problem_fields(&answer)),
        (400, vec!["issuer".to_owned()])
    );
    let (_, list, _) = stack.get("connections").await;
    assert_eq!(ids(&list), [LOCAL, SECOND]);
    assert_eq!(
        stack.get("connections/second").await.1["settings"]["issuer"],
        stack.op.issuer
    );
}

#[tokio::test]
async fn saml_connection_secrets_are_write_only_and_metadata_is_served() {
    use support::saml_bad_idp::{BadIdp, KeyPair};
    let stack = AdminStack::start(|_| {}).await;
    let idp = BadIdp::new();
    let sp = KeyPair::generate("sp");
    let body = json!({
        "id": "corp-saml",
        "protocol": "saml",
        "provider": "jumpcloud",
        "display_name": "Corp SAML",
        "idp_metadata": idp.metadata(true),
        "sign_requests": true,
        "sp_certificate": sp.cert_pem(),
        "sp_private_key": sp.key_pem(),
    });
    let (status, created, raw) = stack.call(Method::POST, "connections", Some(body)).await;
    assert_eq!(status, 201, "{raw}");
    assert_eq!(created["protocol"], "saml");
    assert_eq!(created["sp_private_key_set"], true);
    assert_eq!(created["ready"], true, "inline metadata is ready at once");
    let key_body = sp.key_pem();
    let key_line = key_body.lines().nth(1).unwrap();
    for (what, text) in [
        ("create", raw),
        ("list", stack.get("connections").await.2),
        ("get", stack.get("connections/corp-saml").await.2),
    ] {
        assert!(
            !text.contains(key_line),
            "{what} answer contains the SP private key"
        );
    }
    let metadata = stack
        .api
        .get(stack.url("/_sso/saml/corp-saml/metadata"))
        .send()
        .await
        .unwrap();
    assert_eq!(metadata.status(), 200);
    assert!(metadata
        .text()
        .await
        .unwrap()
        .contains("callback_corp-saml"));
    assert!(stack.login_page().await.body.contains("Corp SAML"));
    // A SAML update must name the metadata again; without it the field is named.
    let (status, answer, _) = stack
        .call(
            Method::PUT,
            "connections/corp-saml",
            Some(json!({"protocol": "saml"})),
        )
        .await;
    assert_eq!(
        (status, problem_fields(&answer)),
        (400, vec!["idp_metadata".to_owned()])
    );
}

#[tokio::test]
async fn invites_admit_users_when_signup_is_closed() {
    let stack = AdminStack::start(|c| {
        c["providers"]["local"]["create_new_users"] = json!(false);
    })
    .await;
    let refused = Browser::new()
        .login(&stack.base_url, Some(LOCAL), "bob", "bob-pw", None)
        .await;
    assert_eq!(refused.status(), 403, "bob is neither known nor invited");

    for (body, field) in [
        (json!({"email": "not-an-email"}), "email"),
        (json!({}), "email"),
        (json!({"mail": "x@y.z"}), "mail"),
    ] {
        let (status, answer, _) = stack.call(Method::POST, "invites", Some(body)).await;
        assert_eq!(status, 400);
        assert!(
            problem_fields(&answer).contains(&field.to_owned()),
            "{answer}"
        );
    }
    let invite = Some(json!({"email": "Bob@Example.com"}));
    let (status, created, raw) = stack.call(Method::POST, "invites", invite.clone()).await;
    assert_eq!(status, 201, "{raw}");
    assert_eq!(
        (
            created["accepted"].as_bool(),
            created["invited_by"].as_str()
        ),
        (Some(false), Some("admin-token"))
    );
    assert_eq!(stack.call(Method::POST, "invites", invite).await.0, 409);

    Browser::new()
        .login(&stack.base_url, Some(LOCAL), "bob", "bob-pw", None)
        .await
        .expect_success();
    let (_, invites, _) = stack.get("invites").await;
    assert_eq!(invites["invites"][0]["accepted"], true);
    let (_, users, _) = stack.get("users").await;
    let bob = &users["users"][0];
    assert_eq!(
        (
            bob["provider"].as_str(),
            bob["user"].as_str(),
            bob["email"].as_str()
        ),
        (Some("local"), Some("bob"), Some("bob@example.com"))
    );

    assert_eq!(
        stack
            .call(Method::DELETE, "invites/bob%40example.com", None)
            .await
            .0,
        204
    );
    assert_eq!(
        stack
            .call(Method::DELETE, "invites/bob@example.com", None)
            .await
            .0,
        404
    );
    assert!(stack.get("invites").await.1["invites"]
        .as_array()
        .unwrap()
        .is_empty());
    // carol was never invited.
    let refused = Browser::new()
        .login(&stack.base_url, Some(LOCAL), "carol", "carol-pw", None)
        .await;
    assert_eq!(refused.status(), 403);
}

#[tokio::test]
async fn local_groups_extend_the_signup_rule() {
    let stack = AdminStack::start(|c| {
        c["providers"]["local"]["groups"]["prohibit_user_signup_if_not_in_group"] = json!(true);
        c["directory"] = json!({"groups": ["staff"]});
    })
    .await;
    let refused = Browser::new()
        .login(&stack.base_url, Some(LOCAL), "bob", "bob-pw", None)
        .await;
    assert_eq!(
        refused.status(),
        403,
        "bob's group ml-team is not a local group yet"
    );

    let body = Some(json!({"name": "ml-team", "description": "ML engineers"}));
    let (status, created, raw) = stack.call(Method::POST, "groups", body.clone()).await;
    assert_eq!(status, 201, "{raw}");
    assert_eq!(created["source"], "admin");
    assert_eq!(stack.call(Method::POST, "groups", body).await.0, 409);
    assert_eq!(
        stack
            .call(Method::POST, "groups", Some(json!({"name": "STAFF"})))
            .await
            .0,
        409
    );
    let (status, answer, _) = stack
        .call(Method::POST, "groups", Some(json!({"name": "a,b"})))
        .await;
    assert_eq!(
        (status, problem_fields(&answer)),
        (400, vec!["name".to_owned()])
    );

    Browser::new()
        .login(&stack.base_url, Some(LOCAL), "bob", "bob-pw", None)
        .await
        .expect_success();
    let (_, groups, _) = stack.get("groups").await;
    let listed: Vec<(&str, &str)> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["name"].as_str().unwrap(), g["source"].as_str().unwrap()))
        .collect();
    assert_eq!(listed, [("staff", "file"), ("ml-team", "admin")]);
    assert_eq!(
        stack.call(Method::DELETE, "groups/staff", None).await.0,
        409
    );
    assert_eq!(
        stack.call(Method::DELETE, "groups/ml-team", None).await.0,
        204
    );
    assert_eq!(
        stack.call(Method::DELETE, "groups/ml-team", None).await.0,
        404
    );
    // The group rule applies at every login: with ml-team gone, bob (known now) is refused again.
    let refused = Browser::new()
        .login(&stack.base_url, Some(LOCAL), "bob", "bob-pw", None)
        .await;
    assert_eq!(refused.status(), 403, "ml-team is no longer a local group");
}

#[tokio::test]
async fn a_deleted_connection_callback_gets_a_clear_400() {
    let stack = AdminStack::start(|_| {}).await;
    stack.create_second("Second OP").await;
    let browser = Browser::new();
    let start = stack.url("/_sso/login?provider=second");
    let base = url::Url::parse(&stack.base_url).unwrap();
    let driven = browser
        .drive(&start, "alice", "alice-pw", |u| {
            u.origin() == base.origin() && u.path().starts_with("/callback_")
        })
        .await;
    let callback = driven.stopped_at.expect("reached the callback");
    assert_eq!(
        stack
            .call(Method::DELETE, "connections/second", None)
            .await
            .0,
        204
    );
    let page = browser.navigate(callback.as_str()).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(
        page.body.contains("second"),
        "the page names the connection: {}",
        page.body
    );
    assert_eq!(stack.echo.request_count(), 0);
    assert_eq!(
        browser.api_get(&stack.url("/_sso/userinfo")).await.status,
        401
    );
}

/// Drive a browser through the IdP's login form for `second` and stop before the callback.
async fn start_second_login(stack: &AdminStack, browser: &Browser, user: &str) -> url::Url {
    let base = url::Url::parse(&stack.base_url).unwrap();
    let start = stack.url("/_sso/login?provider=second");
    browser
        .drive(&start, user, &format!("{user}-pw"), |u| {
            u.origin() == base.origin() && u.path().starts_with("/callback_")
        })
        .await
        .stopped_at
        .expect("reached the callback")
}

#[tokio::test]
async fn a_login_in_flight_finishes_on_the_settings_it_started_with() {
    let stack = AdminStack::start(|_| {}).await;
    stack.create_second("Second OP").await;
    let before_edit = Browser::new();
    let callback = start_second_login(&stack, &before_edit, "alice").await;
    let before_toggle = Browser::new();
    let toggled_callback = start_second_login(&stack, &before_toggle, "bob").await;

    // The edit: a client secret the OP does not know, and a new name.
    let mut settings = stack.second_settings("Edited OP");
    settings["client_secret"] = json!("not-the-secret-the-op-knows-0123456789");
    let (status, _, raw) = stack
        .call(Method::PUT, "connections/second", Some(settings))
        .await;
    assert_eq!(status, 200, "{raw}");
    assert!(stack.login_page().await.body.contains("Edited OP"));
    stack.wait_ready().await;

    // A login started after the edit uses the new secret, which the OP refuses...
    let after = Browser::new()
        .login(&stack.base_url, Some(SECOND), "alice", "alice-pw", None)
        .await;
    assert!(
        after.callback_url.is_some() && !after.succeeded(),
        "the edited secret is in use for new logins:\n  {}",
        after.trail.join("\n  ")
    );
    // ...while the one started before it finishes with the settings it started with.
    let page = before_edit.navigate(callback.as_str()).await;
    assert!(page.is_redirect(), "{}", page.describe());
    let me = before_edit.api_get(&stack.url("/_sso/userinfo")).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.json()["user"], "alice", "{}", me.body);

    // Deactivating is different: a login in flight to a connection switched off is refused.
    let off = Some(json!({"active": false}));
    let (status, _, _) = stack
        .call(Method::POST, "connections/second/active", off)
        .await;
    assert_eq!(status, 200);
    let page = before_toggle.navigate(toggled_callback.as_str()).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert_eq!(
        before_toggle
            .api_get(&stack.url("/_sso/userinfo"))
            .await
            .status,
        401
    );
    stack.assert_no_secrets("proxy logs", &stack.proxy().logs());
}

/// Start a SAML login at `corp` in `browser`: `(RelayState, AuthnRequest ID)`.
async fn start_corp_login(stack: &AdminStack, browser: &Browser) -> (String, String) {
    let start = browser
        .navigate(&stack.url("/_sso/login?provider=corp"))
        .await;
    assert_eq!(start.status, 302, "{}", start.body);
    let location = start.location().unwrap();
    let param = |name: &str| {
        location
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    let request = sso_proxy::providers::saml::request::inflate(&param("SAMLRequest")).unwrap();
    let doc = roxmltree::Document::parse(&request).unwrap();
    let request_id = doc.root_element().attribute("ID").unwrap().to_owned();
    (param("RelayState"), request_id)
}

/// POST a `SAMLResponse` to `corp`'s ACS from `browser`.
async fn post_corp_acs(
    stack: &AdminStack,
    browser: &Browser,
    relay: &str,
    response: &str,
) -> support::browser::Page {
    let form = [("SAMLResponse", response), ("RelayState", relay)];
    let acs = format!("{}/callback_corp", stack.public_url);
    browser
        .send(
            browser
                .client
                .post(acs)
                .header("origin", "null")
                .form(&form),
        )
        .await
}

#[tokio::test]
async fn a_saml_login_in_flight_finishes_on_the_rules_it_started_with() {
    use support::saml_bad_idp::{build, encode, BadIdp, ResponseSpec};
    let stack = AdminStack::start(|_| {}).await;
    let idp = BadIdp::new();
    let settings = |admins: Value| {
        json!({"id": "corp", "protocol": "saml", "display_name": "Corp",
               "idp_metadata": idp.metadata(true),
               "groups": {"enabled": true, "admins": admins}})
    };
    let (status, _, raw) = stack
        .call(
            Method::POST,
            "connections",
            Some(settings(json!(["admins"]))),
        )
        .await;
    assert_eq!(status, 201, "{raw}");
    let entity_id = format!("{}/_sso/saml/corp/metadata", stack.public_url);
    let acs = format!("{}/callback_corp", stack.public_url);
    // sam (IdP group `admins`) answers for a login started before the edit, and another browser
    // starts one too.
    let early = Browser::new();
    let (relay, request_id) = start_corp_login(&stack, &early).await;
    let spec = ResponseSpec::valid(Some(&request_id), &entity_id, &acs, "sam");
    let response = encode(&build(&spec, &idp.keys.key));
    let other = Browser::new();
    let (other_relay, _) = start_corp_login(&stack, &other).await;

    // The edit: `admins` no longer lists the IdP group.
    let (status, _, raw) = stack
        .call(Method::PUT, "connections/corp", Some(settings(json!([]))))
        .await;
    assert_eq!(status, 200, "{raw}");

    // The early login finishes on the rules it started with: sam is an admin.
    let page = post_corp_acs(&stack, &early, &relay, &response).await;
    assert_eq!(page.status, 303, "{}", page.body);
    let me = early.api_get(&stack.url("/_sso/userinfo")).await;
    let got = (
        me.json()["user"].as_str().map(str::to_owned),
        me.json()["admin"].as_bool(),
    );
    assert_eq!(got, (Some("sam".to_owned()), Some(true)), "{}", me.body);
    // The other login's state does not accept an answer to the early one's request.
    let crossed = post_corp_acs(&stack, &other, &other_relay, &response).await;
    assert_eq!(crossed.status, 400, "{}", crossed.body);
    // An unsolicited assertion used before the edit stays used after it (the replay memory
    // is the process's, not the rebuilt connection's).
    let unsolicited = ResponseSpec::valid(None, &entity_id, &acs, "sam");
    let unsolicited = encode(&build(&unsolicited, &idp.keys.key));
    let with_idp_initiated = |admins: Value| {
        let mut s = settings(admins);
        s["allow_idp_initiated"] = json!(true);
        s
    };
    let (status, _, raw) = stack
        .call(
            Method::PUT,
            "connections/corp",
            Some(with_idp_initiated(json!([]))),
        )
        .await;
    assert_eq!(status, 200, "{raw}");
    let first = post_corp_acs(&stack, &Browser::new(), "", &unsolicited).await;
    assert_eq!(first.status, 303, "{}", first.body);
    let (status, _, raw) = stack
        .call(
            Method::PUT,
            "connections/corp",
            Some(with_idp_initiated(json!(["x"]))),
        )
        .await;
    assert_eq!(status, 200, "{raw}");
    let again = post_corp_acs(&stack, &Browser::new(), "", &unsolicited).await;
    assert_eq!(again.status, 400, "{}", again.body);
    assert!(again.body.contains("already used"), "{}", again.body);

    // A login started after the edit follows the new rules.
    let fresh = Browser::new();
    let (relay, request_id) = start_corp_login(&stack, &fresh).await;
    let spec = ResponseSpec::valid(Some(&request_id), &entity_id, &acs, "sam");
    let page = post_corp_acs(
        &stack,
        &fresh,
        &relay,
        &encode(&build(&spec, &idp.keys.key)),
    )
    .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let me = fresh.api_get(&stack.url("/_sso/userinfo")).await;
    assert_eq!(me.json()["admin"].as_bool(), Some(false), "{}", me.body);
}
