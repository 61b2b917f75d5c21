//! Resident memory per memory-store session: creates N sessions through the store API (as the
//! callback does) and divides the growth of this process's RSS (/proc/self/statm) by N.
//!
//! Variants, matching what the callback keeps (src/endpoints/callback.rs):
//! - `default`: identity only (no `idp_logout`, `pass_authorization` or `pass_access_token`);
//! - `id_token`: plus the ID token (`idp_logout` or `headers.pass_authorization`);
//! - `tokens`: plus the ID token and a JWT access token (`headers.pass_access_token` as well).
//!
//! Each variant runs in a fresh child process so freed memory of one never hides the next.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::FutureExt as _;
use serde_json::json;
use sso_proxy::config::{Secret, SessionConfig, SessionStoreKind};
use sso_proxy::session::{MemoryStore, Session, SessionStore, StoredToken};

use super::tokens;
use super::Args;

const VARIANTS: [&str; 3] = ["default", "id_token", "tokens"];

fn rss_bytes() -> u64 {
    super::login::rss_bytes(std::process::id())
}

pub fn main(args: &Args) -> Result<(), String> {
    let sessions: u64 = args.num("sessions", 100_000)?;
    let variant = args.get("variant").unwrap_or("all");
    if variant == "all" {
        // One child per variant, each printing one JSON line.
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        for v in VARIANTS {
            let out = std::process::Command::new(&exe)
                .args([
                    "memory",
                    "--sessions",
                    &sessions.to_string(),
                    "--variant",
                    v,
                ])
                .output()
                .map_err(|e| e.to_string())?;
            if !out.status.success() {
                return Err(String::from_utf8_lossy(&out.stderr).into_owned());
            }
            print!("{}", String::from_utf8_lossy(&out.stdout));
        }
        return Ok(());
    }
    if !VARIANTS.contains(&variant) {
        return Err(format!(
            "--variant {variant}: use one of {VARIANTS:?} or all"
        ));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // Token sizes as real IdPs issue them: an RS256 ID token with profile, email and groups
    // claims, and a Keycloak-style JWT access token (realm and client roles, scope).
    let key = tokens::SigningKey::rs256("k1");
    let id_token = key.sign(&tokens::id_token_claims(
        "https://idp.example.com/realms/main",
        "clearml",
        "4f1c2a7e-9b3d-4c8e-a1f0-000000000001",
        "x5Ju4sVFyEXxRsxxDwJv1AZ6bQ8dVx2hY5rNq3mKoTw",
        now,
    ));
    let mut at_claims = tokens::id_token_claims(
        "https://idp.example.com/realms/main",
        "account",
        "4f1c2a7e-9b3d-4c8e-a1f0-000000000001",
        "",
        now,
    );
    at_claims["typ"] = json!("Bearer");
    at_claims["azp"] = json!("clearml");
    at_claims["scope"] = json!("openid email profile");
    at_claims["jti"] = json!("2c2f7a52-8f33-4c5d-9a6f-5f1c9c0e1b7d");
    at_claims["session_state"] = json!("0b5c9ba8-1e2f-4c4a-8d3e-7c2a1b0f9e8d");
    at_claims["realm_access"] =
        json!({"roles": ["offline_access", "uma_authorization", "default-roles-main"]});
    at_claims["resource_access"] =
        json!({"account": {"roles": ["manage-account", "manage-account-links", "view-profile"]}});
    let access_token = key.sign(&at_claims);

    let config = SessionConfig {
        store: SessionStoreKind::Memory,
        secret: Secret::new(b"benchmark-session-secret-0123456789abcdef".to_vec()),
        cookie_name: "sso_session".to_owned(),
        idle_timeout: Duration::from_secs(3600),
        max_lifetime: Duration::from_secs(12 * 3600),
        max_entries: 1_000_000,
        redis: None,
    };
    let store = MemoryStore::new(&config, false);
    // Warm up allocator and cache structures outside the measurement.
    for n in 0..1000 {
        let _ = store
            .create(make(n, variant, &id_token, &access_token, now), now)
            .now_or_never()
            .expect("the memory store never waits");
    }
    store.run_pending_tasks();
    let before = rss_bytes();
    let mut cookie_bytes = 0usize;
    for n in 1000..1000 + sessions {
        let set = store
            .create(make(n, variant, &id_token, &access_token, now), now)
            .now_or_never()
            .expect("the memory store never waits")
            .map_err(|e| e.to_string())?;
        cookie_bytes += set.iter().map(String::len).sum::<usize>();
        drop(set);
    }
    store.run_pending_tasks();
    let after = rss_bytes();
    let per = (after as f64 - before as f64) / sessions as f64;
    let out = json!({
        "variant": variant,
        "sessions": sessions,
        "entries": store.entry_count(),
        "rss_before": before,
        "rss_after": after,
        "bytes_per_session": per,
        "id_token_len": if variant == "default" { 0 } else { id_token.len() },
        "access_token_len": if variant == "tokens" { access_token.len() } else { 0 },
        "set_cookie_len": cookie_bytes / sessions.max(1) as usize,
    });
    println!("{out}");
    Ok(())
}

fn make(n: u64, variant: &str, id_token: &str, access_token: &str, now: u64) -> Session {
    let mut s = Session::new(tokens::identity(n), now, Duration::from_secs(12 * 3600));
    if variant != "default" {
        s.id_token = Some(StoredToken::new(id_token.to_owned()));
    }
    if variant == "tokens" {
        s.access_token = Some(StoredToken::new(access_token.to_owned()));
    }
    s
}
