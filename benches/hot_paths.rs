//! Criterion micro-benchmarks of the per-request and per-login hot paths (issue 7, part 1):
//! session cookie decode + lookup (memory store holding 10k sessions, and the sealed cookie
//! store), `decide`, identity-header stripping and injection, ID-token verification through a
//! pre-loaded JWKS cache, pending-state seal + unseal, and path normalisation.
//!
//! Run: `cargo bench --bench hot_paths` (filter: `cargo bench --bench hot_paths -- session/`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/tokens.rs"]
mod tokens;

use std::sync::Arc;
use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use futures_util::FutureExt as _;
use http::{HeaderMap, HeaderValue, Method};
use jsonwebtoken::Algorithm;
use pingora::http::RequestHeader;
use regex::Regex;
use sso_proxy::config::{HeadersConfig, RouteRule, Secret, SessionConfig, SessionStoreKind};
use sso_proxy::providers::id_token::{check_claims, header, verify_signature, Expectations};
use sso_proxy::providers::jwks::{JwksCache, KeySet};
use sso_proxy::proxy::decide::{decide, RequestView, Routes};
use sso_proxy::proxy::headers::{strip_reserved, upstream_identity, StripRules};
use sso_proxy::proxy::path::normalize;
use sso_proxy::session::{
    build_pending, build_store, PendingLogin, PendingStore, RequestCookies, Session, SessionStore,
    UseOnce,
};

const NOW: u64 = 1_800_000_000;
const SESSIONS: u64 = 10_000;
const ISSUER: &str = "https://idp.example.com/realms/main";
const CLIENT_ID: &str = "clearml";

fn session_config(store: SessionStoreKind) -> SessionConfig {
    SessionConfig {
        store,
        secret: Secret::new(b"benchmark-session-secret-0123456789abcdef".to_vec()),
        cookie_name: "sso_session".to_owned(),
        idle_timeout: Duration::from_secs(3600),
        max_lifetime: Duration::from_secs(12 * 3600),
        max_entries: 1_000_000,
        redis: None,
    }
}

fn headers_config() -> HeadersConfig {
    HeadersConfig {
        user: Some("X-Forwarded-User".to_owned()),
        email: Some("X-Forwarded-Email".to_owned()),
        preferred_username: Some("X-Forwarded-Preferred-Username".to_owned()),
        groups: Some("X-Forwarded-Groups".to_owned()),
        name: Some("X-Forwarded-Name".to_owned()),
        pass_access_token: false,
        pass_authorization: false,
        identity_token: false,
    }
}

fn new_session(n: u64) -> Session {
    Session::new(tokens::identity(n), NOW, Duration::from_secs(12 * 3600))
}

/// The `name=value` part of a `Set-Cookie`.
fn cookie_pair(set_cookie: &str) -> &str {
    set_cookie.split(';').next().unwrap_or_default()
}

/// A browser's `Cookie` header: analytics cookies, the app's own token and our session cookie.
fn browser_cookie_header(session_pairs: &[String]) -> String {
    let mut parts = vec![
        "_ga=GA1.1.1234567890.1700000000".to_owned(),
        "_gid=GA1.1.987654321.1700000000".to_owned(),
        "clearml_token_basic=eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyIjoiYWxpY2UifQ.c2lnbmF0dXJl".to_owned(),
    ];
    parts.extend(session_pairs.iter().cloned());
    parts.push("theme=dark".to_owned());
    parts.join("; ")
}

