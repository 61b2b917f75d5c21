//! The ClearML bridge (issue 5, DESIGN 3.3): people who log in through the proxy become real
//! ClearML users with a working ClearML session; API clients with their own `Authorization` pass
//! untouched.
//!
//! The ClearML server is `support::clearml_api::ClearmlApi`, a stand-in that follows the
//! open-source server's auth contract. Its webserver routing is the proxy's upstream: `/api/*`
//! goes to the stand-in's API, everything else to the echo upstream (`stack.echo`).
//!
//! The `stand_in_*` tests check the stand-in itself and need no proxy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use support::bad_op::BadUser;
use support::browser::{Browser, Page};
use support::clearml_api::{
    basic_auth, decode_token, set_cookie_attributes, set_cookie_value, ApiOptions, Auth, AuthKind,
    ClearmlApi, Failure, Identity, DEFAULT_COMPANY, DEFAULT_COOKIE_NAME, DEFAULT_EXPIRATION_SEC,
    MAX_EXPIRATION_SEC, SYSTEM_USER_ID,
};
use support::echo::EchoUpstream;
use support::proxy::spawn_proxy_with;
use support::raw;
use support::stack::{Stack, StackOptions, BAD};
use support::util::{free_port, jwt_header, now, random_string, wait_for};

/// What an error page about the ClearML API server must say (compared in lower case).
const API_SERVER: &str = "clearml api server";
/// `token_lifetime` by default (12 h), sent as `expiration_sec`.
const DEFAULT_TOKEN_LIFETIME: i64 = 12 * 3600;
/// A second ClearML company for the company tests.
const OTHER_COMPANY: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";

// ---------------------------------------------------------------------------------------------
// Harness

/// A proxy with the bridge on, in front of the stand-in, with its own state database.
struct Bridge {
    stack: Stack,
    api: ClearmlApi,
    _state_dir: tempfile::TempDir,
}

impl std::ops::Deref for Bridge {
    type Target = Stack;
    fn deref(&self) -> &Stack {
        &self.stack
    }
}

impl Bridge {
    /// BadOp connection (`bad`), stand-in with defaults, bridge with defaults.
    async fn with_bad_op() -> Self {
        Self::start(StackOptions::bad(), |_, _| {}).await
    }

    async fn start(opts: StackOptions, tweak: impl FnOnce(&mut Value, &ClearmlApi)) -> Self {
        Self::start_with(ClearmlApi::start(), opts, tweak).await
    }

    /// `upstream` → the stand-in's webserver (→ echo), `clearml` → the stand-in, `state.path` →
    /// a fresh temp dir; then `tweak`.
    async fn start_with(
        api: ClearmlApi,
        opts: StackOptions,
        tweak: impl FnOnce(&mut Value, &ClearmlApi),
    ) -> Self {
        let state_dir = tempfile::tempdir().unwrap();
        let db = state_dir.path().join("sso-proxy.db");
        let stack = Stack::start(opts, |c| {
            api.route_upstream(c);
            c["clearml"] = api.bridge_config();
            c["state"] = json!({ "path": db.to_str().unwrap() });
            tweak(c, &api);
        })
        .await;
        Self {
            stack,
            api,
            _state_dir: state_dir,
        }
    }

    /// The ClearML cookie in `browser`'s jar for the proxy, if any (an empty value counts as none).
    fn clearml_cookie(&self, browser: &Browser) -> Option<String> {
        browser
            .cookie(&self.url("/"), &self.api.cookie_name)
            .filter(|v| !v.is_empty())
    }

    /// The `Set-Cookie` of the ClearML cookie in `page`, if any.
    fn clearml_set_cookie(&self, page: &Page) -> Option<String> {
        page.header_all("set-cookie")
            .into_iter()
            .find(|c| set_cookie_value(c, &self.api.cookie_name).is_some())
    }

    /// A web-app API call through the proxy: `POST <path>` with JSON, as the ClearML web app's
    /// HttpClient sends it (same origin, fetch metadata, `X-Allegro-Client`).
    async fn webapp_call(&self, b: &Browser, path: &str, body: Value) -> Page {
        self.webapp_call_with(b, path, body, &[]).await
    }

    async fn webapp_call_with(
        &self,
        b: &Browser,
        path: &str,
        body: Value,
        headers: &[(&str, &str)],
    ) -> Page {
        let mut req = b
            .client
            .post(self.url(path))
            .header("accept", "application/json, text/plain, */*")
            .header("content-type", "application/json")
            .header("origin", self.base())
            .header("sec-fetch-mode", "cors")
            .header("sec-fetch-site", "same-origin")
            .header("sec-fetch-dest", "empty")
            .header("x-allegro-client", "Webapp-2.0.0")
            .body(body.to_string());
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        b.send(req).await
    }

    /// An SDK-style call through the proxy: no cookies at all, its own `Authorization`.
    async fn sdk_call(
        &self,
        method: Method,
        path: &str,
        authorization: &str,
        headers: &[(&str, &str)],
    ) -> Page {
        let b = Browser::new();
        let mut req = b
            .client
            .request(method.clone(), self.url(path))
            .header("authorization", authorization)
            .header("accept", "application/json");
        if method == Method::POST {
            req = req.header("content-type", "application/json").body("{}");
        }
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        b.send(req).await
    }

    /// The ClearML user with `email`; panics when there is none.
    fn clearml_user(&self, email: &str) -> support::clearml_api::User {
        self.api
            .user_by_email(email)
            .unwrap_or_else(|| panic!("no ClearML user {email}; users: {:?}", self.api.people()))
    }

    /// Log in at the BadOp as `user`; panics unless it worked.
    async fn browser_for(&self, user: BadUser) -> Browser {
        self.bad().set_user(user);
        self.browser_bad().await
    }

    /// The request's `Cookie` header for the proxy without the ClearML cookie.
    fn cookies_without_clearml(&self, b: &Browser) -> String {
        b.cookies_for(&self.url("/"))
            .into_iter()
            .filter(|(n, _)| *n != self.api.cookie_name)
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// A BadOp user `sub` (`<sub>@example.com`, "Sub Tester") in `groups`.
fn person(sub: &str, groups: &[&str]) -> BadUser {
    let mut given = sub.to_owned();
    given[..1].make_ascii_uppercase();
    BadUser {
        sub: sub.to_owned(),
        email: format!("{sub}@example.com"),
        email_verified: true,
        name: format!("{given} Tester"),
        given_name: given,
        family_name: "Tester".to_owned(),
        preferred_username: sub.to_owned(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    }
}

fn sys(api: &ClearmlApi) -> Auth<'_> {
    Auth::Basic(&api.system_key, &api.system_secret)
}

fn lower(s: &str) -> String {
    s.to_ascii_lowercase()
}

/// Header names the proxy must strip from browser requests in ClearML mode (normalised).
fn is_impersonation_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase().replace('_', "-");
    matches!(
        n.as_str(),
        "x-clearml-impersonate-as"
            | "x-clearml-act-as"
            | "x-trains-impersonate-as"
            | "x-trains-act-as"
    )
}

/// The login ended on an error page (5xx) that names the ClearML API server.
fn assert_api_server_error(result: &support::browser::LoginResult) {
    assert!(
        !result.succeeded(),
        "login must fail; trail:\n  {}",
        result.trail_text()
    );
    assert!(
        result.status().is_server_error(),
        "error page is a 5xx: {} {}\ntrail:\n  {}",
        result.status(),
        result.response.body,
        result.trail_text()
    );
    assert!(
        lower(&result.response.body).contains(API_SERVER),
        "error page names the ClearML API server: {}",
        result.response.body
    );
}

// ---------------------------------------------------------------------------------------------
// The stand-in on its own

#[tokio::test]
async fn stand_in_answers_with_the_clearml_envelope_on_any_version_prefix() {
    let api = ClearmlApi::start();
    for (path, requested) in [
        ("/debug.ping", "2.31"),
        ("/v2.31/debug.ping", "2.31"),
        ("/v999.0/debug.ping/", "999.0"),
    ] {
        let r = api.call(path, Auth::None, json!({})).await;
        assert_eq!(r.status, 200, "{path}: {}", r.json);
        let meta = &r.json["meta"];
        assert!(meta["id"].as_str().is_some_and(|s| s.len() == 32), "{meta}");
        assert_eq!(meta["trx"], meta["id"]);
        assert_eq!(meta["endpoint"]["name"], "debug.ping");
        assert_eq!(meta["endpoint"]["requested_version"], requested);
        assert_eq!(meta["endpoint"]["actual_version"], "1.0");
        assert_eq!(meta["result_code"], 200);
        assert_eq!(meta["result_subcode"], 0);
        assert_eq!(meta["result_msg"], "OK");
        assert_eq!(meta["error_stack"], Value::Null);
        assert_eq!(meta["error_data"], json!({}));
        assert_eq!(r.data()["msg"], "ClearML server");
    }
    let r = api
        .call("/v2.31/nosuch.endpoint", Auth::None, json!({}))
        .await;
    assert_eq!((r.status, r.result_code()), (404, 404), "{}", r.json);
    let r = api.call("/not-an-endpoint", Auth::None, json!({})).await;
    assert_eq!((r.status, r.result_code()), (400, 400), "{}", r.json);
    // login.logout exists from 2.13 on.
    let r = api.call("/v2.12/login.logout", Auth::None, json!({})).await;
    assert_eq!(r.status, 404, "{}", r.json);

    // Any method; the query string is merged into the body.
    let page = Browser::new()
        .api_get(&format!("{}/v2.31/login.supported_modes?x=1", api.url))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(api.calls().last().unwrap().body["x"], 1);
}

#[tokio::test]
async fn stand_in_basic_login_issues_an_hs256_token_and_sets_the_session_cookie() {
    let api = ClearmlApi::start();
    let r = api.call("/auth.login", sys(&api), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.json);
    let token = r.token();
    assert_eq!(jwt_header(&token)["alg"], "HS256");
    let claims = decode_token(&token);
    assert_eq!(claims["identity"]["user"], SYSTEM_USER_ID);
    assert_eq!(claims["identity"]["role"], "system");
    assert_eq!(claims["identity"]["company"], DEFAULT_COMPANY);
    assert_eq!(claims["auth_type"], "Bearer");
    assert!(claims["session_id"].as_str().is_some_and(|s| s.len() == 32));
    assert!(
        claims.get("exp").is_none(),
        "a system user asking for no expiry gets none"
    );
    let info = api.verify_token(&token).unwrap();
    assert_eq!(info.identity.user, SYSTEM_USER_ID);

    let set = r
        .set_cookie(DEFAULT_COOKIE_NAME)
        .expect("session cookie set");
    assert_eq!(
        set_cookie_value(set, DEFAULT_COOKIE_NAME),
        Some(token.as_str())
    );
    let attrs = set_cookie_attributes(set);
    assert!(attrs.iter().any(|(n, _)| n == "httponly"), "{set}");
    assert!(attrs.contains(&("path".into(), "/".into())), "{set}");
    assert!(attrs.contains(&("samesite".into(), "Lax".into())), "{set}");
    assert!(
        attrs.contains(&("max-age".into(), "99999999999".into())),
        "{set}"
    );
    assert!(!attrs.iter().any(|(n, _)| n == "secure"), "{set}");

    // A person's credential: 30 days unless asked otherwise; at most one year.
    let ann = api.add_user("Ann Example", "ann@example.com", "user", None);
    let (key, secret) = api.add_credentials(&ann);
    let info = api.verify_token(&api.login(&key, &secret).await).unwrap();
    assert_eq!(info.identity.user, ann);
    assert_eq!(info.identity.role, "user");
    assert_eq!(info.identity.user_name, "Ann Example");
    assert_eq!(info.exp.unwrap() - info.iat, DEFAULT_EXPIRATION_SEC);
    let r = api
        .call(
            "/auth.login",
            Auth::Basic(&key, &secret),
            json!({"expiration_sec": 60}),
        )
        .await;
    let info = api.verify_token(&r.token()).unwrap();
    assert_eq!(info.exp.unwrap() - info.iat, 60);
    let r = api
        .call(
            "/auth.login",
            Auth::Basic(&key, &secret),
            json!({"expiration_sec": MAX_EXPIRATION_SEC + 1}),
        )
        .await;
    assert_eq!((r.status, r.result_subcode()), (400, 12), "{}", r.json);
}

#[tokio::test]
async fn stand_in_refuses_missing_malformed_wrong_and_forged_credentials() {
    let api = ClearmlApi::start();
    let ann = api.add_user("Ann", "ann@example.com", "user", None);
    let (key, _) = api.add_credentials(&ann);
    let cases: Vec<(&str, Option<String>, u64)> = vec![
        ("no credentials", None, 20),
        ("wrong secret", Some(basic_auth(&key, "wrong")), 22),
        ("unknown key", Some(basic_auth("NOSUCHKEY", "x")), 22),
        (
            "malformed basic",
            Some("Basic !!!not-base64".to_owned()),
            21,
        ),
        ("other scheme", Some("Token abc".to_owned()), 10),
        ("garbage bearer", Some("Bearer not.a.jwt".to_owned()), 30),
    ];
    for (what, authorization, subcode) in cases {
        let headers: Vec<(&str, &str)> = authorization
            .as_deref()
            .map(|a| vec![("authorization", a)])
            .unwrap_or_default();
        let r = api
            .call_with(
                &api.url,
                "/users.get_current_user",
                Auth::None,
                json!({}),
                &headers,
            )
            .await;
        assert_eq!(r.status, 401, "{what}: {}", r.json);
        assert_eq!(
            (r.result_code(), r.result_subcode()),
            (401, subcode),
            "{what}: {}",
            r.json
        );
    }

    // A token signed with another secret, and an expired one.
    let identity = Identity {
        user: ann.clone(),
        company: DEFAULT_COMPANY.into(),
        role: "admin".into(),
        user_name: "Ann".into(),
        company_name: "clearml".into(),
    };
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"identity": {"user": ann, "company": DEFAULT_COMPANY, "role": "admin"},
                "session_id": "x", "iat": now(), "exp": now() + 600}),
        &jsonwebtoken::EncodingKey::from_secret(b"not-the-server-secret"),
    )
    .unwrap();
    let expired = api.forge_token(&identity, Some(now() - 1));
    for (what, token) in [("forged", &forged), ("expired", &expired)] {
        let r = api
            .call("/users.get_current_user", Auth::Bearer(token), json!({}))
            .await;
        assert_eq!(
            (r.status, r.result_subcode()),
            (401, 30),
            "{what}: {}",
            r.json
        );
        assert!(api.verify_token(token).is_err(), "{what}");
    }

    // `authorize: null` endpoints ignore bad credentials instead of failing.
    let r = api
        .call("/login.supported_modes", Auth::Bearer(&forged), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.data()["authenticated"], false);
}

