//! A SAML login in a real browser whose ACS POST is cross-site (DESIGN section 6): headless
//! Chromium (Debian's `/usr/bin/chromium`) driven by `tests/browser/saml_cross_site.mjs` (npm
//! `playwright-core`). The proxy serves https://127.0.0.1:<port> (test certificate) and
//! SimpleSAMLphp http://localhost:<port>, two different sites, so the IdP's auto-submitted
//! `SAMLResponse` form reaches `/callback_<id>` as a cross-site POST. The pending cookie is
//! `SameSite=None; Secure`, so it still arrives and alice reaches the upstream. The control
//! stores that cookie as `SameSite=Lax` in the browser before the login: the ACS POST then
//! arrives without it and the proxy refuses the login.
//!
//! This test fails, never skips, when Chromium, the npm module or SimpleSAMLphp is missing:
//! `scripts/test.sh` installs them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};
use support::saml_idp::{SimpleSamlIdp, SpEntry};
use support::saml_stack::{saml_provider, SamlStack};
use support::util::free_port;

fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

fn chromium() -> String {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    assert!(
        PathBuf::from(&chromium).exists(),
        "{chromium} is missing: install Debian's chromium (`apt-get install -y chromium`; scripts/test.sh does it)"
    );
    assert!(
        browser_dir()
            .join("node_modules/playwright-core/package.json")
            .exists(),
        "tests/browser/node_modules is missing: run `npm ci --prefix tests/browser` (scripts/test.sh does it)"
    );
    chromium
}

/// Runs the script in `mode` (`normal` or `lax`) against the proxy; its `RESULT` JSON.
async fn run_browser(stack: &SamlStack, mode: &str) -> Value {
    let mut command = Command::new("node");
    command
        .arg(browser_dir().join("saml_cross_site.mjs"))
        .env("SSO_BASE", stack.url(""))
        .env("SSO_MODE", mode)
        .env("SSO_USER", "alice")
        .env("SSO_PASSWORD", "alice-pw")
        .env("CHROMIUM", chromium());
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("run node (Node.js 20+)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let result = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .filter(|_| output.status.success());
    let Some(result) = result else {
        panic!(
            "the browser script ({mode}) failed ({}):\n{stdout}\n{stderr}\n---- proxy ----\n{}",
            output.status,
            stack.proxy.logs()
        );
    };
    println!("{mode}: {result}");
    serde_json::from_str(result).expect("RESULT is JSON")
}

/// The proxy's cookies whose name contains `part`, from one of the result's cookie lists.
fn stored<'a>(cookies: &'a Value, part: &str) -> Vec<&'a Value> {
    cookies
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"].as_str().unwrap().contains(part))
        .collect()
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saml_cross_site_acs_post_carries_the_same_site_none_pending_cookie_in_chromium() {
    let port = free_port();
    let public = format!("https://127.0.0.1:{port}");
    let sp = SpEntry {
        entity_id: format!("{public}/_sso/saml/ssp/metadata"),
        acs: format!("{public}/callback_ssp"),
        ..SpEntry::default()
    };
    let idp = SimpleSamlIdp::start_at(&sp, "localhost").await;
    assert!(idp.metadata_url.starts_with("http://localhost:"));
    let stack = SamlStack::start_https(
        port,
        json!({ "ssp": saml_provider("SSP", &idp.metadata_url) }),
        |_| {},
    )
    .await;
    assert_eq!(stack.url(""), public);

    // The login as the proxy sets it up: the pending cookie is SameSite=None; Secure, and the
    // cross-site ACS POST carries it.
    let ok = run_browser(&stack, "normal").await;
    assert_eq!(ok["loginPageOrigin"], json!(idp.base), "{ok}");
    let pending = stored(&ok["storedBeforeAcs"], "_st_");
    assert_eq!(pending.len(), 1, "{ok}");
    assert_eq!(pending[0]["sameSite"], json!("None"), "{ok}");
    assert_eq!(pending[0]["secure"], json!(true), "{ok}");
    assert_eq!(ok["acsSecFetchSite"], json!("cross-site"), "{ok}");
    let pending_name = pending[0]["name"].as_str().unwrap();
    assert!(names(&ok["acsCookieNames"]).contains(&pending_name), "{ok}");
    assert_eq!(ok["acsStatus"], json!(303), "{ok}");
    let final_url = url::Url::parse(ok["finalUrl"].as_str().unwrap()).unwrap();
    assert_eq!(final_url.origin().ascii_serialization(), public, "{ok}");
    assert_eq!(final_url.path(), "/app", "{ok}");
    assert_eq!(ok["upstreamUser"], json!("alice"), "{ok}");
    let seen = stack.echo.last_to("/app").expect("the upstream saw /app");
    assert_eq!(seen.header("x-forwarded-user"), Some("alice"));
    assert_eq!(seen.header("x-forwarded-email"), Some("alice@example.com"));

    // The control: the same login with the pending cookie stored as SameSite=Lax. The
    // cross-site POST goes without it, and the proxy refuses: no session, no upstream request.
    let upstream_before = stack.echo.request_count();
    let lax = run_browser(&stack, "lax").await;
    let pending = stored(&lax["storedBeforeAcs"], "_st_");
    assert_eq!(pending.len(), 1, "{lax}");
    assert_eq!(pending[0]["sameSite"], json!("Lax"), "{lax}");
    assert_eq!(lax["acsSecFetchSite"], json!("cross-site"), "{lax}");
    assert!(
        !names(&lax["acsCookieNames"])
            .iter()
            .any(|n| n.contains("_st_")),
        "{lax}"
    );
    assert_eq!(lax["acsStatus"], json!(400), "{lax}");
    let refusal = lax["refusal"].as_str().unwrap();
    assert!(refusal.contains("no login in progress"), "{lax}");
    assert_eq!(lax["upstreamUser"], Value::Null, "{lax}");
    // No session cookie: only the (unused) pending cookie is left.
    let left = stored(&lax["sessionCookies"], "sso_session");
    assert!(
        left.iter()
            .all(|c| c["name"] != json!("__Host-sso_session")),
        "{lax}"
    );
    assert_eq!(stack.echo.request_count(), upstream_before);
    assert!(stack.proxy.logs().contains("no login in progress"));
}
