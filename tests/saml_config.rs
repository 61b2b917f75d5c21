//! SAML configuration: metadata without a signing certificate is a configuration error (exit 64
//! naming the key or variable); ClearML `saml_client` variables define connections with their
//! preset's attribute names; URL metadata makes the proxy ready only once loaded, is refreshed,
//! and a failed refresh keeps the last good copy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use support::browser::Browser;
use support::http_server::{self, Handler, ServerThread};
use support::saml_bad_idp::BadIdp;
use support::saml_stack::{saml_provider, SamlStack};
use support::util::wait_for;

const SECRET: &str = "session-secret-0123456789abcdef-0123456789";
const BASE: &str = "upstream: http://webserver:8080\npublic_url: https://app.example.com\n";

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn check_config(yaml: &str, envs: &[(&str, &str)]) -> Outcome {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(yaml.as_bytes()).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_sso-proxy"))
        .env_clear()
        .envs(envs.iter().copied())
        .arg("--check-config")
        .arg("--config")
        .arg(file.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    Outcome {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn yaml_with_provider(provider: &serde_json::Value) -> String {
    let config = json!({
        "upstream": "http://webserver:8080",
        "public_url": "https://app.example.com",
        "session": { "secret": SECRET },
        "providers": { "corp": provider },
    });
    serde_yaml::to_string(&config).unwrap()
}

#[test]
fn saml_metadata_without_signing_certificate_exits_64_naming_the_key() {
    let idp = BadIdp::new();
    let outcome = check_config(
        &yaml_with_provider(&saml_provider("Corp", &idp.metadata(false))),
        &[],
    );
    assert_eq!(outcome.code, Some(64), "{}", outcome.stderr);
    assert!(
        outcome.stderr.contains("  - providers.corp.idp_metadata: ")
            && outcome.stderr.contains("no signing certificate"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn saml_metadata_file_without_signing_certificate_from_clearml_variables_names_the_variable() {
    let idp = BadIdp::new();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(idp.metadata(false).as_bytes()).unwrap();
    let var = "CLEARML__services__login__sso__saml_client__duo__idp_metadata";
    let path = file.path().display().to_string();
    let outcome = check_config(
        &format!("{BASE}session: {{secret: {SECRET}}}\n"),
        &[(var, &path)],
    );
    assert_eq!(outcome.code, Some(64), "{}", outcome.stderr);
    assert!(
        outcome.stderr.contains(&format!("  - {var}: ")),
        "{}",
        outcome.stderr
    );
    assert!(
        outcome.stderr.contains("no signing certificate"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn saml_sign_requests_without_key_exits_64_naming_both_keys() {
    let idp = BadIdp::new();
    let mut provider = saml_provider("Corp", &idp.metadata(true));
    provider["sign_requests"] = json!(true);
    let outcome = check_config(&yaml_with_provider(&provider), &[]);
    assert_eq!(outcome.code, Some(64));
    assert!(
        outcome.stderr.contains("providers.corp.sp_private_key"),
        "{}",
        outcome.stderr
    );
    assert!(
        outcome.stderr.contains("providers.corp.sp_certificate"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn saml_clearml_variables_define_a_connection_with_preset_attribute_names() {
    let idp = BadIdp::new();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(idp.metadata(true).as_bytes()).unwrap();
    let path = file.path().display().to_string();
    let outcome = check_config(
        &format!("{BASE}session: {{secret: {SECRET}}}\n"),
        &[
            (
                "CLEARML__services__login__sso__saml_client__microsoft_ad__idp_metadata",
                &path,
            ),
            (
                "CLEARML__services__login__sso__saml_client__microsoft_ad__display_name",
                "\"Entra ID\"",
            ),
            (
                "CLEARML__services__login__sso__saml_client__microsoft_ad__groups__admins",
                "[admins]",
            ),
        ],
    );
    assert_eq!(outcome.code, Some(0), "{}", outcome.stderr);
    let rendered: serde_yaml::Value = serde_yaml::from_str(&outcome.stdout).unwrap();
    let p = &rendered["providers"]["microsoft_ad"];
    assert_eq!(p["protocol"], "saml");
    assert_eq!(p["provider"], "microsoft_ad");
    assert_eq!(p["display_name"], "Entra ID");
    assert_eq!(p["require_signed_assertions"], true);
    assert_eq!(p["claims"]["user_id"], "nameid");
    assert_eq!(
        p["claims"]["email"],
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
    );
    assert_eq!(
        p["groups"]["claim"],
        "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"
    );
}

/// Serves `body` (shared, swappable) as the metadata document; `None` answers 500.
fn metadata_server(body: Arc<Mutex<Option<String>>>) -> ServerThread {
    let handler: Handler = Arc::new(move |_req| {
        let current = body.lock().unwrap().clone();
        Box::pin(async move {
            match current {
                Some(xml) => http_server::response(200, "application/samlmetadata+xml", xml),
                None => http_server::response(500, "text/plain", "down"),
            }
        })
    });
    ServerThread::start("saml-metadata", handler)
}

async fn login_location(stack: &SamlStack) -> String {
    let page = Browser::new()
        .navigate(&stack.url("/_sso/login?provider=corp"))
        .await;
    page.header("location").unwrap_or_default().to_owned()
}

#[tokio::test]
async fn saml_url_metadata_gates_readiness_is_refreshed_and_survives_fetch_failures() {
    let idp = BadIdp::new();
    let body = Arc::new(Mutex::new(None));
    let server = metadata_server(body.clone());
    let mut provider = saml_provider("Corp", &format!("{}/metadata", server.url()));
    provider["idp_metadata_refresh"] = json!("1s");
    let echo = support::echo::EchoUpstream::start();
    let port = support::util::free_port();
    let config = json!({
        "listen": format!("127.0.0.1:{port}"),
        "upstream": echo.url,
        "public_url": format!("http://127.0.0.1:{port}"),
        "session": { "secret": SECRET },
        "providers": { "corp": provider },
    });
    let proxy =
        support::proxy::spawn_proxy_with(&serde_yaml::to_string(&config).unwrap(), false).await;
    let client = Browser::new();
    // Not ready while the metadata cannot be loaded.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let ready = client.api_get(&proxy.url("/_sso/readyz")).await;
    assert_eq!(ready.status.as_u16(), 503, "{}", ready.body);
    assert!(ready.body.contains("corp"));
    *body.lock().unwrap() = Some(idp.metadata(true));
    wait_for("readiness", Duration::from_secs(20), || async {
        (client
            .api_get(&proxy.url("/_sso/readyz"))
            .await
            .status
            .as_u16()
            == 200)
            .then_some(())
    })
    .await;
    let stack = SamlStack {
        proxy,
        echo,
        config,
        public_url: format!("http://127.0.0.1:{port}"),
    };
    assert!(login_location(&stack)
        .await
        .starts_with(support::saml_bad_idp::SSO_URL));
    // The IdP goes down: the last good copy stays in use.
    *body.lock().unwrap() = None;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let ready = client.api_get(&stack.url("/_sso/readyz")).await;
    assert_eq!(ready.status.as_u16(), 200);
    assert!(login_location(&stack)
        .await
        .starts_with(support::saml_bad_idp::SSO_URL));
    // New metadata (another SSO URL) is picked up by the refresh.
    let moved = idp.metadata(true).replace("/bad-idp/sso", "/moved/sso");
    *body.lock().unwrap() = Some(moved);
    wait_for("refreshed metadata", Duration::from_secs(20), || async {
        login_location(&stack)
            .await
            .contains("/moved/sso")
            .then_some(())
    })
    .await;
    drop(server);
}