#[tokio::test]
async fn stand_in_takes_the_session_cookie_as_bearer_unless_an_authorization_header_is_sent() {
    let api = ClearmlApi::start();
    let ann = api.add_user("Ann", "ann@example.com", "user", None);
    let token = api.mint_token(&ann, None);
    let r = api
        .call("/users.get_current_user", Auth::Cookie(&token), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.data()["user"]["id"], ann.as_str());
    assert_eq!(r.data()["user"]["email"], "ann@example.com");
    assert_eq!(r.data()["user"]["role"], "user");
    assert_eq!(api.calls().last().unwrap().auth, AuthKind::Cookie);

    // An Authorization header wins over a valid cookie.
    let r = api
        .call_with(
            &api.url,
            "/users.get_current_user",
            Auth::Cookie(&token),
            json!({}),
            &[("authorization", "Bearer not.a.jwt")],
        )
        .await;
    assert_eq!((r.status, r.result_subcode()), (401, 30), "{}", r.json);

    // The cookie name is configurable (the Helm chart uses clearml-token-k8s).
    let k8s = ClearmlApi::start_with(ApiOptions {
        cookie_name: "clearml-token-k8s".into(),
        ..ApiOptions::default()
    });
    let r = k8s.call("/auth.login", sys(&k8s), json!({})).await;
    assert!(
        r.set_cookie("clearml-token-k8s").is_some(),
        "{:?}",
        r.set_cookies
    );
    let token = r.token();
    let r = k8s
        .call("/users.get_current_user", Auth::Cookie(&token), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    let r = k8s
        .call_with(
            &k8s.url,
            "/users.get_current_user",
            Auth::None,
            json!({}),
            &[("cookie", &format!("{DEFAULT_COOKIE_NAME}={token}"))],
        )
        .await;
    assert_eq!((r.status, r.result_subcode()), (401, 20), "{}", r.json);
}

/// `auth.login {expiration_sec: 120}` as `caller`, impersonating `target` with `header`.
async fn impersonate(
    api: &ClearmlApi,
    caller: Auth<'_>,
    target: &str,
    header: &str,
) -> support::clearml_api::Reply {
    api.call_with(
        &api.url,
        "/auth.login",
        caller,
        json!({"expiration_sec": 120}),
        &[(header, target)],
    )
    .await
}

#[tokio::test]
async fn stand_in_impersonation_is_for_system_and_admin_callers_and_uses_the_users_role() {
    let api = ClearmlApi::start();
    let alice = api.add_user("Alice", "alice@example.com", "admin", None);
    let bob = api.add_user("Bob", "bob@example.com", "user", None);
    api.add_company(OTHER_COMPANY, "other");
    let carl = api.add_user("Carl", "carl@example.com", "user", Some(OTHER_COMPANY));
    const AS: &str = "X-Clearml-Impersonate-As";

    // The system credential gets a token for Bob, with Bob's own role, and the cookie.
    let r = impersonate(&api, sys(&api), &bob, AS).await;
    assert_eq!(r.status, 200, "{}", r.json);
    let token = r.token();
    let info = api.verify_token(&token).unwrap();
    assert_eq!(
        (info.identity.user.as_str(), info.identity.role.as_str()),
        (bob.as_str(), "user")
    );
    assert_eq!(info.exp.unwrap() - info.iat, 120);
    assert_eq!(
        set_cookie_value(
            r.set_cookie(DEFAULT_COOKIE_NAME).unwrap(),
            DEFAULT_COOKIE_NAME
        ),
        Some(token.as_str())
    );
    assert_eq!(api.last_impersonation().as_deref(), Some(bob.as_str()));
    let call = api.calls().last().unwrap().clone();
    assert_eq!(call.caller.as_deref(), Some(SYSTEM_USER_ID));
    assert_eq!(call.impersonate_as.as_deref(), Some(bob.as_str()));

    // The X-Trains- twin works the same; Alice is an admin.
    let alice_token = impersonate(&api, sys(&api), &alice, "X-Trains-Impersonate-As")
        .await
        .token();
    assert_eq!(
        api.verify_token(&alice_token).unwrap().identity.role,
        "admin"
    );

    // An admin may impersonate in her own company; a user may not (400/6, as the server does).
    let r = impersonate(&api, Auth::Bearer(&alice_token), &bob, AS).await;
    assert_eq!(r.status, 200, "{}", r.json);
    let bob_token = api.mint_token(&bob, None);
    let r = impersonate(&api, Auth::Bearer(&bob_token), &alice, AS).await;
    assert_eq!((r.status, r.result_subcode()), (400, 6), "{}", r.json);
    assert!(r.data().get("token").is_none());

    // Unknown users and users of another company are refused.
    for target in ["0000", carl.as_str()] {
        let r = impersonate(&api, sys(&api), target, AS).await;
        assert_eq!((r.status, r.result_subcode()), (400, 6), "{}", r.json);
    }

    // Both headers at once: 400/5.
    let r = api
        .call_with(
            &api.url,
            "/auth.login",
            sys(&api),
            json!({}),
            &[(AS, &bob), ("X-Clearml-Act-As", &bob)],
        )
        .await;
    assert_eq!((r.status, r.result_subcode()), (400, 5), "{}", r.json);

    // Act-As keeps the caller's role.
    let r = api
        .call_with(
            &api.url,
            "/users.get_current_user",
            Auth::Bearer(&alice_token),
            json!({}),
            &[("X-Clearml-Act-As", &bob)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.data()["user"]["id"], bob.as_str());
    assert_eq!(r.data()["user"]["role"], "admin");
}

#[tokio::test]
async fn stand_in_can_allow_impersonation_to_the_system_key_only() {
    let api = ClearmlApi::start_with(ApiOptions {
        system_only_impersonation: true,
        ..ApiOptions::default()
    });
    let alice = api.add_user("Alice", "alice@example.com", "admin", None);
    let bob = api.add_user("Bob", "bob@example.com", "user", None);
    const AS: &str = "X-Clearml-Impersonate-As";
    let r = impersonate(&api, sys(&api), &bob, AS).await;
    assert_eq!(r.status, 200, "the system key may: {}", r.json);
    let alice_token = api.mint_token(&alice, None);
    let r = impersonate(&api, Auth::Bearer(&alice_token), &bob, AS).await;
    assert_eq!(
        (r.status, r.result_subcode()),
        (400, 6),
        "an admin may not: {}",
        r.json
    );
}

#[tokio::test]
async fn stand_in_create_user_needs_a_unique_email_a_company_role_and_a_privileged_caller() {
    let api = ClearmlApi::start();
    let new_user = |email: &str, role: Option<&str>| {
        let mut body = json!({
            "name": "Nina New", "company": DEFAULT_COMPANY, "email": email,
            "given_name": "Nina", "family_name": "New", "avatar": "https://example.com/n.png",
        });
        if let Some(role) = role {
            body["role"] = json!(role);
        }
        body
    };
    let r = api
        .call(
            "/auth.create_user",
            sys(&api),
            new_user("nina@example.com", None),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    let id = r.data()["id"].as_str().unwrap().to_owned();
    let nina = api.user(&id).unwrap();
    assert_eq!(nina.role, "user", "role defaults to user");
    assert_eq!(nina.email, "nina@example.com");
    assert_eq!(nina.given_name.as_deref(), Some("Nina"));
    assert_eq!(nina.family_name.as_deref(), Some("New"));
    assert_eq!(nina.company, DEFAULT_COMPANY);

    // The email is unique: 400/801 and no id.
    let r = api
        .call(
            "/auth.create_user",
            sys(&api),
            new_user("nina@example.com", Some("admin")),
        )
        .await;
    assert_eq!((r.status, r.result_subcode()), (400, 801), "{}", r.json);
    assert!(r.data().get("id").is_none());
    assert_eq!(api.people().len(), 1);

    for role in ["root", "system"] {
        let r = api
            .call(
                "/auth.create_user",
                sys(&api),
                new_user("x@example.com", Some(role)),
            )
            .await;
        assert_eq!(
            (r.status, r.result_subcode()),
            (400, 12),
            "{role}: {}",
            r.json
        );
    }
    let r = api
        .call(
            "/auth.create_user",
            sys(&api),
            json!({"name": "No Mail", "company": DEFAULT_COMPANY}),
        )
        .await;
    assert_eq!((r.status, r.result_subcode()), (400, 12), "{}", r.json);
    let mut body = new_user("y@example.com", None);
    body["company"] = json!("nosuchcompany");
    let r = api.call("/auth.create_user", sys(&api), body).await;
    assert_eq!((r.status, r.result_subcode()), (400, 10), "{}", r.json);

    // A user may not create users; an admin only in her own company.
    let user_token = api.mint_token(&id, None);
    let r = api
        .call(
            "/auth.create_user",
            Auth::Bearer(&user_token),
            new_user("z@example.com", None),
        )
        .await;
    assert_eq!((r.status, r.result_subcode()), (403, 20), "{}", r.json);
    let admin = api.add_user("Ada", "ada@example.com", "admin", None);
    let admin_token = api.mint_token(&admin, None);
    api.add_company(OTHER_COMPANY, "other");
    let mut body = new_user("z@example.com", None);
    body["company"] = json!(OTHER_COMPANY);
    let r = api
        .call("/auth.create_user", Auth::Bearer(&admin_token), body)
        .await;
    assert_eq!((r.status, r.result_subcode()), (400, 10), "{}", r.json);
    let r = api
        .call(
            "/auth.create_user",
            Auth::Bearer(&admin_token),
            new_user("z@example.com", Some("guest")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(api.count("auth.create_user"), 9);
    assert_eq!(api.ok_count("auth.create_user"), 2);
}

#[tokio::test]
async fn stand_in_edit_user_changes_the_role_that_new_tokens_carry() {
    let api = ClearmlApi::start();
    let bob = api.add_user("Bob", "bob@example.com", "user", None);
    let old = api.mint_token(&bob, None);
    let r = api
        .call(
            "/auth.edit_user",
            sys(&api),
            json!({"user": bob, "role": "admin"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.data()["updated"], 1);
    assert_eq!(r.data()["fields"]["role"], "admin");
    assert_eq!(api.user(&bob).unwrap().role, "admin");
    // The role is baked into tokens: the old one still says user, a new one admin.
    assert_eq!(api.verify_token(&old).unwrap().identity.role, "user");
    let r = api
        .call_with(
            &api.url,
            "/auth.login",
            sys(&api),
            json!({}),
            &[("X-Clearml-Impersonate-As", &bob)],
        )
        .await;
    assert_eq!(api.verify_token(&r.token()).unwrap().identity.role, "admin");
    // The same role again changes nothing.
    let r = api
        .call(
            "/auth.edit_user",
            sys(&api),
            json!({"user": bob, "role": "admin"}),
        )
        .await;
    assert_eq!(r.data()["updated"], 0);

    let r = api
        .call(
            "/auth.edit_user",
            sys(&api),
            json!({"user": bob, "role": "system"}),
        )
        .await;
    assert_eq!((r.status, r.result_subcode()), (400, 12), "{}", r.json);
    let r = api
        .call(
            "/auth.edit_user",
            sys(&api),
            json!({"user": "nosuchuser", "role": "user"}),
        )
        .await;
    assert_eq!((r.status, r.result_subcode()), (400, 301), "{}", r.json);
    let r = api
        .call(
            "/auth.edit_user",
            Auth::Bearer(&old),
            json!({"user": bob, "role": "user"}),
        )
        .await;
    assert_eq!((r.status, r.result_subcode()), (403, 20), "{}", r.json);
}

#[tokio::test]
async fn stand_in_logout_revokes_the_token_session_and_clears_the_cookie() {
    let api = ClearmlApi::start();
    let ann = api.add_user("Ann", "ann@example.com", "user", None);
    let (key, secret) = api.add_credentials(&ann);
    for (path, body) in [
        ("/v2.31/auth.logout", json!({})),
        (
            "/v999.0/login.logout",
            json!({"redirect_url": "http://app.example.com/login"}),
        ),
    ] {
        let token = api.login(&key, &secret).await;
        let session = api.verify_token(&token).unwrap().session_id;
        let r = api.call(path, Auth::Cookie(&token), body).await;
        assert_eq!(r.status, 200, "{path}: {}", r.json);
        assert_eq!(r.data(), &json!({}), "{path}");
        let clear = r.set_cookie(DEFAULT_COOKIE_NAME).expect("cookie cleared");
        assert_eq!(set_cookie_value(clear, DEFAULT_COOKIE_NAME), Some(""));
        assert!(
            set_cookie_attributes(clear).contains(&("max-age".into(), "0".into())),
            "{clear}"
        );
        assert!(api.revoked_sessions().contains(&session), "{path}");
        let err = api.verify_token(&token).unwrap_err();
        assert!(err.contains("revoked"), "{err}");
        let r = api
            .call("/users.get_current_user", Auth::Bearer(&token), json!({}))
            .await;
        assert_eq!(
            (r.status, r.result_subcode()),
            (401, 30),
            "{path}: {}",
            r.json
        );
    }
    // login.logout needs no credentials (`authorize: null`); auth.logout does.
    let r = api.call("/login.logout", Auth::None, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.json);
    let r = api.call("/auth.logout", Auth::None, json!({})).await;
    assert_eq!((r.status, r.result_subcode()), (401, 20), "{}", r.json);
}

#[tokio::test]
async fn stand_in_supported_modes_shows_fixed_users_guest_mode_and_authentication() {
    let api = ClearmlApi::start();
    let r = api
        .call("/v2.31/login.supported_modes", Auth::None, json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    let d = r.data();
    assert_eq!(d["basic"]["enabled"], true);
    assert_eq!(d["basic"]["guest"]["enabled"], true);
    assert_eq!(d["basic"]["guest"]["username"], "guest");
    assert_eq!(d["sso"], json!({}));
    assert_eq!(d["sso_providers"], json!([]));
    assert_eq!(d["server_errors"]["es_connection_error"], false);
    assert_eq!(d["authenticated"], false);

    let ann = api.add_user("Ann", "ann@example.com", "user", None);
    let token = api.mint_token(&ann, None);
    let r = api
        .call(
            "/v999.0/login.supported_modes",
            Auth::Cookie(&token),
            json!({}),
        )
        .await;
    assert_eq!(r.data()["authenticated"], true);

    let plain = ClearmlApi::start_with(ApiOptions {
        fixed_users: false,
        guest: false,
        ..ApiOptions::default()
    });
    let r = plain
        .call("/login.supported_modes", Auth::None, json!({}))
        .await;
    assert_eq!(
        r.data()["basic"],
        json!({"enabled": false, "guest": {"enabled": false}})
    );
}

#[tokio::test]
async fn stand_in_system_callers_get_tokens_for_users_and_lifetimes_can_be_capped() {
    let api = ClearmlApi::start();
    let bob = api.add_user("Bob", "bob@example.com", "user", None);
    let r = api
        .call(
            "/auth.get_token_for_user",
            sys(&api),
            json!({"user": bob, "expiration_sec": 3600}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert!(
        r.set_cookie(DEFAULT_COOKIE_NAME).is_none(),
        "get_token_for_user sets no cookie"
    );
    let info = api.verify_token(&r.token()).unwrap();
    assert_eq!(info.identity.user, bob);
    assert_eq!(info.exp.unwrap() - info.iat, 3600);
    let bob_token = api.mint_token(&bob, None);
    let r = api
        .call(
            "/auth.get_token_for_user",
            Auth::Bearer(&bob_token),
            json!({"user": bob}),
        )
        .await;
    assert_eq!((r.status, r.result_subcode()), (403, 20), "{}", r.json);

    let r = api
        .call(
            "/auth.validate_token",
            sys(&api),
            json!({"token": bob_token}),
        )
        .await;
    assert_eq!(r.data()["valid"], true);
    assert_eq!(r.data()["user"], bob.as_str());

    // A server that issues shorter tokens than asked.
    api.cap_expiration(Some(5));
    let r = api
        .call_with(
            &api.url,
            "/auth.login",
            sys(&api),
            json!({"expiration_sec": 3600}),
            &[("X-Clearml-Impersonate-As", &bob)],
        )
        .await;
    let info = api.verify_token(&r.token()).unwrap();
    assert_eq!(info.exp.unwrap() - info.iat, 5);
    api.cap_expiration(None);
    assert_eq!(api.issued_tokens().len(), 3);
}

#[tokio::test]
async fn stand_in_webserver_sends_api_paths_to_the_api_server_and_the_rest_to_the_web_app() {
    let echo = EchoUpstream::start();
    let api = ClearmlApi::start();
    let mut config = json!({ "upstream": echo.url });
    api.route_upstream(&mut config);
    assert_eq!(config["upstream"], api.web_url.as_str());

    let r = api
        .call_with(
            &api.web_url,
            "/api/v2.31/debug.ping",
            Auth::None,
            json!({}),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    let call = api.calls().last().unwrap().clone();
    assert!(call.via_web);
    assert_eq!(call.requested_version.as_deref(), Some("2.31"));
    assert_eq!(
        echo.request_count(),
        0,
        "API calls do not reach the web app"
    );

    let b = Browser::new();
    let page = b
        .send(
            b.client
                .post(format!("{}/projects/abc?x=1", api.web_url))
                .header("x-test", "one")
                .header("cookie", "theme=dark")
                .body("hello"),
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let seen = echo.last_to("/projects/abc").expect("the web app got it");
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.query.as_deref(), Some("x=1"));
    assert_eq!(seen.header("x-test"), Some("one"));
    assert_eq!(
        seen.cookies(),
        vec![("theme".to_owned(), "dark".to_owned())]
    );
    assert_eq!(seen.body, "hello");
    assert_eq!(page.json()["path"], "/projects/abc");
    let paths: Vec<String> = api.web_requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, vec!["/api/v2.31/debug.ping", "/projects/abc"]);
    assert!(api.web_last_to("/api/v2.31/debug.ping").is_some());
}

#[tokio::test]
async fn stand_in_can_answer_500s_go_down_and_come_back() {
    let api = ClearmlApi::start();
    api.set_failure(Failure::ServerError);
    for path in ["/debug.ping", "/auth.login"] {
        let r = api.call(path, sys(&api), json!({})).await;
        assert_eq!(
            (r.status, r.result_code()),
            (500, 500),
            "{path}: {}",
            r.json
        );
    }
    assert!(api.issued_tokens().is_empty());

    api.set_failure(Failure::ServerErrorOn("auth.login".into()));
    assert_eq!(
        api.call("/debug.ping", Auth::None, json!({})).await.status,
        200
    );
    assert_eq!(
        api.call("/auth.login", sys(&api), json!({})).await.status,
        500
    );

    api.set_failure(Failure::Down);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let err = client
        .post(format!("{}/debug.ping", api.url))
        .send()
        .await
        .expect_err("nothing listens while down");
    assert!(err.is_connect(), "{err}");
    let r = api
        .call_with(&api.web_url, "/api/debug.ping", Auth::None, json!({}), &[])
        .await;
    assert_eq!(
        r.status, 502,
        "the webserver's /api route answers like nginx"
    );

    api.set_failure(Failure::None);
    let r = api.call("/auth.login", sys(&api), json!({})).await;
    assert_eq!(r.status, 200, "back on the same URL: {}", r.json);
}

// ---------------------------------------------------------------------------------------------
// Start-up

#[tokio::test]
async fn startup_checks_the_system_credential_with_auth_login() {
    let br = Bridge::with_bad_op().await;
    let logins = br.api.calls_to("auth.login");
    assert!(
        logins.iter().any(|c| c.ok()
            && c.auth == AuthKind::Basic
            && c.caller.as_deref() == Some(SYSTEM_USER_ID)
            && c.impersonate_as.is_none()),
        "the proxy checked its credential with auth.login (Basic): {logins:#?}"
    );
    let ready = Browser::new().api_get(&br.url("/_sso/readyz")).await;
    assert_eq!(ready.status, 200, "{}", ready.body);
}

#[tokio::test]
async fn system_secret_can_come_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clearml-secret");
    let br = Bridge::start(StackOptions::bad(), |c, api| {
        std::fs::write(&path, format!("{}\n", api.system_secret)).unwrap();
        let clearml = c["clearml"].as_object_mut().unwrap();
        clearml.remove("api_secret");
        clearml.insert("api_secret_file".into(), json!(path.to_str().unwrap()));
    })
    .await;
    assert!(br.api.ok_count("auth.login") >= 1);
    let b = br.browser_bad().await;
    assert!(br.clearml_cookie(&b).is_some());
}

#[tokio::test]
async fn wrong_system_credential_keeps_the_proxy_unready_and_logins_name_the_api_server() {
    let opts = StackOptions {
        wait_ready: false,
        ..StackOptions::bad()
    };
    let br = Bridge::start(opts, |c, _| {
        c["clearml"]["api_secret"] = json!(random_string(50));
    })
    .await;
    wait_for(
        "the proxy's credential check",
        Duration::from_secs(15),
        || async {
            br.api
                .calls_to("auth.login")
                .iter()
                .any(|c| c.result_code == 401)
                .then_some(())
        },
    )
    .await;
    let b = Browser::new();
    for _ in 0..10 {
        let ready = b.api_get(&br.url("/_sso/readyz")).await;
        assert_eq!(
            ready.status, 503,
            "not ready with a refused credential: {}",
            ready.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let result = br.login_bad(&b, None).await;
    assert_api_server_error(&result);
    let body = lower(&result.response.body);
    assert!(
        body.contains("http 401") && body.contains("invalid credentials"),
        "the error page names the refused credential: {}",
        result.response.body
    );
    br.assert_no_session(&b).await;
    assert!(br.clearml_cookie(&b).is_none());
    assert!(br.api.people().is_empty(), "no ClearML user created");
    br.assert_no_secrets_in("error page", &result.response.body);
    assert!(!result.response.body.contains(&br.api.system_secret));
}

// ---------------------------------------------------------------------------------------------
// Login: users, roles, cookie

#[tokio::test]
async fn first_login_creates_the_clearml_user_and_sets_a_cookie_the_api_server_accepts() {
    let br = Bridge::start(StackOptions::real(), |_, _| {}).await;
    let b = br.browser_as("alice").await;

    let creates = br.api.calls_to("auth.create_user");
    assert_eq!(creates.len(), 1, "{creates:#?}");
    let create = &creates[0];
    assert!(create.ok(), "{create:#?}");
    assert_eq!(create.caller.as_deref(), Some(SYSTEM_USER_ID));
    assert_eq!(create.auth, AuthKind::Basic);
    assert_eq!(create.body["name"], "Alice Liddell");
    assert_eq!(create.body["email"], "alice@example.com");
    assert_eq!(create.body["given_name"], "Alice");
    assert_eq!(create.body["family_name"], "Liddell");
    assert_eq!(create.body["company"], DEFAULT_COMPANY);
    assert_eq!(create.body["role"], "admin", "alice is in the admin group");
    let alice = br.clearml_user("alice@example.com");
    assert_eq!(alice.role, "admin");

    // Her token comes from impersonation, asked for token_lifetime.
    let logins = br.api.impersonated_logins();
    assert_eq!(logins.len(), 1, "{logins:#?}");
    assert!(logins[0].ok());
    assert_eq!(logins[0].auth, AuthKind::Basic);
    assert_eq!(logins[0].caller.as_deref(), Some(SYSTEM_USER_ID));
    assert_eq!(logins[0].impersonate_as.as_deref(), Some(alice.id.as_str()));
    assert_eq!(logins[0].body["expiration_sec"], DEFAULT_TOKEN_LIFETIME);

    // The browser holds it as the ClearML cookie, next to the proxy session.
    let token = br.clearml_cookie(&b).expect("ClearML cookie set");
    let info = br
        .api
        .verify_token(&token)
        .expect("the API server accepts the cookie");
    assert_eq!(info.identity.user, alice.id);
    assert_eq!(info.identity.role, "admin");
    let left = info.exp.unwrap() - now();
    assert!(
        (DEFAULT_TOKEN_LIFETIME - 120..=DEFAULT_TOKEN_LIFETIME).contains(&left),
        "token lives token_lifetime: {left} s left"
    );
    assert!(br.session_cookie(&b).is_some());
    let me = br.assert_logged_in(&b).await;
    assert_eq!(me["email"], "alice@example.com");

    // The API server takes it directly...
    let r = br
        .api
        .call("/users.get_current_user", Auth::Cookie(&token), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.data()["user"]["id"], alice.id.as_str());

    // ... and the web app's calls through the proxy run as alice.
    let page = br
        .webapp_call(&b, "/api/v2.31/users.get_current_user", json!({}))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.json()["data"]["user"]["id"], alice.id.as_str());
    let call = br.api.calls_to("users.get_current_user").pop().unwrap();
    assert!(call.via_web);
    assert_eq!(call.auth, AuthKind::Cookie);
    assert_eq!(call.caller.as_deref(), Some(alice.id.as_str()));
}

#[tokio::test]
async fn clearml_cookie_has_the_servers_attributes_and_is_set_with_the_session() {
    let br = Bridge::with_bad_op().await;
    let b = Browser::new();
    let result = br.login_bad(&b, None).await;
    result.expect_success();
    let page = &result.response;
    let set = br.clearml_set_cookie(page).unwrap_or_else(|| {
        panic!(
            "callback sets the ClearML cookie: {:?}",
            page.header_all("set-cookie")
        )
    });
    let attrs = set_cookie_attributes(&set);
    let has = |n: &str| attrs.iter().any(|(a, _)| a == n);
    let value_of = |n: &str| {
        attrs
            .iter()
            .find(|(a, _)| a == n)
            .map(|(_, v)| v.to_ascii_lowercase())
    };
    assert!(has("httponly"), "{set}");
    assert_eq!(value_of("samesite").as_deref(), Some("lax"), "{set}");
    assert_eq!(value_of("path").as_deref(), Some("/"), "{set}");
    assert!(!has("secure"), "no Secure on http: {set}");
    assert!(
        !has("domain"),
        "host-only, like the server's default: {set}"
    );
    // It lasts as long as its token (token_lifetime), not the server's 99999999999 s.
    assert_eq!(
        value_of("max-age"),
        Some(DEFAULT_TOKEN_LIFETIME.to_string()),
        "{set}"
    );
    let token = set_cookie_value(&set, &br.api.cookie_name).unwrap();
    assert!(br.api.verify_token(token).is_ok());
    assert!(
        page.set_cookie_names().iter().any(|n| n == "sso_session"),
        "the proxy session is set by the same response: {:?}",
        page.set_cookie_names()
    );
}

/// Whether the `Set-Cookie` value carries attribute `name` (lower case).
fn has_attribute(set_cookie: &str, name: &str) -> bool {
    set_cookie_attributes(set_cookie)
        .iter()
        .any(|(a, _)| a == name)
}

#[tokio::test]
async fn clearml_cookie_is_secure_on_https() {
    let opts = StackOptions {
        tls: true,
        ..StackOptions::bad()
    };
    let br = Bridge::start(opts, |_, _| {}).await;
    assert!(br.base().starts_with("https://"), "{}", br.base());
    // 10-minute tokens: the next request re-issues one.
    br.api.cap_expiration(Some(600));
    let b = br.browser();
    let result = br.login_bad(&b, None).await;
    result.expect_success();
    let set = br
        .clearml_set_cookie(&result.response)
        .expect("callback sets the ClearML cookie");
    assert!(has_attribute(&set, "secure"), "login cookie: {set}");
    assert!(has_attribute(&set, "httponly"), "login cookie: {set}");
    br.api.cap_expiration(None);

    let page = b.api_get(&br.url("/app/experiments")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let set = br
        .clearml_set_cookie(&page)
        .expect("the token near its end is re-issued");
    assert!(
        set_cookie_value(&set, &br.api.cookie_name).is_some_and(|v| !v.is_empty()),
        "{set}"
    );
    assert!(has_attribute(&set, "secure"), "re-issued cookie: {set}");

    let page = br
        .webapp_call(
            &b,
            "/api/v2.31/login.logout",
            json!({ "redirect_url": br.url("/login") }),
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    // The API server clears it too (its own attributes: no Secure); the proxy's clear is Secure.
    let cleared: Vec<String> = page
        .header_all("set-cookie")
        .into_iter()
        .filter(|c| set_cookie_value(c, &br.api.cookie_name) == Some(""))
        .collect();
    assert!(
        cleared.iter().any(|c| has_attribute(c, "secure")),
        "logout clears the ClearML cookie with Secure: {cleared:?}"
    );
    assert!(br.clearml_cookie(&b).is_none());
}

#[tokio::test]
async fn cookie_domain_like_the_helm_charts_is_set_on_the_clearml_cookie() {
    let br = Bridge::start(StackOptions::bad(), |c, _| {
        // The Helm chart's clearml.cookieDomain; it must cover public_url's host (127.0.0.1).
        c["clearml"]["cookie_domain"] = json!("127.0.0.1");
    })
    .await;
    let b = Browser::new();
    let result = br.login_bad(&b, None).await;
    result.expect_success();
    let set = br
        .clearml_set_cookie(&result.response)
        .expect("callback sets the ClearML cookie");
    let attrs = set_cookie_attributes(&set);
    assert!(
        attrs.contains(&("domain".into(), "127.0.0.1".into())),
        "Domain from clearml.cookie_domain: {set}"
    );
    assert!(
        attrs.contains(&("max-age".into(), DEFAULT_TOKEN_LIFETIME.to_string())),
        "{set}"
    );

    let page = br
        .webapp_call(&b, "/api/v2.31/login.logout", json!({}))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let cleared: Vec<String> = page
        .header_all("set-cookie")
        .into_iter()
        .filter(|c| set_cookie_value(c, &br.api.cookie_name) == Some(""))
        .collect();
    assert!(
        cleared
            .iter()
            .any(|c| set_cookie_attributes(c).contains(&("domain".into(), "127.0.0.1".into()))),
        "the logout clears the domain cookie: {cleared:?}"
    );
}

#[tokio::test]
async fn the_proxy_impersonates_with_its_system_key_only() {
    // The stand-in lets only `system` callers impersonate (issue 5's letter).
    let api = ClearmlApi::start_with(ApiOptions {
        system_only_impersonation: true,
        ..ApiOptions::default()
    });
    let br = Bridge::start_with(api, StackOptions::bad(), |_, _| {}).await;
    br.api.cap_expiration(Some(600));
    let b = br.browser_bad().await;
    br.api.cap_expiration(None);
    let page = b.api_get(&br.url("/app/experiments")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let logins = br.api.impersonated_logins();
    assert_eq!(logins.len(), 2, "login and re-issue: {logins:#?}");
    for call in br.api.calls() {
        if call.impersonate_as.is_some() || call.act_as.is_some() {
            assert!(call.ok(), "{call:#?}");
            assert_eq!(call.auth, AuthKind::Basic, "{call:#?}");
            assert_eq!(call.caller.as_deref(), Some(SYSTEM_USER_ID), "{call:#?}");
        }
    }
    let token = br.clearml_cookie(&b).unwrap();
    let dave = br.clearml_user("dave@example.com");
    assert_eq!(br.api.verify_token(&token).unwrap().identity.user, dave.id);
}

#[tokio::test]
async fn second_login_of_the_same_person_reuses_the_clearml_user() {
    let br = Bridge::with_bad_op().await;
    let b1 = br.browser_bad().await;
    let b2 = br.browser_bad().await;
    assert_eq!(br.api.ok_count("auth.create_user"), 1);
    assert_eq!(br.api.count("auth.create_user"), 1, "no second create_user");
    let people = br.api.people();
    assert_eq!(people.len(), 1, "{people:?}");
    let dave = &people[0];
    assert_eq!(dave.email, "dave@example.com");
    assert_eq!(dave.role, "user", "not in the admin group");
    let targets: Vec<_> = br
        .api
        .impersonated_logins()
        .into_iter()
        .map(|c| c.impersonate_as.unwrap())
        .collect();
    assert_eq!(targets, vec![dave.id.clone(), dave.id.clone()]);
    for b in [&b1, &b2] {
        let token = br.clearml_cookie(b).unwrap();
        assert_eq!(br.api.verify_token(&token).unwrap().identity.user, dave.id);
    }
}

#[tokio::test]
async fn user_mapping_survives_a_proxy_restart() {
    let mut br = Bridge::with_bad_op().await;
    let _b = br.browser_bad().await;
    let dave = br.clearml_user("dave@example.com");

    // The same config and state database, on another port.
    let port = free_port();
    let mut config = br.stack.config.clone();
    config["listen"] = json!(format!("127.0.0.1:{port}"));
    config["public_url"] = json!(format!("http://127.0.0.1:{port}"));
    let proxy = spawn_proxy_with(&serde_yaml::to_string(&config).unwrap(), true).await;
    br.stack.proxy = proxy;

    let b = br.browser_bad().await;
    assert_eq!(
        br.api.count("auth.create_user"),
        1,
        "the mapping came from the database"
    );
    assert_eq!(
        br.api.last_impersonation().as_deref(),
        Some(dave.id.as_str())
    );
    let token = br.clearml_cookie(&b).unwrap();
    assert_eq!(br.api.verify_token(&token).unwrap().identity.user, dave.id);
}

#[tokio::test]
async fn admin_group_gives_role_admin_and_leaving_it_demotes_to_user() {
    let br = Bridge::with_bad_op().await;
    let _b = br.browser_for(person("erin", &["admins", "ml-team"])).await;
    let erin = br.clearml_user("erin@example.com");
    assert_eq!(erin.role, "admin");
    assert_eq!(br.api.calls_to("auth.create_user")[0].body["role"], "admin");

    // Removed from the admin group at the IdP: the next login demotes her.
    let b = br.browser_for(person("erin", &["ml-team"])).await;
    let edit = br
        .api
        .calls_to("auth.edit_user")
        .pop()
        .expect("auth.edit_user called after the group change");
    assert!(edit.ok(), "{edit:#?}");
    assert_eq!(edit.caller.as_deref(), Some(SYSTEM_USER_ID));
    assert_eq!(edit.body["user"], erin.id.as_str());
    assert_eq!(edit.body["role"], "user");
    assert_eq!(br.api.user(&erin.id).unwrap().role, "user");
    let token = br.clearml_cookie(&b).unwrap();
    assert_eq!(br.api.verify_token(&token).unwrap().identity.role, "user");
    assert_eq!(br.api.count("auth.create_user"), 1, "same ClearML user");

    // Back in the group: promoted again.
    let b = br.browser_for(person("erin", &["admins"])).await;
    assert_eq!(br.api.user(&erin.id).unwrap().role, "admin");
    let token = br.clearml_cookie(&b).unwrap();
    assert_eq!(br.api.verify_token(&token).unwrap().identity.role, "admin");
    for call in br.api.calls() {
        if let Some(role) = call.body["role"].as_str() {
            assert!(
                !["root", "system"].contains(&role),
                "never asks for {role}: {call:#?}"
            );
        }
    }
}

#[tokio::test]
async fn guest_groups_give_role_guest_but_admins_stay_admins() {
    let br = Bridge::start(StackOptions::bad(), |c, _| {
        c["clearml"]["guest_groups"] = json!(["viewers"]);
    })
    .await;
    let _g = br.browser_for(person("gina", &["viewers"])).await;
    assert_eq!(br.clearml_user("gina@example.com").role, "guest");
    let _h = br.browser_for(person("hank", &["viewers", "admins"])).await;
    assert_eq!(br.clearml_user("hank@example.com").role, "admin");
    let _u = br.browser_for(person("uma", &["ml-team"])).await;
    assert_eq!(br.clearml_user("uma@example.com").role, "user");
}

#[tokio::test]
async fn refused_signup_creates_no_clearml_user_and_sets_no_clearml_cookie() {
    let br = Bridge::start(StackOptions::bad(), |c, _| {
        c["providers"][BAD]["create_new_users"] = json!(false);
        c["directory"] = json!({ "known_users": ["erin@example.com"] });
    })
    .await;
    br.bad().set_user(person("mallory", &["admins"]));
    let b = Browser::new();
    let result = br.login_bad(&b, None).await;
    assert!(!result.succeeded(), "trail:\n  {}", result.trail_text());
    assert_eq!(result.status(), 403, "{}", result.response.body);
    assert!(
        lower(&result.response.body).contains("new users cannot sign up"),
        "{}",
        result.response.body
    );
    br.assert_no_session(&b).await;
    assert!(br.clearml_cookie(&b).is_none(), "no ClearML cookie");
    assert!(br.clearml_set_cookie(&result.response).is_none());
    assert_eq!(
        br.api.count("auth.create_user"),
        0,
        "no ClearML user created"
    );
    assert!(br.api.people().is_empty(), "{:?}", br.api.people());
    assert!(
        br.api.impersonated_logins().is_empty(),
        "no token asked for"
    );
    assert_eq!(br.api.count("auth.edit_user"), 0);

    // A known user (directory.known_users) still gets in, and becomes a ClearML user.
    let b = br.browser_for(person("erin", &[])).await;
    let erin = br.clearml_user("erin@example.com");
    let token = br.clearml_cookie(&b).expect("ClearML cookie for erin");
    assert_eq!(br.api.verify_token(&token).unwrap().identity.user, erin.id);
    assert_eq!(br.api.count("auth.create_user"), 1);
}

#[tokio::test]
async fn users_are_created_in_the_company_of_the_proxys_own_credential() {
    let api = ClearmlApi::start_with(ApiOptions {
        system_company: OTHER_COMPANY.into(),
        ..ApiOptions::default()
    });
    let br = Bridge::start_with(api, StackOptions::bad(), |_, _| {}).await;
    let b = br.browser_bad().await;
    let dave = br.clearml_user("dave@example.com");
    assert_eq!(
        dave.company, OTHER_COMPANY,
        "company read from the proxy's own token"
    );
    let token = br.clearml_cookie(&b).unwrap();
    assert_eq!(
        br.api.verify_token(&token).unwrap().identity.company,
        OTHER_COMPANY
    );
}

#[tokio::test]
async fn login_finishing_before_the_startup_check_succeeded_still_uses_the_credentials_company() {
    // `/_sso/login` checks the bridge itself, but a login started elsewhere (another replica,
    // or this proxy before a restart: the pending state is a sealed cookie) can reach the
    // callback of a proxy whose start-up check has not succeeded yet.
    let api = ClearmlApi::start_with(ApiOptions {
        system_company: OTHER_COMPANY.into(),
        ..ApiOptions::default()
    });
    let br = Bridge::start_with(api, StackOptions::bad(), |_, _| {}).await;
    let b = Browser::new();
    let driven = b
        .drive(
            &br.url(&format!("/_sso/login?provider={BAD}")),
            "u",
            "p",
            |u| u.path().starts_with("/callback_"),
        )
        .await;
    let callback = driven
        .stopped_at
        .unwrap_or_else(|| panic!("reached the callback: {:?}", driven.trail));

    // A second proxy (same config and public_url) starts while the API server is down; its
    // background check fails and backs off (250 ms, 500 ms, 1 s, 2 s, ...).
    br.api.set_failure(Failure::Down);
    let mut config = br.stack.config.clone();
    config["listen"] = json!(format!("127.0.0.1:{}", free_port()));
    let late = spawn_proxy_with(&serde_yaml::to_string(&config).unwrap(), false).await;
    late.wait_for_log("ClearML bridge check failed", 4).await;
    // The next background check is about 2 s away: the callback comes first.
    br.api.set_failure(Failure::None);
    let path = &callback[url::Position::BeforePath..];
    let page = b.navigate(&late.url(path)).await;
    assert!(
        page.is_redirect(),
        "login accepted: {} {}",
        page.status,
        page.body
    );
    let dave = br.clearml_user("dave@example.com");
    assert_eq!(
        dave.company, OTHER_COMPANY,
        "the company of the proxy's credential, learnt before the user was created"
    );
    let set = br.clearml_set_cookie(&page).expect("ClearML cookie set");
    let token = set_cookie_value(&set, &br.api.cookie_name).unwrap();
    assert_eq!(br.api.verify_token(token).unwrap().identity.user, dave.id);
    let ready = Browser::new().api_get(&late.url("/_sso/readyz")).await;
    assert_eq!(
        ready.status, 200,
        "the check at the callback made the proxy ready: {}",
        ready.body
    );
}

#[tokio::test]
async fn clearml_company_setting_and_then_the_connections_default_company_choose_the_company() {
    // Only the create_user request is checked: a system credential can only impersonate users of
    // its own company on a real server, so what follows may fail.
    let setting = "1111111111111111111111111111aaaa";
    let connection = "2222222222222222222222222222bbbb";

    let api = ClearmlApi::start();
    api.add_company(setting, "from-setting");
    let br = Bridge::start_with(api, StackOptions::bad(), |c, _| {
        c["clearml"]["company"] = json!(setting);
    })
    .await;
    let _ = br.login_bad(&Browser::new(), None).await;
    let create = br
        .api
        .calls_to("auth.create_user")
        .into_iter()
        .next()
        .expect("create_user");
    assert_eq!(
        create.body["company"], setting,
        "clearml.company beats the proxy's token"
    );

    let api = ClearmlApi::start();
    api.add_company(setting, "from-setting");
    api.add_company(connection, "from-connection");
    let br = Bridge::start_with(api, StackOptions::bad(), |c, _| {
        c["clearml"]["company"] = json!(setting);
        c["providers"][BAD]["default_company"] = json!(connection);
    })
    .await;
    let _ = br.login_bad(&Browser::new(), None).await;
    let create = br
        .api
        .calls_to("auth.create_user")
        .into_iter()
        .next()
        .expect("create_user");
    assert_eq!(
        create.body["company"], connection,
        "the connection's default_company wins"
    );
}

#[tokio::test]
async fn token_lifetime_is_asked_for_as_expiration_sec() {
    let br = Bridge::start(StackOptions::bad(), |c, _| {
        c["clearml"]["token_lifetime"] = json!("2h");
    })
    .await;
    let b = br.browser_bad().await;
    let login = br.api.impersonated_logins().pop().unwrap();
    assert_eq!(login.body["expiration_sec"], 7200);
    let info = br
        .api
        .verify_token(&br.clearml_cookie(&b).unwrap())
        .unwrap();
    assert!((7200 - 120..=7200).contains(&(info.exp.unwrap() - now())));
}

#[tokio::test]
async fn cookie_name_like_the_helm_charts_is_used_for_the_clearml_session() {
    let api = ClearmlApi::start_with(ApiOptions {
        cookie_name: "clearml-token-k8s".into(),
        ..ApiOptions::default()
    });
    let br = Bridge::start_with(api, StackOptions::bad(), |c, _| {
        assert_eq!(c["clearml"]["cookie_name"], "clearml-token-k8s");
    })
    .await;
    let b = br.browser_bad().await;
    assert!(b.cookie(&br.url("/"), "clearml-token-k8s").is_some());
    assert!(b.cookie(&br.url("/"), DEFAULT_COOKIE_NAME).is_none());
    let page = br
        .webapp_call(&b, "/api/v2.31/users.get_current_user", json!({}))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
}

// ---------------------------------------------------------------------------------------------
// Requests

#[tokio::test]
async fn sdk_requests_with_their_own_authorization_pass_untouched_without_a_session() {
    let br = Bridge::with_bad_op().await;
    let sdk = br.api.add_user("SDK User", "sdk@example.com", "user", None);
    let (key, secret) = br.api.add_credentials(&sdk);
    let basic = basic_auth(&key, &secret);

    // auth.login with Basic, through the proxy, no session.
    let page = br
        .sdk_call(
            Method::POST,
            "/api/v2.31/auth.login",
            &basic,
            &[("X-Forwarded-User", "mallory")],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let token = page.json()["data"]["token"].as_str().unwrap().to_owned();
    assert!(
        !page.set_cookie_names().iter().any(|n| n == "sso_session"),
        "no proxy session for an API client"
    );
    let call = br.api.calls_to("auth.login").pop().unwrap();
    assert!(call.via_web);
    assert_eq!(
        call.header("authorization"),
        Some(basic.as_str()),
        "Authorization untouched"
    );
    assert_eq!(call.caller.as_deref(), Some(sdk.as_str()));
    let seen = br.api.web_last_to("/api/v2.31/auth.login").unwrap();
    assert!(
        !seen.header_all("x-forwarded-user").contains(&"mallory"),
        "identity headers are still stripped: {:?}",
        seen.headers
    );

    // Then Bearer, as the SDK does.
    let bearer = format!("Bearer {token}");
    let page = br
        .sdk_call(
            Method::POST,
            "/api/v2.31/users.get_current_user",
            &bearer,
            &[],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.json()["data"]["user"]["id"], sdk.as_str());
    assert_eq!(
        br.api
            .calls_to("users.get_current_user")
            .pop()
            .unwrap()
            .header("authorization"),
        Some(bearer.as_str())
    );

    // X-Clearml-Impersonate-As passes with an Authorization header: the API server decides.
    let admin = br
        .api
        .add_user("Ops Admin", "ops@example.com", "admin", None);
    let (akey, asecret) = br.api.add_credentials(&admin);
    let page = br
        .sdk_call(
            Method::POST,
            "/api/v2.31/users.get_current_user",
            &basic_auth(&akey, &asecret),
            &[("X-Clearml-Impersonate-As", &sdk)],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        page.json()["data"]["user"]["id"],
        sdk.as_str(),
        "the admin impersonated the SDK user"
    );
    let page = br
        .sdk_call(
            Method::POST,
            "/api/v2.31/users.get_current_user",
            &bearer,
            &[("X-Clearml-Impersonate-As", &admin)],
        )
        .await;
    assert_eq!(
        page.status, 400,
        "a user may not impersonate (the server says so): {}",
        page.body
    );
    assert_eq!(
        br.api
            .calls_to("users.get_current_user")
            .pop()
            .unwrap()
            .impersonate_as
            .as_deref(),
        Some(admin.as_str()),
        "the header reached the API server"
    );

    // Other paths too (uploads, artifacts behind the webserver).
    let page = br
        .sdk_call(Method::GET, "/files/some/artifact.bin", &bearer, &[])
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let seen = br
        .echo
        .last_to("/files/some/artifact.bin")
        .expect("reached the upstream");
    assert_eq!(seen.header("authorization"), Some(bearer.as_str()));

    assert_eq!(
        br.api.count("auth.create_user"),
        0,
        "API clients are not SSO logins"
    );
    assert!(br.api.impersonated_logins().is_empty());
}

#[tokio::test]
async fn browser_requests_lose_impersonation_and_act_as_headers() {
    let br = Bridge::with_bad_op().await;
    let boss = br
        .api
        .add_user("Big Boss", "boss@example.com", "admin", None);
    let b = br.browser_bad().await;
    let dave = br.clearml_user("dave@example.com");
    let spoofed = [
        ("X-Clearml-Impersonate-As", boss.as_str()),
        ("x-clearml-act-as", boss.as_str()),
        ("X-Trains-Impersonate-As", boss.as_str()),
        ("X-TRAINS-ACT-AS", boss.as_str()),
        ("X_Clearml_Impersonate_As", boss.as_str()),
    ];
    let page = br
        .webapp_call_with(&b, "/api/v2.31/users.get_current_user", json!({}), &spoofed)
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        page.json()["data"]["user"]["id"],
        dave.id.as_str(),
        "still dave"
    );
    let call = br.api.calls_to("users.get_current_user").pop().unwrap();
    assert_eq!(call.impersonate_as, None);
    assert_eq!(call.act_as, None);
    let seen = br
        .api
        .web_last_to("/api/v2.31/users.get_current_user")
        .unwrap();
    let leaked: Vec<_> = seen
        .headers
        .iter()
        .filter(|(n, _)| is_impersonation_header(n))
        .collect();
    assert!(leaked.is_empty(), "reached the webserver: {leaked:?}");

    // Any path, any method.
    let mut req = b
        .client
        .get(br.url("/app/projects"))
        .header("accept", "*/*");
    for (n, v) in spoofed {
        req = req.header(n, v);
    }
    assert_eq!(b.send(req).await.status, 200);
    let seen = br.echo.last_to("/app/projects").unwrap();
    let leaked: Vec<_> = seen
        .headers
        .iter()
        .filter(|(n, _)| is_impersonation_header(n))
        .collect();
    assert!(leaked.is_empty(), "reached the web app: {leaked:?}");
}

#[tokio::test]
async fn unauthenticated_api_requests_get_the_clearml_401_envelope() {
    let br = Bridge::with_bad_op().await;
    let b = Browser::new();
    let before = br.api.web_requests().len();
    let page = br
        .webapp_call(&b, "/api/v2.31/projects.get_all_ex", json!({}))
        .await;
    assert_eq!(page.status, 401, "{}", page.body);
    let j = page.json();
    assert!(j["meta"].is_object(), "ClearML's envelope: {j}");
    assert_eq!(j["meta"]["result_code"], 401, "{j}");
    let page = b
        .send(
            b.client
                .get(br.url("/api/v999.0/users.get_current_user"))
                .header("accept", "application/json"),
        )
        .await;
    assert_eq!(page.status, 401, "{}", page.body);
    assert_eq!(page.json()["meta"]["result_code"], 401);

    // A ClearML cookie alone (no proxy session) is not a browser login.
    let someone = br
        .api
        .add_user("Old Cookie", "old@example.com", "user", None);
    let token = br.api.mint_token(&someone, None);
    let page = b
        .send(
            b.client
                .post(br.url("/api/v2.31/projects.get_all_ex"))
                .header("accept", "application/json")
                .header("content-type", "application/json")
                .header("cookie", format!("{}={token}", br.api.cookie_name))
                .body("{}"),
        )
        .await;
    assert_eq!(page.status, 401, "{}", page.body);
    assert_eq!(page.json()["meta"]["result_code"], 401);
    assert_eq!(
        br.api.web_requests().len(),
        before,
        "nothing reached the webserver"
    );
}

#[tokio::test]
async fn supported_modes_is_public_and_rewritten_guest_off_and_authenticated_by_the_proxy() {
    let br = Bridge::with_bad_op().await;
    for path in [
        "/api/v2.31/login.supported_modes",
        "/api/v999.0/login.supported_modes",
        "/api/login.supported_modes",
    ] {
        let b = Browser::new();
        let page = br.webapp_call(&b, path, json!({})).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        let d = &page.json()["data"];
        assert_eq!(d["basic"]["guest"]["enabled"], false, "{path}: {d}");
        assert_eq!(d["authenticated"], false, "{path}: {d}");
        assert_eq!(d["sso_providers"], json!([]), "{path}: {d}");
        let call = br
            .api
            .calls_to("login.supported_modes")
            .pop()
            .expect("forwarded");
        assert!(call.via_web, "{path}");
    }

    // A valid ClearML cookie without a proxy session: the server says authenticated, we do not.
    let someone = br
        .api
        .add_user("Old Cookie", "old@example.com", "user", None);
    let token = br.api.mint_token(&someone, None);
    let b = Browser::new();
    let page = br
        .webapp_call_with(
            &b,
            "/api/v2.31/login.supported_modes",
            json!({}),
            &[("cookie", &format!("{}={token}", br.api.cookie_name))],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.json()["data"]["authenticated"], false);

    // With a proxy session: authenticated, guest still off. GET works as well.
    let b = br.browser_bad().await;
    let page = br
        .webapp_call(&b, "/api/v2.31/login.supported_modes", json!({}))
        .await;
    let d = &page.json()["data"];
    assert_eq!(d["authenticated"], true, "{d}");
    assert_eq!(d["basic"]["guest"]["enabled"], false, "{d}");
    assert_eq!(d["sso_providers"], json!([]), "{d}");
    let page = b
        .send(
            b.client
                .get(br.url("/api/v2.31/login.supported_modes"))
                .header("accept", "application/json"),
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.json()["data"]["authenticated"], true);
}

// ---------------------------------------------------------------------------------------------
// Token re-issue

#[tokio::test]
async fn fresh_clearml_token_is_kept_and_reaches_the_upstream_without_the_proxy_cookies() {
    let br = Bridge::with_bad_op().await;
    let b = br.browser_bad().await;
    let token = br.clearml_cookie(&b).unwrap();
    for i in 0..3 {
        let page = b.api_get(&br.url(&format!("/app/page{i}"))).await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(
            br.clearml_set_cookie(&page).is_none(),
            "no re-issue of a fresh token"
        );
        let seen = br.echo.last_to(&format!("/app/page{i}")).unwrap();
        let cookies = seen.cookies();
        assert!(
            cookies.contains(&(br.api.cookie_name.clone(), token.clone())),
            "the ClearML cookie reaches the web app: {cookies:?}"
        );
        assert!(!seen
            .cookie_names()
            .iter()
            .any(|n| n.contains("sso_session")));
    }
    assert_eq!(br.api.impersonated_logins().len(), 1);
}

#[tokio::test]
async fn parallel_requests_near_expiry_share_one_reissue() {
    let br = Bridge::with_bad_op().await;
    br.api.cap_expiration(Some(600));
    let b = br.browser_bad().await;
    let old = br.clearml_cookie(&b).unwrap();
    br.api.cap_expiration(None);
    let before = br.api.impersonated_logins().len();
    // The web app's parallel calls, all still carrying the ending cookie.
    let pages = futures_util::future::join_all((0..6).map(|i| {
        let b = &b;
        let url = br.url(&format!("/app/parallel/{i}"));
        async move { b.api_get(&url).await }
    }))
    .await;
    let mut tokens = Vec::new();
    for page in &pages {
        assert_eq!(page.status, 200, "{}", page.body);
        let set = br
            .clearml_set_cookie(page)
            .expect("each response sets the cookie");
        tokens.push(
            set_cookie_value(&set, &br.api.cookie_name)
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(
        br.api.impersonated_logins().len(),
        before + 1,
        "one impersonation for the parallel requests"
    );
    tokens.dedup();
    assert_eq!(tokens.len(), 1, "they all got the same new token");
    assert_ne!(tokens[0], old);
}

#[tokio::test]
async fn clearml_token_near_expiry_is_reissued_on_the_next_browser_request() {
    let br = Bridge::with_bad_op().await;
    // The server issues 10-minute tokens: less than a tenth of the 12 h token_lifetime.
    br.api.cap_expiration(Some(600));
    let b = br.browser_bad().await;
    let old = br.clearml_cookie(&b).unwrap();
    let dave = br.clearml_user("dave@example.com");
    assert!(br.api.verify_token(&old).unwrap().exp.unwrap() - now() <= 600);
    br.api.cap_expiration(None);
    let before = br.api.impersonated_logins().len();

    let page = b.api_get(&br.url("/app/experiments")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        br.api.impersonated_logins().len(),
        before + 1,
        "one re-issue"
    );
    let login = br.api.impersonated_logins().pop().unwrap();
    assert_eq!(login.impersonate_as.as_deref(), Some(dave.id.as_str()));
    assert_eq!(login.body["expiration_sec"], DEFAULT_TOKEN_LIFETIME);

    let seen = br.echo.last_to("/app/experiments").unwrap();
    let sent = seen
        .cookies()
        .into_iter()
        .find(|(n, _)| *n == br.api.cookie_name)
        .map(|(_, v)| v)
        .expect("the upstream got a ClearML cookie");
    assert_ne!(
        sent, old,
        "the upstream sees the new token, not the old one"
    );
    let info = br.api.verify_token(&sent).unwrap();
    assert_eq!(info.identity.user, dave.id);
    assert!(info.exp.unwrap() - now() > DEFAULT_TOKEN_LIFETIME - 120);
    let set = br
        .clearml_set_cookie(&page)
        .expect("the response sets the new cookie");
    assert_eq!(
        set_cookie_value(&set, &br.api.cookie_name),
        Some(sent.as_str())
    );
    assert!(
        set_cookie_attributes(&set)
            .iter()
            .any(|(n, _)| n == "httponly"),
        "{set}"
    );
    assert_eq!(br.clearml_cookie(&b).as_deref(), Some(sent.as_str()));

    // Fresh now: the next request keeps it.
    let page = b.api_get(&br.url("/app/experiments2")).await;
    assert_eq!(page.status, 200);
    assert_eq!(br.api.impersonated_logins().len(), before + 1);
    let seen = br.echo.last_to("/app/experiments2").unwrap();
    assert!(seen.cookies().contains(&(br.api.cookie_name.clone(), sent)));
}

#[tokio::test]
async fn session_without_a_clearml_cookie_gets_a_fresh_one() {
    let br = Bridge::with_bad_op().await;
    let b = br.browser_bad().await;
    let dave = br.clearml_user("dave@example.com");
    let cookie = br.cookies_without_clearml(&b);
    assert!(cookie.contains("sso_session"), "{cookie}");
    let r = raw::get(
        br.proxy.port,
        "/app/x",
        &[("Cookie", &cookie), ("Accept", "*/*")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = br.echo.last_to("/app/x").unwrap();
    let sent = seen
        .cookies()
        .into_iter()
        .find(|(n, _)| *n == br.api.cookie_name)
        .map(|(_, v)| v)
        .expect("the upstream got a ClearML cookie");
    assert_eq!(br.api.verify_token(&sent).unwrap().identity.user, dave.id);
    let set = r
        .header_all("set-cookie")
        .into_iter()
        .find(|c| set_cookie_value(c, &br.api.cookie_name).is_some())
        .expect("the response sets it");
    assert_eq!(
        set_cookie_value(set, &br.api.cookie_name),
        Some(sent.as_str())
    );

    // A garbage cookie is replaced the same way.
    let cookie = format!(
        "{}; {}=garbage",
        br.cookies_without_clearml(&b),
        br.api.cookie_name
    );
    let r = raw::get(
        br.proxy.port,
        "/app/y",
        &[("Cookie", &cookie), ("Accept", "*/*")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = br.echo.last_to("/app/y").unwrap();
    let sent: Vec<_> = seen
        .cookies()
        .into_iter()
        .filter(|(n, _)| *n == br.api.cookie_name)
        .map(|(_, v)| v)
        .collect();
    assert_eq!(sent.len(), 1, "one ClearML cookie upstream: {sent:?}");
    assert!(br.api.verify_token(&sent[0]).is_ok());
}

#[tokio::test]
async fn expired_clearml_cookie_is_replaced_before_it_reaches_the_api_server() {
    let br = Bridge::with_bad_op().await;
    br.api.cap_expiration(Some(1));
    let b = br.browser_bad().await;
    br.api.cap_expiration(None);
    let old = br.clearml_cookie(&b).unwrap();
    let exp = br
        .api
        .verify_token(&old)
        .map(|i| i.exp.unwrap())
        .unwrap_or_else(|_| now());
    let wait = (exp - now() + 1).max(0) as u64;
    tokio::time::sleep(Duration::from_millis(wait * 1000 + 100)).await;
    assert!(
        br.api.verify_token(&old).is_err(),
        "the old token has expired"
    );

    let page = br
        .webapp_call(&b, "/api/v2.31/users.get_current_user", json!({}))
        .await;
    assert_eq!(
        page.status, 200,
        "the web app is still signed in: {}",
        page.body
    );
    let call = br.api.calls_to("users.get_current_user").pop().unwrap();
    assert!(call.ok());
    let old_session = decode_token(&old)["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(
        call.session_id,
        Some(old_session),
        "a new token reached the API server"
    );
}

// ---------------------------------------------------------------------------------------------
// Logout

async fn assert_logout_through(br: &Bridge, path: &str, body: Value) -> Value {
    let b = br.browser_bad().await;
    let token = br.clearml_cookie(&b).unwrap();
    let session = br.api.verify_token(&token).unwrap().session_id;
    let page = br.webapp_call(&b, path, body).await;
    assert_eq!(page.status, 200, "{path}: {}", page.body);
    let j = page.json();
    assert_eq!(j["meta"]["result_code"], 200, "{path}: {j}");

    // Forwarded with the user's ClearML session, which the API server revoked.
    let endpoint = path.trim_end_matches('/').rsplit('/').next().unwrap();
    let call = br
        .api
        .calls_to(endpoint)
        .pop()
        .expect("forwarded to the API server");
    assert!(call.via_web);
    assert_eq!(
        call.session_id.as_deref(),
        Some(session.as_str()),
        "{call:#?}"
    );
    assert!(br.api.revoked_sessions().contains(&session));
    assert!(br.api.verify_token(&token).is_err());

    // The proxy session is over, and so is the ClearML cookie.
    assert!(
        page.set_cookie_names().iter().any(|n| n == "sso_session"),
        "the proxy clears its cookie: {:?}",
        page.header_all("set-cookie")
    );
    br.assert_no_session(&b).await;
    assert!(br.clearml_cookie(&b).is_none());
    j
}

#[tokio::test]
async fn web_app_logout_revokes_the_clearml_token_and_ends_the_proxy_session() {
    let br = Bridge::with_bad_op().await;
    let j = assert_logout_through(
        &br,
        "/api/v2.31/login.logout",
        json!({ "redirect_url": br.url("/login") }),
    )
    .await;
    let issuer = br.bad().issuer.clone();
    assert!(
        !j["data"]["redirect_url"]
            .as_str()
            .is_some_and(|u| u.starts_with(&issuer)),
        "no IdP logout unless idp_logout: {j}"
    );
    assert_eq!(br.bad().end_session_requests(), 0);
}

#[tokio::test]
async fn auth_logout_also_ends_the_proxy_session() {
    let br = Bridge::with_bad_op().await;
    assert_logout_through(&br, "/api/auth.logout", json!({})).await;
}

#[tokio::test]
async fn web_app_logout_with_a_trailing_slash_is_intercepted() {
    let br = Bridge::with_bad_op().await;
    assert_logout_through(&br, "/api/v2.31/login.logout/", json!({})).await;
}

#[tokio::test]
async fn web_app_logout_without_a_proxy_session_is_forwarded_and_clears_the_clearml_cookie() {
    let br = Bridge::with_bad_op().await;
    let b = br.browser_bad().await;
    let token = br.clearml_cookie(&b).unwrap();
    let session = br.api.verify_token(&token).unwrap().session_id;

    // Only the ClearML cookie is left (the proxy session ended elsewhere).
    let lingering = Browser::new();
    let req = lingering
        .client
        .post(br.url("/api/v2.31/login.logout"))
        .header("accept", "application/json")
        .header("content-type", "application/json")
        .header("origin", br.base())
        .header("sec-fetch-site", "same-origin")
        .header("cookie", format!("{}={token}", br.api.cookie_name))
        .body("{}");
    let page = lingering.send(req).await;
    assert_eq!(page.status, 200, "forwarded: {}", page.body);
    assert_eq!(page.json()["meta"]["result_code"], 200, "{}", page.body);
    let call = br
        .api
        .calls_to("login.logout")
        .pop()
        .expect("forwarded to the API server");
    assert_eq!(call.session_id.as_deref(), Some(session.as_str()));
    assert!(br.api.revoked_sessions().contains(&session));
    assert!(br.api.verify_token(&token).is_err());
    let cleared: Vec<String> = page
        .header_all("set-cookie")
        .into_iter()
        .filter(|c| set_cookie_value(c, &br.api.cookie_name) == Some(""))
        .collect();
    assert!(
        cleared
            .iter()
            .any(|c| c.contains("Expires=Thu, 01 Jan 1970") && c.contains("Path=/; Max-Age=0")),
        "the proxy clears the ClearML cookie: {cleared:?}"
    );

    // Other API calls without a session still get the 401 envelope, not the API server.
    let before = br.api.calls().len();
    let req = lingering
        .client
        .post(br.url("/api/v2.31/users.get_current_user"))
        .header("accept", "application/json")
        .header("cookie", format!("{}={token}", br.api.cookie_name))
        .body("{}");
    let page = lingering.send(req).await;
    assert_eq!(page.status, 401, "{}", page.body);
    assert_eq!(br.api.calls().len(), before);
}

#[tokio::test]
async fn sso_logout_also_revokes_the_clearml_token() {
    let br = Bridge::with_bad_op().await;
    let b = br.browser_bad().await;
    let token = br.clearml_cookie(&b).unwrap();
    let session = br.api.verify_token(&token).unwrap().session_id;
    let req = b
        .client
        .post(br.url("/_sso/logout"))
        .header("origin", br.base());
    let page = b.send(req).await;
    assert_eq!(page.status, 303, "{}", page.body);
    let call = br
        .api
        .calls_to("auth.logout")
        .pop()
        .expect("the proxy called auth.logout");
    assert!(!call.via_web, "called by the proxy itself");
    assert_eq!(call.auth, AuthKind::Bearer, "with the user's token");
    assert_eq!(call.session_id.as_deref(), Some(session.as_str()));
    assert!(call.ok(), "{call:#?}");
    assert!(br.api.revoked_sessions().contains(&session));
    assert!(br.api.verify_token(&token).is_err());
    br.assert_no_session(&b).await;
    assert!(br.clearml_cookie(&b).is_none());
}

#[tokio::test]
async fn logout_with_idp_logout_returns_the_end_session_url_as_redirect_url() {
    let br = Bridge::start(StackOptions::bad(), |c, _| {
        c["providers"][BAD]["idp_logout"] = json!(true);
    })
    .await;
    let j = assert_logout_through(
        &br,
        "/api/v999.0/login.logout",
        json!({ "redirect_url": br.url("/login") }),
    )
    .await;
    let end_session = format!("{}/logout", br.bad().issuer);
    let target = j["data"]["redirect_url"]
        .as_str()
        .unwrap_or_else(|| panic!("data.redirect_url set: {j}"));
    assert!(
        target.starts_with(&end_session),
        "{target} is the IdP end-session URL"
    );
    let url = url::Url::parse(target).unwrap();
    assert!(
        url.query_pairs()
            .any(|(n, v)| n == "id_token_hint" && !v.is_empty()),
        "id_token_hint sent: {target}"
    );
}

// ---------------------------------------------------------------------------------------------
// API server failures

/// A login fails with an error page naming the API server and `cause` (lower case), and leaves
/// no session and no ClearML cookie.
async fn assert_failed_login_leaves_nothing(br: &Bridge, cause: &str) {
    let b = Browser::new();
    let result = br.login_bad(&b, None).await;
    assert_api_server_error(&result);
    assert!(
        lower(&result.response.body).contains(cause),
        "the error page names the cause ({cause}): {}",
        result.response.body
    );
    br.assert_no_session(&b).await;
    assert!(br.clearml_cookie(&b).is_none(), "no ClearML cookie");
    assert!(
        br.clearml_set_cookie(&result.response).is_none(),
        "no ClearML cookie set by the error page"
    );
    br.assert_no_secrets_in("error page", &result.response.body);
    assert!(!result.response.body.contains(&br.api.system_secret));
}

/// Wait until the proxy is ready again, then a login works.
async fn assert_login_works_again(br: &Bridge) -> Browser {
    let b = Browser::new();
    wait_for(
        "readyz after the API server recovered",
        Duration::from_secs(30),
        || async { (b.api_get(&br.url("/_sso/readyz")).await.status == 200).then_some(()) },
    )
    .await;
    br.login_bad(&b, None).await.expect_success();
    assert!(br.clearml_cookie(&b).is_some());
    b
}

#[tokio::test]
async fn api_server_down_during_login_gives_an_error_page_and_no_session() {
    let br = Bridge::with_bad_op().await;
    br.api.set_failure(Failure::Down);
    assert_failed_login_leaves_nothing(&br, "could not be reached").await;
    br.api.set_failure(Failure::None);
    assert_login_works_again(&br).await;
}

#[tokio::test]
async fn api_server_500_during_login_gives_an_error_page_and_no_session() {
    let br = Bridge::with_bad_op().await;
    br.api.set_failure(Failure::ServerError);
    assert_failed_login_leaves_nothing(&br, "http 500").await;
    assert!(br.api.people().is_empty());
    br.api.set_failure(Failure::None);
    assert_login_works_again(&br).await;
}

#[tokio::test]
async fn failure_after_the_user_was_created_does_not_lock_the_person_out() {
    let br = Bridge::with_bad_op().await;
    br.api
        .set_failure(Failure::ServerErrorOn("auth.login".into()));
    assert_failed_login_leaves_nothing(&br, "http 500").await;
    assert_eq!(
        br.api.ok_count("auth.create_user"),
        1,
        "the user was created"
    );
    let dave = br.clearml_user("dave@example.com");

    br.api.set_failure(Failure::None);
    let b = assert_login_works_again(&br).await;
    assert_eq!(
        br.api.ok_count("auth.create_user"),
        1,
        "the same ClearML user"
    );
    assert_eq!(br.api.people().len(), 1);
    let token = br.clearml_cookie(&b).unwrap();
    assert_eq!(br.api.verify_token(&token).unwrap().identity.user, dave.id);
}

#[tokio::test]
async fn html_503_in_front_of_the_api_server_keeps_its_status_on_the_error_page() {
    let br = Bridge::with_bad_op().await;
    br.api.set_failure(Failure::Html(503));
    assert_failed_login_leaves_nothing(&br, "http 503").await;
    assert!(br.api.people().is_empty());
    br.api.set_failure(Failure::None);
    assert_login_works_again(&br).await;
}
