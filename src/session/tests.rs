//! Tests for the session stores, cookie parsing and stripping.

use std::time::Duration;

use super::*;
use crate::config::Secret;

const NOW: u64 = 1_700_000_000;
const IDLE: u64 = 3600;
const MAX: u64 = 12 * 3600;

fn config(store: SessionStoreKind) -> SessionConfig {
    SessionConfig {
        store,
        secret: Secret::new(vec![42u8; 32]),
        cookie_name: "sso_session".into(),
        idle_timeout: Duration::from_secs(IDLE),
        max_lifetime: Duration::from_secs(MAX),
        max_entries: 1000,
        redis: None,
    }
}

fn session(token_len: usize) -> Session {
    let identity = Identity {
        user: "alice".into(),
        email: Some("alice@example.com".into()),
        groups: vec!["admins".into(), "ops".into()],
        provider: "keycloak".into(),
        ..Identity::default()
    };
    let mut s = Session::new(identity, NOW, Duration::from_secs(MAX));
    s.id_token = Some(StoredToken::new("i".repeat(token_len)));
    s.access_token = Some(StoredToken::new("a".repeat(token_len)));
    s.refresh_token = Some(StoredToken::new("r".repeat(token_len)));
    s
}

fn stores() -> Vec<(&'static str, Arc<dyn SessionStore>)> {
    vec![
        (
            "memory",
            build_store(&config(SessionStoreKind::Memory), false).unwrap(),
        ),
        (
            "cookie",
            build_store(&config(SessionStoreKind::Cookie), false).unwrap(),
        ),
    ]
}

/// A request carrying the cookies set (not cleared) by `set_cookies`.
fn request(set_cookies: &[String]) -> RequestCookies {
    let header = set_cookies
        .iter()
        .filter(|c| !c.contains("Max-Age=0"))
        .map(|c| c.split(';').next().unwrap())
        .collect::<Vec<_>>()
        .join("; ");
    RequestCookies::parse([header.as_bytes()])
}

fn value_of<'a>(set_cookie: &'a str, name: &str) -> &'a str {
    set_cookie
        .split(';')
        .next()
        .unwrap()
        .strip_prefix(&format!("{name}="))
        .unwrap()
}

#[test]
fn both_stores_round_trip() {
    for (kind, store) in stores() {
        let original = session(500);
        let set = store.create(original.clone(), NOW).ready().unwrap();
        assert_eq!(set.len(), 1, "{kind}");
        assert!(set[0].starts_with("sso_session="), "{kind}");
        assert!(
            set[0].contains("Path=/; Max-Age=43200; HttpOnly; SameSite=Lax"),
            "{kind}"
        );
        assert!(!set[0].contains("Secure"), "{kind}");
        assert!(!set[0].contains("iiii"), "{kind}: token visible");
        let loaded = store.load(&request(&set), NOW + 10).ready().unwrap();
        assert_eq!(*loaded.session, original, "{kind}");
        assert!(loaded.set_cookies.is_empty(), "{kind}");
    }
}

#[test]
fn secure_cookies_have_host_prefix_and_secure() {
    let store = build_store(&config(SessionStoreKind::Memory), true).unwrap();
    let set = store.create(session(10), NOW).ready().unwrap();
    assert!(set[0].starts_with("__Host-sso_session="));
    assert!(set[0].ends_with("HttpOnly; SameSite=Lax; Secure"));
    assert!(store.load(&request(&set), NOW).ready().is_some());
    let clear = store.destroy(&request(&set)).ready();
    assert!(
        clear[0].starts_with("__Host-sso_session=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970")
    );
    assert!(clear[0].ends_with("; Secure"));
}

