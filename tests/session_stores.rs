//! One suite for every `SessionStore` (memory, cookie, Redis against a real `redis-server`),
//! through the library API, then what only a shared store does: two replicas on one Redis
//! share sessions and logouts, and an outage keeps local sessions while refusing new ones.

use std::sync::Arc;
use std::time::Duration;

use crate::support;
use sso_proxy::config::{RedisConfig, Secret, SessionConfig, SessionStoreKind};
use sso_proxy::identity::Identity;
use sso_proxy::session::{
    build_store, RequestCookies, Session, SessionError, SessionStore, StoredToken,
};
use support::redis::RedisServer;
use support::util::{now, random_string, wait_for};

const JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl";

fn config(
    kind: SessionStoreKind,
    redis: Option<String>,
    idle: u64,
    local_ttl: Duration,
) -> SessionConfig {
    SessionConfig {
        store: kind,
        secret: Secret::new(b"session-stores-suite-secret-0123456789abcdef".to_vec()),
        cookie_name: "sso_session".to_owned(),
        idle_timeout: Duration::from_secs(idle),
        max_lifetime: Duration::from_secs(3600),
        max_entries: 1000,
        redis: redis.map(|url| RedisConfig {
            url: Secret::new(url.clone()),
            display: url,
            local_cache_ttl: local_ttl,
        }),
    }
}

/// A Redis-backed store (one replica), connected and ready.
async fn redis_store(
    server: &RedisServer,
    idle: u64,
    local_ttl: Duration,
) -> Arc<dyn SessionStore> {
    let store = build_store(
        &config(
            SessionStoreKind::Redis,
            Some(server.url(0)),
            idle,
            local_ttl,
        ),
        false,
    )
    .unwrap();
    store.start().await;
    wait_ready(&store).await;
    store
}

async fn wait_ready(store: &Arc<dyn SessionStore>) {
    let s = store.clone();
    wait_for("the store is ready", Duration::from_secs(10), || {
        let s = s.clone();
        async move { s.ready().ok() }
    })
    .await;
}

