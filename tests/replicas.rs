//! Two proxy processes behind one Redis (`session.store: redis://…`) behave as one: a login
//! started on A finishes on B, both know the session, a logout on one ends it on the other at
//! once; with Redis killed, a replica keeps serving the sessions it holds, refuses new logins
//! with a page naming the store and reports not ready, and recovers by itself.

use std::time::Duration;

use crate::support;
use serde_json::json;
use support::browser::{Browser, Page};
use support::proxy::{spawn_proxy_with, Proxy};
use support::redis::RedisServer;
use support::stack::{Stack, StackOptions, LOCAL};
use support::util::{free_port, wait_for};

/// Replica A (the stack's proxy, whose URL is the public URL) and replica B (same config,
/// another port), sharing `redis`.
async fn replicas(redis: &RedisServer) -> (Stack, Proxy) {
    let url = redis.url(2);
    let a = Stack::start(StackOptions::real(), move |c| {
        c["session"]["store"] = json!(url);
        c["session"]["local_cache_ttl"] = json!("60s");
    })
    .await;
    let mut config = a.config.clone();
    config["listen"] = json!(format!("127.0.0.1:{}", free_port()));
    let b = spawn_proxy_with(&serde_yaml::to_string(&config).unwrap(), true).await;
    (a, b)
}

async fn userinfo(browser: &Browser, proxy_url: &str) -> Page {
    browser
        .send(
            browser
                .client
                .get(format!("{proxy_url}/_sso/userinfo"))
                .header("accept", "application/json"),
        )
        .await
}

/// Log in at A, but let B answer the IdP's redirect to the callback. Returns B's answer, the
/// callback URL and the `Cookie` header sent with it.
async fn login_via(
    a: &Stack,
    b: &Proxy,
    browser: &Browser,
    user: &str,
) -> (Page, url::Url, String) {
    let base = url::Url::parse(a.base()).unwrap();
    let start = a.url(&format!("/_sso/login?provider={LOCAL}"));
    let driven = browser
        .drive(&start, user, &format!("{user}-pw"), |u| {
            u.origin() == base.origin() && u.path().starts_with("/callback_")
        })
        .await;
    let mut callback = driven.stopped_at.expect("reached the callback");
    let b_port = url::Url::parse(&b.base_url).unwrap().port().unwrap();
    callback.set_port(Some(b_port)).unwrap();
    let cookies = browser.cookie_header(callback.as_str()).unwrap_or_default();
    (browser.navigate(callback.as_str()).await, callback, cookies)
}