#[test]
fn garbage_truncated_and_tampered_cookies_are_no_session() {
    for (kind, store) in stores() {
        let set = store.create(session(100), NOW).ready().unwrap();
        let value = value_of(&set[0], "sso_session").to_owned();
        let mut tampered = value.clone().into_bytes();
        tampered[30] = if tampered[30] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        for bad in [
            "",
            "garbage",
            "\u{fffd}\u{0}",
            &value[..value.len() / 2],
            &value[..value.len() - 1],
            &tampered,
            &format!("{value}AAAA"),
        ] {
            let header = format!("sso_session={bad}");
            let cookies = RequestCookies::parse([header.as_bytes()]);
            assert!(
                store.load(&cookies, NOW).ready().is_none(),
                "{kind}: {bad:?}"
            );
        }
        let raw: &[u8] = b"sso_session=\xff\xfe; =; ;;; sso_session";
        assert!(store
            .load(&RequestCookies::parse([raw]), NOW)
            .ready()
            .is_none());
        assert!(store
            .load(&RequestCookies::default(), NOW)
            .ready()
            .is_none());
    }
}

#[test]
fn cookie_sealed_under_one_name_fails_under_another() {
    for (kind, store) in stores() {
        let set = store.create(session(10), NOW).ready().unwrap();
        let value = value_of(&set[0], "sso_session");
        let other = build_store(
            &SessionConfig {
                cookie_name: "other".into(),
                ..config(SessionStoreKind::Memory)
            },
            false,
        )
        .unwrap();
        let header = format!("other={value}");
        assert!(
            other
                .load(&RequestCookies::parse([header.as_bytes()]), NOW)
                .ready()
                .is_none(),
            "{kind}"
        );
    }
}

#[test]
fn idle_timeout_expires_sessions() {
    for (kind, store) in stores() {
        let set = store.create(session(10), NOW).ready().unwrap();
        assert!(
            store.load(&request(&set), NOW + IDLE + 1).ready().is_none(),
            "{kind}"
        );
    }
}

#[test]
fn activity_extends_the_idle_timeout() {
    for (kind, store) in stores() {
        let mut jar = store.create(session(10), NOW).ready().unwrap();
        for step in 1..=4 {
            let now = NOW + step * (IDLE - 100);
            let loaded = store.load(&request(&jar), now).ready().expect(kind);
            if !loaded.set_cookies.is_empty() {
                jar = loaded.set_cookies;
            }
        }
    }
}

#[test]
fn max_lifetime_expires_sessions_despite_activity() {
    for (kind, store) in stores() {
        let mut jar = store.create(session(10), NOW).ready().unwrap();
        let mut now = NOW;
        while now + IDLE / 2 < NOW + MAX {
            now += IDLE / 2;
            let loaded = store.load(&request(&jar), now).ready().expect(kind);
            if !loaded.set_cookies.is_empty() {
                jar = loaded.set_cookies;
            }
        }
        assert!(
            store.load(&request(&jar), NOW + MAX).ready().is_none(),
            "{kind}"
        );
    }
}

#[test]
fn expires_at_is_clamped_and_honoured() {
    for (kind, store) in stores() {
        let mut s = session(10);
        s.expires_at = NOW + 60;
        let set = store.create(s.clone(), NOW).ready().unwrap();
        assert!(set[0].contains("Max-Age=60;"), "{kind}");
        assert!(
            store.load(&request(&set), NOW + 59).ready().is_some(),
            "{kind}"
        );
        assert!(
            store.load(&request(&set), NOW + 60).ready().is_none(),
            "{kind}"
        );
        s.expires_at = NOW + 10 * MAX;
        let set = store.create(s.clone(), NOW).ready().unwrap();
        assert!(set[0].contains(&format!("Max-Age={MAX};")), "{kind}");
        s.expires_at = NOW - 1;
        assert!(
            matches!(store.create(s, NOW).ready(), Err(SessionError::Expired)),
            "{kind}"
        );
    }
}