/// Every store kind; the Redis server lives as long as the returned value.
async fn every_store(idle: u64) -> (RedisServer, Vec<(&'static str, Arc<dyn SessionStore>)>) {
    let server = RedisServer::start();
    let local = Duration::from_millis(300);
    let stores = vec![
        (
            "memory",
            build_store(&config(SessionStoreKind::Memory, None, idle, local), false).unwrap(),
        ),
        (
            "cookie",
            build_store(&config(SessionStoreKind::Cookie, None, idle, local), false).unwrap(),
        ),
        ("redis", redis_store(&server, idle, local).await),
    ];
    (server, stores)
}

fn alice() -> Session {
    let identity = Identity {
        user: "alice".into(),
        email: Some("alice@example.com".into()),
        groups: vec!["admins".into(), "ml-team".into()],
        provider: "local".into(),
        ..Identity::default()
    };
    let mut s = Session::new(identity, now() as u64, Duration::from_secs(3600));
    s.id_token = Some(StoredToken::new(JWT.to_owned()));
    s.refresh_token = Some(StoredToken::new("opaque-refresh".to_owned()));
    s
}

/// The `Cookie` header a browser sends back after these `Set-Cookie` values.
fn browser(set_cookies: &[String]) -> RequestCookies {
    let header = set_cookies
        .iter()
        .filter(|c| !c.contains("Max-Age=0"))
        .map(|c| c.split(';').next().unwrap())
        .collect::<Vec<_>>()
        .join("; ");
    RequestCookies::parse([header.as_bytes()])
}

fn t() -> u64 {
    now() as u64
}

#[tokio::test]
async fn every_store_round_trips_a_session_with_its_tokens() {
    let (_server, stores) = every_store(3600).await;
    for (kind, store) in stores {
        let set = store.create(alice(), t()).await.unwrap();
        let loaded = store.load(&browser(&set), t()).await.expect(kind);
        let s = &loaded.session;
        assert_eq!(s.identity, alice().identity, "{kind}");
        assert_eq!(s.id_token.as_ref().unwrap().expose(), JWT, "{kind}");
        assert_eq!(
            s.refresh_token.as_ref().unwrap().expose(),
            "opaque-refresh",
            "{kind}"
        );
        assert!(
            set[0].contains("HttpOnly") && set[0].contains("SameSite=Lax"),
            "{kind}: {}",
            set[0]
        );
    }
}

#[tokio::test]
async fn every_store_refuses_garbage_tampered_and_foreign_cookies() {
    let (_server, stores) = every_store(3600).await;
    for (kind, store) in stores {
        let set = store.create(alice(), t()).await.unwrap();
        let value = set[0]
            .split(';')
            .next()
            .unwrap()
            .split_once('=')
            .unwrap()
            .1
            .to_owned();
        let mut tampered = value.clone().into_bytes();
        let mid = tampered.len() / 2;
        tampered[mid] = if tampered[mid] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        let other_secret = {
            let mut c = config(SessionStoreKind::Memory, None, 3600, Duration::from_secs(1));
            c.secret = Secret::new(random_string(48).into_bytes());
            build_store(&c, false).unwrap()
        };
        let foreign = other_secret.create(alice(), t()).await.unwrap();
        let foreign = foreign[0]
            .split(';')
            .next()
            .unwrap()
            .split_once('=')
            .unwrap()
            .1
            .to_owned();
        for bad in [
            "",
            "garbage",
            "%%%",
            &"A".repeat(5000),
            &value[..value.len() / 2],
            &tampered,
            &foreign,
        ] {
            let header = format!("sso_session={bad}");
            let cookies = RequestCookies::parse([header.as_bytes()]);
            assert!(
                store.load(&cookies, t()).await.is_none(),
                "{kind}: {bad:.40}"
            );
        }
    }
}

#[tokio::test]
async fn every_store_ends_a_destroyed_session() {
    let (server, stores) = every_store(3600).await;
    for (kind, store) in stores {
        let set = store.create(alice(), t()).await.unwrap();
        let cookies = browser(&set);
        assert!(store.load(&cookies, t()).await.is_some(), "{kind}");
        let clears = store.destroy(&cookies).await;
        assert!(
            clears
                .iter()
                .any(|c| c.starts_with("sso_session=") && c.contains("Max-Age=0")),
            "{kind}: {clears:?}"
        );
        if kind == "cookie" {
            // Stateless: the cookie itself is the session; the browser is told to drop it.
            continue;
        }
        assert!(store.load(&cookies, t()).await.is_none(), "{kind}");
    }
    assert_eq!(server.cli(&["DBSIZE"]).trim(), "0", "nothing left in Redis");
}

#[tokio::test]
async fn every_store_ends_a_session_at_its_idle_timeout() {
    let (_server, stores) = every_store(1).await;
    let made: Vec<_> = {
        let mut v = Vec::new();
        for (kind, store) in &stores {
            v.push((kind, store, store.create(alice(), t()).await.unwrap()));
        }
        v
    };
    tokio::time::sleep(Duration::from_millis(2100)).await;
    for (kind, store, set) in made {
        assert!(store.load(&browser(&set), t()).await.is_none(), "{kind}");
    }
}

#[tokio::test]
async fn every_store_ends_a_session_at_its_absolute_end() {
    let (_server, stores) = every_store(3600).await;
    let mut made = Vec::new();
    for (kind, store) in &stores {
        let mut short = alice();
        short.expires_at = t() + 1;
        let set = store.create(short, t()).await.unwrap();
        assert!(store.load(&browser(&set), t()).await.is_some(), "{kind}");
        made.push((kind, store, set));
    }
    tokio::time::sleep(Duration::from_millis(2100)).await;
    for (kind, store, set) in made {
        assert!(store.load(&browser(&set), t()).await.is_none(), "{kind}");
    }
}

#[tokio::test]
async fn every_store_updates_a_session_in_place() {
    let (_server, stores) = every_store(3600).await;
    for (kind, store) in stores {
        let set = store.create(alice(), t()).await.unwrap();
        let cookies = browser(&set);
        let mut next = (*store.load(&cookies, t()).await.unwrap().session).clone();
        next.refresh_token = Some(StoredToken::new("rotated".to_owned()));
        let update = store.update(&cookies, next, t()).await.unwrap();
        // The cookie store re-issues its cookie; the others keep the id.
        let cookies = if update.is_empty() {
            cookies
        } else {
            browser(&update)
        };
        let loaded = store.load(&cookies, t()).await.expect(kind);
        assert_eq!(
            loaded.session.refresh_token.as_ref().unwrap().expose(),
            "rotated",
            "{kind}"
        );
    }
}

#[tokio::test]
async fn replicas_on_one_redis_share_sessions_and_logouts() {
    let server = RedisServer::start();
    // A long local TTL: only the pub/sub announcement can make replica B forget in time.
    let a = redis_store(&server, 3600, Duration::from_secs(60)).await;
    let b = redis_store(&server, 3600, Duration::from_secs(60)).await;
    let set = a.create(alice(), t()).await.unwrap();
    let cookies = browser(&set);
    let on_b = b
        .load(&cookies, t())
        .await
        .expect("a session made on A is known on B");
    assert_eq!(on_b.session.identity.user, "alice");
    // B now holds a local copy; A's logout must reach it.
    a.destroy(&cookies).await;
    let b2 = b.clone();
    wait_for("B forgets the session", Duration::from_secs(3), || {
        let (b, cookies) = (b2.clone(), cookies.clone());
        async move { b.load(&cookies, t()).await.is_none().then_some(()) }
    })
    .await;
    // A refresh on B reaches A too.
    let set = b.create(alice(), t()).await.unwrap();
    let cookies = browser(&set);
    assert!(a.load(&cookies, t()).await.is_some());
    let mut next = alice();
    next.refresh_token = Some(StoredToken::new("rotated-on-b".to_owned()));
    b.update(&cookies, next, t()).await.unwrap();
    let a2 = a.clone();
    wait_for("A sees B's update", Duration::from_secs(3), || {
        let (a, cookies) = (a2.clone(), cookies.clone());
        async move {
            let s = a.load(&cookies, t()).await?;
            (s.session.refresh_token.as_ref()?.expose() == "rotated-on-b").then_some(())
        }
    })
    .await;
    // What Redis holds: one key per session, named by a hash, never the cookie's id.
    let keys = server.cli(&["KEYS", "*"]);
    assert_eq!(keys.lines().count(), 1, "{keys}");
    assert!(keys.starts_with("sso-proxy:session:"), "{keys}");
}

#[tokio::test]
async fn a_redis_outage_keeps_local_sessions_and_refuses_new_ones_until_it_returns() {
    let mut server = RedisServer::start();
    let store = redis_store(&server, 3600, Duration::from_secs(60)).await;
    let set = store.create(alice(), t()).await.unwrap();
    let cookies = browser(&set);
    assert!(store.load(&cookies, t()).await.is_some());

    server.stop();
    let s = store.clone();
    wait_for(
        "not ready while Redis is down",
        Duration::from_secs(5),
        || {
            let s = s.clone();
            async move { s.ready().is_err().then_some(()) }
        },
    )
    .await;
    assert!(
        store.ready().unwrap_err().contains("127.0.0.1"),
        "names the store"
    );
    // The session held locally keeps working; a new one cannot be made.
    assert!(
        store.load(&cookies, t()).await.is_some(),
        "local copy serves during the outage"
    );
    match store.create(alice(), t()).await {
        Err(SessionError::Unavailable(why)) => assert!(why.contains("Redis"), "{why}"),
        other => panic!("create during an outage: {other:?}"),
    }
    // A session this replica never saw is simply not found (and nothing panics).
    let foreign = browser(
        &build_store(
            &config(SessionStoreKind::Memory, None, 3600, Duration::from_secs(1)),
            false,
        )
        .unwrap()
        .create(alice(), t())
        .await
        .unwrap(),
    );
    assert!(store.load(&foreign, t()).await.is_none());

    server.resume();
    wait_ready(&store).await;
    let set = store.create(alice(), t()).await.expect("logins work again");
    assert!(store.load(&browser(&set), t()).await.is_some());
    // The restarted Redis is empty, and the reconnection dropped the local copies.
    assert!(store.load(&cookies, t()).await.is_none());
}

#[tokio::test]
async fn single_use_marks_are_shared_by_replicas_and_refused_during_an_outage() {
    use sso_proxy::session::{Once, UseOnce};
    let mut server = RedisServer::start();
    let a = redis_store(&server, 3600, Duration::from_secs(60)).await;
    let b = redis_store(&server, 3600, Duration::from_secs(60)).await;
    let (on_a, on_b) = (UseOnce::new(a.shared()), UseOnce::new(b.shared()));
    let ttl = Duration::from_secs(60);
    for what in [Once::LoginState, Once::SamlAssertion, Once::LogoutToken] {
        assert!(
            on_a.first_use(what, b"id-1", ttl).await.unwrap(),
            "{what:?}"
        );
        assert!(
            !on_b.first_use(what, b"id-1", ttl).await.unwrap(),
            "{what:?} on B"
        );
        assert!(
            !on_a.first_use(what, b"id-1", ttl).await.unwrap(),
            "{what:?} again"
        );
    }
    assert!(on_b
        .first_use(Once::LoginState, b"id-2", ttl)
        .await
        .unwrap());
    // Without Redis: this process's memory, same answers.
    let local = UseOnce::new(None);
    assert!(local
        .first_use(Once::LoginState, b"id-1", ttl)
        .await
        .unwrap());
    assert!(!local
        .first_use(Once::LoginState, b"id-1", ttl)
        .await
        .unwrap());
    assert!(local
        .first_use(Once::LogoutToken, b"id-1", ttl)
        .await
        .unwrap());
    // An outage: no answer rather than a guess.
    server.stop();
    assert!(on_a
        .first_use(Once::LoginState, b"id-3", ttl)
        .await
        .is_err());
}

#[tokio::test]
async fn a_back_channel_logout_ends_the_matching_sessions_on_every_replica() {
    let server = RedisServer::start();
    let a = redis_store(&server, 3600, Duration::from_secs(60)).await;
    let b = redis_store(&server, 3600, Duration::from_secs(60)).await;
    let with = |sid: &str, sub: &str| {
        let mut s = alice();
        s.sid = Some(sid.to_owned());
        s.sub = Some(sub.to_owned());
        s
    };
    let laptop = browser(&a.create(with("sid-1", "alice"), t()).await.unwrap());
    let phone = browser(&a.create(with("sid-2", "alice"), t()).await.unwrap());
    let bobs = browser(&a.create(with("sid-3", "bob"), t()).await.unwrap());
    for cookies in [&laptop, &phone, &bobs] {
        assert!(b.load(cookies, t()).await.is_some(), "B holds a copy");
    }
    // The IdP ends one IdP session (sid) at replica A: only that browser is logged out, on B too.
    assert_eq!(a.end_matching("local", "sid", "sid-1").await.unwrap(), 1);
    assert_eq!(
        a.end_matching("other", "sid", "sid-2").await.unwrap(),
        0,
        "another connection's sid"
    );
    let b2 = b.clone();
    let l2 = laptop.clone();
    wait_for(
        "B forgets the ended session",
        Duration::from_secs(3),
        || {
            let (b, c) = (b2.clone(), l2.clone());
            async move { b.load(&c, t()).await.is_none().then_some(()) }
        },
    )
    .await;
    assert!(b.load(&phone, t()).await.is_some());
    // A logout token with only `sub` ends every session of that user.
    assert_eq!(b.end_matching("local", "sub", "alice").await.unwrap(), 1);
    assert!(a.load(&phone, t()).await.is_none());
    assert!(a.load(&bobs, t()).await.is_some(), "bob is untouched");
    // The memory store cannot search; the revocation list covers it.
    let memory = build_store(
        &config(SessionStoreKind::Memory, None, 3600, Duration::from_secs(1)),
        false,
    )
    .unwrap();
    assert_eq!(
        memory.end_matching("local", "sub", "alice").await.unwrap(),
        0
    );
}

#[tokio::test]
async fn a_sentinel_url_follows_the_master_through_a_failover() {
    let mut redis = support::redis::RedisSentinel::start();
    let config = config(
        SessionStoreKind::Redis,
        Some(redis.url(0)),
        3600,
        Duration::from_millis(200),
    );
    let store = build_store(&config, false).unwrap();
    store.start().await;
    wait_ready(&store).await;
    let before = browser(&store.create(alice(), t()).await.unwrap());
    let on_master = redis.master.cli(&["KEYS", "sso-proxy:session:*"]);
    assert_eq!(
        on_master.lines().count(),
        1,
        "the session is on the master: {on_master}"
    );

    redis.fail_over();
    // The store finds the promoted replica by itself and works again.
    let s = store.clone();
    wait_for(
        "a session can be stored after the failover",
        Duration::from_secs(15),
        || {
            let s = s.clone();
            async move { s.create(alice(), t()).await.ok() }
        },
    )
    .await;
    wait_ready(&store).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        store.load(&before, t()).await.is_some(),
        "replicated before the failover"
    );
    let on_new_master = redis.replica.cli(&["KEYS", "sso-proxy:session:*"]);
    assert_eq!(on_new_master.lines().count(), 2, "{on_new_master}");
}

