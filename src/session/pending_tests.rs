//! Tests for pending logins: round trip, single use, foreign state, expiry, eviction.

use super::*;
use crate::session::Ready as _;

const NOW: u64 = 1_700_000_000;

fn store(secure: bool) -> PendingStore {
    PendingStore::new(
        Arc::new(Sealer::new(&[9u8; 32])),
        "sso_session",
        secure,
        Arc::new(UseOnce::new(None)),
    )
}

fn login(created_at: u64) -> PendingLogin {
    PendingLogin {
        state: PendingStore::random_token(),
        nonce: PendingStore::random_token(),
        pkce_verifier: Some(PendingStore::random_token()),
        provider: "keycloak".into(),
        return_to: "/projects?x=1".into(),
        created_at,
        test: false,
        generation: 7,
    }
}

/// The `name=value` pair of a `Set-Cookie` value.
fn pair(set_cookie: &str) -> &str {
    set_cookie.split(';').next().unwrap()
}

/// A request carrying the cookies set (not cleared) by `set_cookies`.
fn request(set_cookies: &[String]) -> RequestCookies {
    let header = set_cookies
        .iter()
        .filter(|c| !c.contains("Max-Age=0"))
        .map(|c| pair(c))
        .collect::<Vec<_>>()
        .join("; ");
    RequestCookies::parse([header.as_bytes()])
}

#[test]
fn random_tokens_are_long_distinct_and_pkce_safe() {
    let a = PendingStore::random_token();
    assert_eq!(a.len(), 43);
    assert_ne!(a, PendingStore::random_token());
    assert!(a
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)));
}

#[test]
fn issue_then_take_round_trips() {
    let s = store(false);
    let p = login(NOW);
    let set = s.issue(&p, &RequestCookies::default());
    assert_eq!(set.len(), 1);
    assert!(set[0].starts_with("sso_session_st_"));
    assert!(set[0].contains("Max-Age=600; HttpOnly; SameSite=Lax"));
    assert!(!set[0].contains(&p.nonce));
    let (got, clear) = s.take(&p.state, &request(&set), NOW + 30).ready().unwrap();
    assert_eq!(got, p);
    assert!(clear.starts_with(&format!("{}=;", s.cookie_name(&p.state))));
    assert!(clear.contains("Max-Age=0"));
}

#[test]
fn secure_pending_cookie_has_host_prefix_and_secure() {
    let s = store(true);
    let p = login(NOW);
    let set = s.issue(&p, &RequestCookies::default());
    assert!(set[0].starts_with("__Host-sso_session_st_"));
    assert!(set[0].ends_with("SameSite=Lax; Secure"));
    assert!(s.take(&p.state, &request(&set), NOW).ready().is_ok());
}

#[test]
fn same_site_none_only_on_https() {
    let p = login(NOW);
    let https = store(true).issue_with_same_site_none(&p, &RequestCookies::default());
    assert!(https[0].contains("SameSite=None; Secure"));
    let http = store(false).issue_with_same_site_none(&p, &RequestCookies::default());
    assert!(http[0].contains("SameSite=Lax"));
    assert!(!http[0].contains("Secure"));
}

#[test]
fn callback_rejects_reused_state() {
    let s = store(false);
    let p = login(NOW);
    let req = request(&s.issue(&p, &RequestCookies::default()));
    assert!(s.take(&p.state, &req, NOW).ready().is_ok());
    assert_eq!(
        s.take(&p.state, &req, NOW + 1).ready().unwrap_err(),
        PendingError::Replayed
    );
}

#[test]
fn foreign_state_is_missing() {
    let s = store(false);
    let p = login(NOW);
    let req = request(&s.issue(&p, &RequestCookies::default()));
    let other = PendingStore::random_token();
    assert_eq!(
        s.take(&other, &req, NOW).ready().unwrap_err(),
        PendingError::Missing
    );
    assert_eq!(
        s.take(&p.state, &RequestCookies::default(), NOW)
            .ready()
            .unwrap_err(),
        PendingError::Missing
    );
}