#[tokio::test]
async fn a_login_on_one_replica_is_known_on_the_other_and_a_logout_ends_it_everywhere() {
    let redis = RedisServer::start();
    let (a, b) = replicas(&redis).await;
    let browser = Browser::new();
    let (page, callback, cookies) = login_via(&a, &b, &browser, "alice").await;
    assert!(
        page.is_redirect(),
        "B finished the login A started: {}",
        page.describe()
    );
    // The login state is used up on every replica: the same callback, with the same pending
    // cookie, replayed at A is refused as already used.
    let mut replay = callback.clone();
    replay
        .set_port(url::Url::parse(a.base()).unwrap().port())
        .unwrap();
    let replayed = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(replay.as_str())
        .header("cookie", &cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status().as_u16(), 400);
    let body = replayed.text().await.unwrap();
    assert!(body.contains("already used"), "{body}");
    for (name, url) in [("A", a.base().to_owned()), ("B", b.base_url.clone())] {
        let me = userinfo(&browser, &url).await;
        assert_eq!(me.status, 200, "{name}: {}", me.body);
        assert_eq!(me.json()["user"], "alice", "{name}");
    }
    // A protected request through B reaches the upstream as alice.
    let before = a.echo.request_count();
    let page = browser.api_get(&format!("{}/projects", b.base_url)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(a.echo.request_count(), before + 1);

    // Logout on B (same origin: the public URL is A's); A forgets at once (its local copy
    // would otherwise live 60 s).
    let logout = browser
        .send(
            browser
                .client
                .post(format!("{}/_sso/logout", b.base_url))
                .header("origin", a.base()),
        )
        .await;
    assert!(
        logout.status.is_redirection() || logout.status.is_success(),
        "{}",
        logout.describe()
    );
    for (name, url) in [("A", a.base().to_owned()), ("B", b.base_url.clone())] {
        let me = userinfo(&browser, &url).await;
        assert_eq!(
            me.status, 401,
            "{name} still knows the session: {}",
            me.body
        );
    }
    let keys = redis.cli(&["-n", "2", "KEYS", "sso-proxy:session:*"]);
    assert!(keys.trim().is_empty(), "sessions left in Redis: {keys}");

    // And the other way round: a session used on both, logged out on A, is gone on B at once.
    let second = Browser::new();
    assert!(login_via(&a, &b, &second, "bob").await.0.is_redirect());
    assert_eq!(userinfo(&second, &b.base_url).await.status, 200);
    assert_eq!(userinfo(&second, a.base()).await.status, 200);
    let logout = second
        .send(
            second
                .client
                .post(a.url("/_sso/logout"))
                .header("origin", a.base()),
        )
        .await;
    assert!(logout.status.is_redirection(), "{}", logout.describe());
    assert_eq!(
        userinfo(&second, &b.base_url).await.status,
        401,
        "B still knows it"
    );
    a.assert_no_secrets_in("A's logs", &a.proxy.logs());
    a.assert_no_secrets_in("B's logs", &b.logs());
}

#[tokio::test]
async fn a_redis_outage_keeps_held_sessions_refuses_new_logins_and_heals() {
    let mut redis = RedisServer::start();
    let (a, b) = replicas(&redis).await;
    let alice = Browser::new();
    assert!(login_via(&a, &b, &alice, "alice").await.0.is_redirect());
    // A holds alice's session locally once it served her.
    assert_eq!(userinfo(&alice, a.base()).await.status, 200);

    redis.stop();
    let readyz = a.url("/_sso/readyz");
    let api = reqwest::Client::new();
    let body = wait_for("A reports not ready", Duration::from_secs(10), || {
        let (api, readyz) = (api.clone(), readyz.clone());
        async move {
            let r = api.get(&readyz).send().await.ok()?;
            (r.status().as_u16() == 503).then_some(())?;
            r.text().await.ok()
        }
    })
    .await;
    assert!(body.contains("session store"), "{body}");
    // Held session: still served by A.
    assert_eq!(userinfo(&alice, a.base()).await.status, 200);
    // A new login cannot be stored: a clear page, not a crash.
    let bob = Browser::new();
    let page = a.login_local(&bob, "bob", None).await.response;
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(
        page.body.contains("Redis"),
        "the page names the store: {}",
        page.body
    );
    assert_eq!(userinfo(&bob, a.base()).await.status, 401);

    redis.resume();
    for url in [readyz.clone(), format!("{}/_sso/readyz", b.base_url)] {
        let api = api.clone();
        wait_for("ready again", Duration::from_secs(10), || {
            let (api, url) = (api.clone(), url.clone());
            async move { (api.get(&url).send().await.ok()?.status().as_u16() == 200).then_some(()) }
        })
        .await;
    }
    let again = Browser::new();
    let (page, _, _) = login_via(&a, &b, &again, "bob").await;
    assert!(page.is_redirect(), "logins work again: {}", page.describe());
    assert_eq!(userinfo(&again, a.base()).await.status, 200);
    assert!(
        a.proxy.logs().contains("Redis unreachable"),
        "the outage is logged"
    );
}

#[tokio::test]
async fn replicas_with_the_clearml_bridge_map_a_user_to_one_clearml_user() {
    use support::clearml_api::ClearmlApi;
    let redis = RedisServer::start();
    let api = ClearmlApi::start();
    let url = redis.url(4);
    // Each replica has its own state database (`:memory:`); only Redis is shared.
    let a = Stack::start(StackOptions::real(), |c| {
        c["session"]["store"] = json!(url);
        api.route_upstream(c);
        c["clearml"] = api.bridge_config();
    })
    .await;
    let mut config = a.config.clone();
    config["listen"] = json!(format!("127.0.0.1:{}", free_port()));
    let b = spawn_proxy_with(&serde_yaml::to_string(&config).unwrap(), true).await;

    // First login finishes on B: B creates the ClearML user.
    let first = Browser::new();
    let (page, _, _) = login_via(&a, &b, &first, "alice").await;
    assert!(page.is_redirect(), "{}", page.describe());
    let alice = api
        .user_by_email("alice@example.com")
        .unwrap_or_else(|| panic!("no ClearML user; users: {:?}", api.people()));
    // Second login, all on A, which has never seen alice: the same ClearML user, not a new one.
    let second = Browser::new();
    let login = a.login_local(&second, "alice", None).await;
    assert!(
        login.response.is_redirect(),
        "{}",
        login.response.describe()
    );
    let alices: Vec<_> = api
        .people()
        .into_iter()
        .filter(|u| u.email == "alice@example.com")
        .collect();
    assert_eq!(alices.len(), 1, "{alices:?}");
    assert_eq!(
        api.calls_to("auth.create_user").len(),
        1,
        "created once, on B only"
    );
    assert_eq!(alices[0].id, alice.id);
    assert_eq!(
        redis
            .cli(&["-n", "4", "KEYS", "sso-proxy:clearml-user:*"])
            .lines()
            .count(),
        1
    );
}