#[test]
fn every_create_issues_a_new_id() {
    let store = build_store(&config(SessionStoreKind::Memory), false).unwrap();
    let a = store.create(session(10), NOW).ready().unwrap();
    let b = store.create(session(10), NOW).ready().unwrap();
    assert_ne!(a, b);
    assert!(store.load(&request(&a), NOW).ready().is_some());
    assert!(store.load(&request(&b), NOW).ready().is_some());
}

#[test]
fn memory_store_holds_at_most_max_entries_and_evicts_the_oldest() {
    let mut bounded = config(SessionStoreKind::Memory);
    bounded.max_entries = 2;
    let store = memory::MemoryStore::new(&bounded, false);
    let mut cookies = Vec::new();
    for _ in 0..3 {
        cookies.push(store.create(session(10), NOW).ready().unwrap());
        // moka evicts in its maintenance tasks; run them so the order is the creation order.
        store.run_pending_tasks();
    }
    assert!(store.entry_count() <= 2, "{} entries", store.entry_count());
    assert!(
        store.load(&request(&cookies[0]), NOW).ready().is_none(),
        "the oldest session was evicted"
    );
    for newer in &cookies[1..] {
        assert!(store.load(&request(newer), NOW).ready().is_some());
    }
}

#[test]
fn destroy_removes_the_server_side_session() {
    let store = build_store(&config(SessionStoreKind::Memory), false).unwrap();
    let set = store.create(session(10), NOW).ready().unwrap();
    let req = request(&set);
    let with_pending = RequestCookies::parse([format!(
        "{}; sso_session_0=x; sso_session_st_abc=y; foreign=1",
        set[0].split(';').next().unwrap()
    )
    .as_bytes()]);
    let clears = store.destroy(&with_pending).ready();
    assert_eq!(clears.len(), 3);
    assert!(clears.iter().all(|c| c.contains("Max-Age=0")));
    assert!(clears.iter().any(|c| c.starts_with("sso_session_st_abc=;")));
    assert!(!clears.iter().any(|c| c.starts_with("foreign")));
    // The old cookie, replayed after logout, finds nothing.
    assert!(store.load(&req, NOW).ready().is_none());
}

#[test]
fn large_cookie_session_is_chunked_and_reassembled() {
    let store = build_store(&config(SessionStoreKind::Cookie), false).unwrap();
    let original = session(3000);
    let set = store.create(original.clone(), NOW).ready().unwrap();
    let chunks: Vec<_> = set.iter().filter(|c| !c.contains("Max-Age=0")).collect();
    assert!(chunks.len() >= 3, "{set:?}");
    assert!(chunks[0].starts_with("sso_session_0="));
    assert!(chunks[1].starts_with("sso_session_1="));
    assert!(chunks.iter().all(|c| c.len() < 4096));
    // The unchunked cookie is cleared.
    assert!(set
        .iter()
        .any(|c| c.starts_with("sso_session=;") && c.contains("Max-Age=0")));
    let loaded = store.load(&request(&set), NOW + 1).ready().unwrap();
    assert_eq!(*loaded.session, original);
    // A missing chunk is no session.
    let partial: Vec<String> = set
        .iter()
        .filter(|c| !c.starts_with("sso_session_1="))
        .cloned()
        .collect();
    assert!(store.load(&request(&partial), NOW).ready().is_none());
}

#[test]
fn stale_chunks_are_cleared_when_the_session_shrinks() {
    let store = build_store(&config(SessionStoreKind::Cookie), false).unwrap();
    let big = store.create(session(3000), NOW).ready().unwrap();
    let small = store.create(session(10), NOW).ready().unwrap();
    // The browser now holds the small unchunked cookie and the old chunks.
    let mut jar = request(&big)
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>();
    jar.push(small[0].split(';').next().unwrap().to_owned());
    let header = jar.join("; ");
    let loaded = store
        .load(&RequestCookies::parse([header.as_bytes()]), NOW)
        .ready()
        .unwrap();
    assert_eq!(
        loaded
            .session
            .access_token
            .as_ref()
            .map(|t| t.expose().into_owned()),
        Some("aaaaaaaaaa".to_owned())
    );
    assert!(loaded.set_cookies.len() >= 3);
    assert!(loaded
        .set_cookies
        .iter()
        .all(|c| c.starts_with("sso_session_") && c.contains("Max-Age=0")));
}