fn bench_sessions(c: &mut Criterion) {
    let mut g = c.benchmark_group("session");

    // Memory store holding 10k sessions; look one of them up from a full browser Cookie header.
    let memory = build_store(&session_config(SessionStoreKind::Memory), false).unwrap();
    let mut headers = Vec::new();
    for n in 0..SESSIONS {
        let set = memory
            .create(new_session(n), NOW)
            .now_or_never()
            .expect("the memory and cookie stores never wait")
            .unwrap();
        if n % 1000 == 0 {
            let pairs: Vec<String> = set.iter().map(|s| cookie_pair(s).to_owned()).collect();
            headers.push(browser_cookie_header(&pairs));
        }
    }
    let mut i = 0;
    g.bench_function("memory_10k/parse_cookies+load", |b| {
        b.iter(|| {
            i = (i + 1) % headers.len();
            let cookies = RequestCookies::parse([headers[i].as_bytes()]);
            let loaded = memory
                .load(&cookies, NOW + 5)
                .now_or_never()
                .expect("the memory and cookie stores never wait")
                .unwrap();
            black_box(loaded.session.identity.user.len())
        })
    });
    let garbage =
        browser_cookie_header(&["sso_session=bm90LWEtcmVhbC1zZWFsZWQtdmFsdWU=".to_owned()]);
    g.bench_function("memory_10k/garbage_cookie", |b| {
        b.iter(|| {
            let cookies = RequestCookies::parse([garbage.as_bytes()]);
            black_box(
                memory
                    .load(&cookies, NOW + 5)
                    .now_or_never()
                    .expect("the memory and cookie stores never wait")
                    .is_none(),
            )
        })
    });

    // The sealed cookie store: the whole identity travels in the cookie.
    let cookie_store = build_store(&session_config(SessionStoreKind::Cookie), false).unwrap();
    let set = cookie_store
        .create(new_session(7), NOW)
        .now_or_never()
        .expect("the memory and cookie stores never wait")
        .unwrap();
    let pairs: Vec<String> = set
        .iter()
        .filter(|s| !s.contains("Max-Age=0"))
        .map(|s| cookie_pair(s).to_owned())
        .collect();
    let header = browser_cookie_header(&pairs);
    g.bench_function("cookie_store/parse_cookies+load", |b| {
        b.iter(|| {
            let cookies = RequestCookies::parse([header.as_bytes()]);
            let loaded = cookie_store
                .load(&cookies, NOW + 5)
                .now_or_never()
                .expect("the memory and cookie stores never wait")
                .unwrap();
            black_box(loaded.session.identity.user.len())
        })
    });
    g.bench_function("cookie_store/create", |b| {
        b.iter(|| {
            black_box(
                cookie_store
                    .create(new_session(9), NOW)
                    .now_or_never()
                    .expect("the memory and cookie stores never wait")
                    .unwrap(),
            )
        })
    });
    g.bench_function("memory_10k/create", |b| {
        let mut n = SESSIONS;
        b.iter(|| {
            n += 1;
            black_box(
                memory
                    .create(new_session(n), NOW)
                    .now_or_never()
                    .expect("the memory and cookie stores never wait")
                    .unwrap(),
            )
        })
    });
    g.finish();
}

fn browser_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    let pairs = [
        ("host", "app.example.com"),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        ),
        (
            "accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        ),
        ("accept-language", "en-US,en;q=0.5"),
        ("accept-encoding", "gzip, deflate, br, zstd"),
        ("sec-fetch-dest", "document"),
        ("sec-fetch-mode", "navigate"),
        ("sec-fetch-site", "same-origin"),
        ("referer", "https://app.example.com/projects"),
        ("connection", "keep-alive"),
    ];
    for (k, v) in pairs {
        h.append(k, HeaderValue::from_static(v));
    }
    h
}

fn bench_decide(c: &mut Criterion) {
    let mut g = c.benchmark_group("decide");
    let headers = browser_headers();
    let routes = Routes {
        skip_auth: vec![
            RouteRule {
                method: None,
                path: Regex::new("^/static/").unwrap(),
            },
            RouteRule {
                method: Some(Method::GET),
                path: Regex::new("^/api/v2\\.\\d+/login\\.supported_modes$").unwrap(),
            },
        ],
        api_routes: vec![Regex::new("^/api/").unwrap()],
    };
    let cases = [
        ("authenticated_forward", "/projects/123/experiments", true),
        (
            "unauthenticated_browser_redirect",
            "/projects/123/experiments",
            false,
        ),
        ("unauthenticated_api_401", "/api/v2.30/tasks.get_all", false),
        ("skip_auth_route", "/static/app.js", false),
        ("own_endpoint", "/_sso/userinfo", true),
    ];
    for (name, path, has_session) in cases {
        g.bench_function(name, |b| {
            b.iter(|| {
                let view = RequestView {
                    method: &Method::GET,
                    path: black_box(path),
                    headers: &headers,
                };
                black_box(decide(view, has_session, &routes))
            })
        });
    }
    g.finish();
}