#[tokio::test]
async fn a_cluster_url_spreads_sessions_and_still_announces_logouts() {
    let cluster = support::redis::RedisCluster::start();
    let replica = |ttl| {
        let config = config(SessionStoreKind::Redis, Some(cluster.url()), 3600, ttl);
        build_store(&config, false).unwrap()
    };
    let (a, b) = (
        replica(Duration::from_secs(60)),
        replica(Duration::from_secs(60)),
    );
    for store in [&a, &b] {
        store.start().await;
        wait_ready(store).await;
    }
    let mut jars = Vec::new();
    for _ in 0..12 {
        let jar = browser(&a.create(alice(), t()).await.unwrap());
        assert!(b.load(&jar, t()).await.is_some(), "B reads what A wrote");
        jars.push(jar);
    }
    let spread = cluster.session_keys_per_node();
    assert_eq!(spread.iter().sum::<usize>(), 12, "{spread:?}");
    assert!(
        spread.iter().filter(|n| **n > 0).count() >= 2,
        "keys on several nodes: {spread:?}"
    );
    // A logout on A reaches B's local copy through the cluster's pub/sub.
    a.destroy(&jars[0]).await;
    let (b2, jar) = (b.clone(), jars[0].clone());
    wait_for("B forgets the session", Duration::from_secs(3), || {
        let (b, jar) = (b2.clone(), jar.clone());
        async move { b.load(&jar, t()).await.is_none().then_some(()) }
    })
    .await;
    assert!(b.load(&jars[1], t()).await.is_some());
    // Single-use marks work on the cluster too.
    use sso_proxy::session::{Once, UseOnce};
    let once = UseOnce::new(a.shared());
    let ttl = Duration::from_secs(60);
    assert!(once.first_use(Once::LoginState, b"s", ttl).await.unwrap());
    assert!(!UseOnce::new(b.shared())
        .first_use(Once::LoginState, b"s", ttl)
        .await
        .unwrap());
}