#[test]
fn too_large_session_is_refused() {
    let store = build_store(&config(SessionStoreKind::Cookie), false).unwrap();
    assert!(matches!(
        store.create(session(20_000), NOW).ready(),
        Err(SessionError::TooLarge { .. })
    ));
}

#[test]
fn cookie_store_reissues_after_a_tenth_of_idle_timeout() {
    let store = build_store(&config(SessionStoreKind::Cookie), false).unwrap();
    let set = store.create(session(10), NOW).ready().unwrap();
    assert!(store
        .load(&request(&set), NOW + IDLE / 10)
        .ready()
        .unwrap()
        .set_cookies
        .is_empty());
    let loaded = store
        .load(&request(&set), NOW + IDLE / 10 + 1)
        .ready()
        .unwrap();
    assert_eq!(loaded.set_cookies.len(), 1);
    assert!(loaded.set_cookies[0].contains(&format!("Max-Age={};", MAX - IDLE / 10 - 1)));
    // The re-issued cookie restarts the idle clock.
    let later = NOW + IDLE / 10 + 1 + IDLE;
    assert!(store
        .load(&request(&loaded.set_cookies), later)
        .ready()
        .is_some());
    assert!(store.load(&request(&set), later).ready().is_none());
}

#[test]
fn session_debug_redacts_tokens() {
    let shown = format!("{:?}", session(20));
    assert!(!shown.contains("iiii") && !shown.contains("aaaa") && !shown.contains("rrrr"));
    assert!(shown.contains("<redacted>") && shown.contains("alice"));
}

#[test]
fn request_cookies_parse_all_headers_and_skip_garbage() {
    let h1: &[u8] = b"a=1; b = \"two\" ;junk; =x; c=3=3";
    let h2: &[u8] = b"d=\xff; e=5;;";
    let c = RequestCookies::parse([h1, h2]);
    let pairs: Vec<_> = c.iter().collect();
    assert_eq!(pairs, [("a", "1"), ("b", "two"), ("c", "3=3"), ("e", "5")]);
    assert_eq!(c.get("c"), Some("3=3"));
    assert_eq!(c.get("junk"), None);
    assert!(!format!("{c:?}").contains("two"));
}

#[test]
fn cookie_names_recognise_ours() {
    let names = CookieNames::new("sso_session", true);
    assert_eq!(names.session(), "__Host-sso_session");
    for ours in [
        "__Host-sso_session",
        "__Host-sso_session_0",
        "__Host-sso_session_12",
        "__Host-sso_session_st_abcdefabcdef",
        "sso_session",
        "sso_session_3",
    ] {
        assert!(names.is_ours(ours), "{ours}");
    }
    for foreign in [
        "clearml_token_basic",
        "sso_sessionx",
        "sso_session_x",
        "sso_session_123",
        "x_sso_session",
    ] {
        assert!(!names.is_ours(foreign), "{foreign}");
    }
}

#[test]
fn strip_own_cookies_keeps_foreign_and_drops_ours() {
    let names = cookie_names(&config(SessionStoreKind::Memory), true);
    let header = b"clearml_token_basic=abc; __Host-sso_session=s; __Host-sso_session_1=c;  \
        __Host-sso_session_st_0123456789ab=p; theme=dark; flag";
    assert_eq!(
        strip_own_cookies(header, &names).as_deref(),
        Some("clearml_token_basic=abc; theme=dark; flag")
    );
    assert_eq!(
        strip_own_cookies(b"__Host-sso_session=s; sso_session_0=x", &names),
        None
    );
    assert_eq!(strip_own_cookies(b"", &names), None);
}