fn bench_headers(c: &mut Criterion) {
    let mut g = c.benchmark_group("headers");
    let config = headers_config();
    let rules = StripRules::new(&config, &[]);
    let identity = tokens::identity(42);
    let mut req = RequestHeader::build("GET", b"/projects/123/experiments?tab=all", None).unwrap();
    for (k, v) in browser_headers().iter() {
        req.append_header(k.clone(), v.clone()).unwrap();
    }
    req.append_header(
        "cookie",
        browser_cookie_header(&["sso_session=AAAA".to_owned()]),
    )
    .unwrap();
    let clean = req.clone();
    // A client trying to smuggle identity headers in.
    let mut spoofed = req.clone();
    spoofed
        .append_header("X-Forwarded-User", "mallory")
        .unwrap();
    spoofed
        .append_header("x_forwarded_email", "mallory@evil.example")
        .unwrap();
    spoofed
        .append_header("X-Auth-Request-User", "mallory")
        .unwrap();

    for (name, template) in [("clean_request", &clean), ("spoofed_request", &spoofed)] {
        g.bench_function(format!("strip/{name}"), |b| {
            b.iter_batched_ref(
                || template.clone(),
                |r| black_box(strip_reserved(r, &rules)),
                BatchSize::SmallInput,
            )
        });
    }
    g.bench_function("strip+inject/clean_request", |b| {
        b.iter_batched_ref(
            || clean.clone(),
            |r| {
                strip_reserved(r, &rules);
                for (n, v) in upstream_identity(&identity, &config) {
                    r.insert_header(n, v).unwrap();
                }
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn bench_id_token(c: &mut Criterion) {
    let mut g = c.benchmark_group("id_token");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rsa = tokens::SigningKey::rs256("rsa-1");
    let ec = tokens::SigningKey::es256("ec-1");
    // A second, unrelated RSA key in the set, as during an IdP key rotation.
    let rotated = tokens::SigningKey::rs256("rsa-0");
    let jwks_json = serde_json::to_vec(&tokens::jwks(&[&rotated, &rsa, &ec])).unwrap();
    let jwks_uri = url::Url::parse(&format!("{ISSUER}/protocol/openid-connect/certs")).unwrap();
    let cache = JwksCache::new(reqwest::Client::new());
    rt.block_on(cache.insert(&jwks_uri, KeySet::parse(&jwks_json).unwrap()));
    let allowed = [Algorithm::RS256, Algorithm::PS256, Algorithm::ES256];
    let nonce = PendingStore::random_token();
    let want = Expectations {
        issuer: ISSUER,
        client_id: CLIENT_ID,
        nonce: Some(&nonce),
        check_audience: true,
        skew_secs: 60,
        now: NOW + 2,
    };
    for key in [&rsa, &ec] {
        let claims = tokens::id_token_claims(ISSUER, CLIENT_ID, "4f1c2a7e-9b3d", &nonce, NOW);
        let token = key.sign(&claims);
        let verify_all = || {
            let h = header(&token, &allowed).unwrap();
            let k = rt
                .block_on(cache.key(&jwks_uri, h.kid.as_deref(), h.alg))
                .unwrap();
            let claims = verify_signature(&token, h.alg, &k.key).unwrap();
            check_claims(&claims, &want).unwrap();
            claims.len()
        };
        assert!(verify_all() > 5);
        g.bench_function(format!("{:?}/header+jwks+signature+claims", key.alg), |b| {
            b.iter(|| black_box(verify_all()))
        });
        // The signature check alone: jsonwebtoken with its aws-lc-rs backend (what the proxy uses)
        // next to ring on the same token, for reference.
        let k = rt
            .block_on(cache.key(&jwks_uri, Some(&key.kid), key.alg))
            .unwrap();
        g.bench_function(
            format!("{:?}/signature only (jsonwebtoken aws-lc-rs)", key.alg),
            |b| b.iter(|| black_box(verify_signature(&token, key.alg, &k.key).unwrap())),
        );
        let reference = tokens::RingVerifier::new(&key.jwk);
        assert!(reference.verify(&token));
        g.bench_function(
            format!("{:?}/signature only (ring, reference)", key.alg),
            |b| b.iter(|| black_box(reference.verify(&token))),
        );
        // What the fast test OP pays per login (ring, key parsed once).
        g.bench_function(format!("{:?}/sign (fast OP, ring)", key.alg), |b| {
            b.iter(|| black_box(key.sign(&claims)))
        });
    }
    g.finish();
}

fn bench_pending(c: &mut Criterion) {
    let mut g = c.benchmark_group("pending");
    let pending_store = build_pending(
        &session_config(SessionStoreKind::Memory),
        false,
        Arc::new(UseOnce::new(None)),
    );
    let fresh = || PendingLogin {
        state: PendingStore::random_token(),
        nonce: PendingStore::random_token(),
        pkce_verifier: Some(PendingStore::random_token()),
        provider: "local".to_owned(),
        return_to: "/projects/123/experiments?tab=all".to_owned(),
        created_at: NOW,
        test: false,
        generation: 1,
    };
    let no_cookies = RequestCookies::default();
    g.bench_function("issue (seal)", |b| {
        b.iter_batched(
            fresh,
            |p| black_box(pending_store.issue(&p, &no_cookies)),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("take (unseal + single-use check)", |b| {
        b.iter_batched(
            || {
                let p = fresh();
                let set = pending_store.issue(&p, &no_cookies);
                let header = browser_cookie_header(&[cookie_pair(&set[0]).to_owned()]);
                (p.state, header)
            },
            |(state, header)| {
                let cookies = RequestCookies::parse([header.as_bytes()]);
                black_box(
                    pending_store
                        .take(&state, &cookies, NOW + 3)
                        .now_or_never()
                        .expect("single-use marks without Redis never wait")
                        .unwrap(),
                )
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("issue+take (login start to callback)", |b| {
        b.iter(|| {
            let p = fresh();
            let set = pending_store.issue(&p, &no_cookies);
            let header = browser_cookie_header(&[cookie_pair(&set[0]).to_owned()]);
            let cookies = RequestCookies::parse([header.as_bytes()]);
            black_box(
                pending_store
                    .take(&p.state, &cookies, NOW + 3)
                    .now_or_never()
                    .expect("single-use marks without Redis never wait")
                    .unwrap(),
            )
        })
    });
    g.finish();
}

fn bench_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("path_normalize");
    for (name, path) in [
        (
            "plain",
            "/projects/123/experiments/4f1c2a7e9b3d4c8ea1f0/output/log",
        ),
        (
            "dots_and_escapes",
            "/projects//123/./experiments/%7Ealice/../x%2Dy/log",
        ),
        (
            "refused_encoded_slash",
            "/projects/123%2F..%2F..%2Fetc/passwd",
        ),
    ] {
        g.bench_function(name, |b| b.iter(|| black_box(normalize(black_box(path)))));
    }
    g.finish();
}

/// The whole per-request work of an authenticated forward, minus the network: strip, normalise,
/// parse cookies, load the session (memory store, 10k sessions), decide, inject identity.
fn bench_request(c: &mut Criterion) {
    let mut g = c.benchmark_group("request");
    let store: Arc<dyn SessionStore> =
        build_store(&session_config(SessionStoreKind::Memory), false).unwrap();
    let mut cookie = String::new();
    for n in 0..SESSIONS {
        let set = store
            .create(new_session(n), NOW)
            .now_or_never()
            .expect("the memory and cookie stores never wait")
            .unwrap();
        if n == SESSIONS / 2 {
            cookie = browser_cookie_header(&[cookie_pair(&set[0]).to_owned()]);
        }
    }
    let config = headers_config();
    let rules = StripRules::new(&config, &[]);
    let routes = Routes::default();
    let mut req = RequestHeader::build("GET", b"/projects/123/experiments?tab=all", None).unwrap();
    for (k, v) in browser_headers().iter() {
        req.append_header(k.clone(), v.clone()).unwrap();
    }
    req.append_header("cookie", cookie).unwrap();
    g.bench_function("authenticated_forward_total", |b| {
        b.iter_batched_ref(
            || req.clone(),
            |r| {
                strip_reserved(r, &rules);
                let path = normalize(r.uri.path()).unwrap();
                let cookies =
                    RequestCookies::parse(r.headers.get_all("cookie").iter().map(|v| v.as_bytes()));
                let loaded = store
                    .load(&cookies, NOW + 5)
                    .now_or_never()
                    .expect("the memory and cookie stores never wait");
                let view = RequestView {
                    method: &r.method,
                    path: &path,
                    headers: &r.headers,
                };
                let d = decide(view, loaded.is_some(), &routes);
                let session = loaded.unwrap().session;
                for (n, v) in upstream_identity(&session.identity, &config) {
                    r.insert_header(n, v).unwrap();
                }
                black_box(d)
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
    targets = bench_sessions, bench_decide, bench_headers, bench_id_token, bench_pending,
        bench_path, bench_request
}
criterion_main!(benches);