#[test]
fn pending_login_expires_after_ten_minutes() {
    let s = store(false);
    let p = login(NOW);
    let req = request(&s.issue(&p, &RequestCookies::default()));
    assert_eq!(
        s.take(&p.state, &req, NOW + PENDING_TTL)
            .ready()
            .unwrap_err(),
        PendingError::Expired
    );
    // An expired attempt does not burn the state.
    assert!(s
        .take(&p.state, &req, NOW + PENDING_TTL - 1)
        .ready()
        .is_ok());
}

#[test]
fn tampered_or_moved_cookie_is_invalid() {
    let s = store(false);
    let a = login(NOW);
    let b = login(NOW);
    let set_a = s.issue(&a, &RequestCookies::default());
    // b's cookie name carrying a's sealed value: sealed for another name.
    let value_a = pair(&set_a[0]).split_once('=').unwrap().1;
    let moved = format!("{}={value_a}", s.cookie_name(&b.state));
    let req = RequestCookies::parse([moved.as_bytes()]);
    assert_eq!(
        s.take(&b.state, &req, NOW).ready().unwrap_err(),
        PendingError::Invalid
    );
    let garbage = format!("{}=garbage", s.cookie_name(&a.state));
    let req = RequestCookies::parse([garbage.as_bytes()]);
    assert_eq!(
        s.take(&a.state, &req, NOW).ready().unwrap_err(),
        PendingError::Invalid
    );
    assert_eq!(
        s.take(&"x".repeat(10_000), &req, NOW).ready().unwrap_err(),
        PendingError::Invalid
    );
}

#[test]
fn state_is_single_use_across_requests_of_the_process() {
    let s = store(false);
    let p = login(NOW);
    let set = s.issue(&p, &RequestCookies::default());
    assert!(s.take(&p.state, &request(&set), NOW).ready().is_ok());
    // Same state replayed from another browser that somehow holds the cookie.
    assert_eq!(
        s.take(&p.state, &request(&set), NOW).ready().unwrap_err(),
        PendingError::Replayed
    );
}

#[test]
fn eviction_keeps_at_most_five_oldest_first() {
    let s = store(false);
    let mut jar: Vec<String> = Vec::new();
    let mut logins = Vec::new();
    for i in 0..8u64 {
        let p = login(NOW + i);
        let set = s.issue(&p, &request(&jar));
        // Apply the response to the jar: clears remove, sets add.
        for c in &set {
            let name = pair(c).split_once('=').unwrap().0.to_owned();
            jar.retain(|j| !j.starts_with(&format!("{name}=")));
            if !c.contains("Max-Age=0") {
                jar.push(c.clone());
            }
        }
        logins.push(p);
        assert!(jar.len() <= MAX_PENDING, "{} cookies after {i}", jar.len());
    }
    assert_eq!(jar.len(), MAX_PENDING);
    let req = request(&jar);
    for old in &logins[..3] {
        assert_eq!(
            s.take(&old.state, &req, NOW + 10).ready().unwrap_err(),
            PendingError::Missing
        );
    }
    for new in &logins[3..] {
        assert!(s.take(&new.state, &req, NOW + 10).ready().is_ok());
    }
}

#[test]
fn eviction_counts_unreadable_pending_cookies_as_oldest() {
    let s = store(false);
    let mut header = String::from("sso_session_st_garbage=xyz");
    for i in 0..4u64 {
        let p = login(NOW + i);
        let set = s.issue(&p, &RequestCookies::default());
        header.push_str("; ");
        header.push_str(pair(&set[0]));
    }
    let set = s.issue(
        &login(NOW + 10),
        &RequestCookies::parse([header.as_bytes()]),
    );
    assert_eq!(set.len(), 2);
    assert!(set[0].starts_with("sso_session_st_garbage=;"));
    assert!(set[0].contains("Max-Age=0"));
}

#[test]
fn debug_redacts_nonce_and_verifier() {
    let p = login(NOW);
    let shown = format!("{p:?}");
    assert!(!shown.contains(&p.nonce));
    assert!(!shown.contains(p.pkce_verifier.as_deref().unwrap()));
    assert!(shown.contains("keycloak"));
}

#[test]
fn pkce_challenge_matches_rfc7636_example() {
    assert_eq!(
        PendingStore::pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
}
