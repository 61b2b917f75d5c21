//! The admin pages in a real browser: headless Chromium (Debian's `/usr/bin/chromium`) driven by
//! `tests/browser/admin.mjs` (npm `playwright-core`, pinned in tests/browser/package-lock.json).
//! Alice signs in at the real OP, creates an OIDC connection through the New Connection modal,
//! runs Test Provider and sees the mapped claims, saves, toggles it off (gone from the login
//! page) and deletes it; then a SAML connection with its IdP metadata file uploaded.
//! Screenshots land in `target/admin-screenshots/`.
//!
//! This test fails, never skips, when Chromium or the npm module is missing: `scripts/test.sh`
//! installs both (`apt-get install chromium`, `npm ci --prefix tests/browser`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::path::PathBuf;
use std::process::Command;

use reqwest::Method;
use serde_json::json;
use support::admin::{AdminStack, SECOND, SECOND_CLIENT_ID};

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test]
async fn admin_manages_a_connection_in_headless_chromium() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    assert!(
        PathBuf::from(&chromium).exists(),
        "{chromium} is missing: install Debian's chromium (`apt-get install -y chromium`; scripts/test.sh does it)"
    );
    let browser_dir = manifest_dir().join("tests/browser");
    assert!(
        browser_dir.join("node_modules/playwright-core/package.json").exists(),
        "tests/browser/node_modules is missing: run `npm ci --prefix tests/browser` (scripts/test.sh does it)"
    );
    // A second configured connection keeps the login page a chooser throughout.
    let stack = AdminStack::start(|c| {
        let mut backup = c["providers"]["local"].clone();
        backup["display_name"] = json!("Backup OP");
        c["providers"]["backup"] = backup;
    })
    .await;
    let idp = support::saml_bad_idp::BadIdp::new();
    let files = tempfile::tempdir().unwrap();
    let metadata = files.path().join("idp-metadata.xml");
    std::fs::write(&metadata, idp.metadata(true)).unwrap();
    let metadata_no_cert = files.path().join("idp-metadata-no-cert.xml");
    std::fs::write(&metadata_no_cert, idp.metadata(false)).unwrap();
    let shots = manifest_dir().join("target/admin-screenshots");
    let _ = std::fs::remove_dir_all(&shots);

    let mut command = Command::new("node");
    command
        .arg(browser_dir.join("admin.mjs"))
        .env("SSO_BASE", &stack.base_url)
        .env("SSO_OP_ISSUER", &stack.op.issuer)
        .env("SSO_CLIENT_ID", SECOND_CLIENT_ID)
        .env("SSO_CLIENT_SECRET", &stack.second_secret)
        .env("SSO_SAML_METADATA", &metadata)
        .env("SSO_SAML_METADATA_NO_CERT", &metadata_no_cert)
        .env("SSO_SCREENSHOTS", &shots)
        .env("CHROMIUM", &chromium);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("run node (Node.js 20+)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success() && stdout.contains("ADMIN BROWSER TEST PASSED"),
        "the browser script failed ({}):\n{stdout}\n{stderr}\n---- proxy ----\n{}",
        output.status,
        stack.proxy().logs()
    );

    let screenshots: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("SCREENSHOT "))
        .collect();
    assert!(screenshots.len() >= 10, "screenshots: {screenshots:?}");
    for path in &screenshots {
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        assert!(size > 1000, "{path} is missing or empty");
        eprintln!("screenshot: {path}");
    }

    // What the browser did, as the API and the audit log see it.
    assert_eq!(stack.get(&format!("connections/{SECOND}")).await.0, 404);
    let (_, audit, _) = stack.call(Method::GET, "audit", None).await;
    let mut actions: Vec<(String, String)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["actor"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    actions.reverse();
    let alice = "alice@example.com".to_owned();
    assert_eq!(
        actions,
        [
            ("connection.test".to_owned(), alice.clone()),
            ("connection.create".to_owned(), alice.clone()),
            ("connection.deactivate".to_owned(), alice.clone()),
            ("connection.delete".to_owned(), alice.clone()),
            ("connection.create".to_owned(), alice.clone()),
            ("connection.delete".to_owned(), alice),
        ]
    );
    stack.assert_no_secrets("proxy logs", &stack.proxy().logs());
}
