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

use base64::Engine as _;
use serde_json::json;
use support::browser::Browser;
use support::http_server::{self, Handler, ServerThread};
use support::saml_bad_idp::{BadIdp, KeyPair};
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
        tls: None,
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

/// The SP key pair through `CLEARML__secure__…` (the key as a raw multi-line PEM, the
/// certificate as a quoted string with `\n` escapes, as HOCON would write it), the other
/// settings through `CLEARML__services__…`.
fn secure_signing_vars(idp_metadata_path: &str, sp: &KeyPair) -> Vec<(String, String)> {
    let services = "CLEARML__services__login__sso__saml_client__corp__";
    let secure = "CLEARML__secure__login__sso__saml_client__corp__";
    let quoted_cert = format!("\"{}\"", sp.cert_pem().trim_end().replace('\n', "\\n"));
    vec![
        (format!("{services}idp_metadata"), idp_metadata_path.into()),
        (format!("{services}sign_requests"), "true".into()),
        (format!("{services}display_name"), "Corp".into()),
        (format!("{secure}sp_private_key"), sp.key_pem()),
        (format!("{secure}sp_certificate"), quoted_cert),
    ]
}

fn metadata_file(idp: &BadIdp) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(idp.metadata(true).as_bytes()).unwrap();
    file
}

/// The PEM body lines of `pem` (what must never be printed).
fn pem_body_lines(pem: &str) -> Vec<String> {
    pem.lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 20)
        .map(str::to_owned)
        .collect()
}

#[test]
fn saml_sp_key_from_clearml_secure_variables_is_loaded_and_redacted() {
    let idp = BadIdp::new();
    let sp = KeyPair::generate("sp");
    let file = metadata_file(&idp);
    let vars = secure_signing_vars(&file.path().display().to_string(), &sp);
    let envs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let outcome = check_config(&format!("{BASE}session: {{secret: {SECRET}}}\n"), &envs);
    assert_eq!(outcome.code, Some(0), "{}", outcome.stderr);
    let rendered: serde_yaml::Value = serde_yaml::from_str(&outcome.stdout).unwrap();
    let p = &rendered["providers"]["corp"];
    assert_eq!(p["protocol"], "saml");
    assert_eq!(p["sign_requests"], true);
    // Not assert_eq: a failure must not print the key.
    assert!(
        p["sp_private_key"] == "<redacted>",
        "sp_private_key is not shown as <redacted>"
    );
    for line in pem_body_lines(&sp.key_pem()) {
        assert!(
            !outcome.stdout.contains(&line) && !outcome.stderr.contains(&line),
            "the private key was printed"
        );
    }
}

/// The raw `name=value` pieces of a redirect query, in order.
fn raw_query_pairs(url: &url::Url) -> Vec<(String, String)> {
    url.query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// A running proxy configured only through the variables: its AuthnRequest redirect is signed
/// (HTTP-Redirect binding: `SigAlg` + `Signature` over the raw query) with the key from the
/// secure variable, verified here with the certificate from the other one.
#[tokio::test]
async fn saml_authn_request_is_signed_with_the_key_from_clearml_secure_variables() {
    let idp = BadIdp::new();
    let sp = KeyPair::generate("sp");
    let file = metadata_file(&idp);
    let vars = secure_signing_vars(&file.path().display().to_string(), &sp);
    let echo = support::echo::EchoUpstream::start();
    let port = support::util::free_port();
    let public_url = format!("http://127.0.0.1:{port}");
    let config = json!({
        "listen": format!("127.0.0.1:{port}"),
        "upstream": echo.url,
        "public_url": public_url,
        "session": { "secret": SECRET },
    });
    let proxy =
        support::proxy::spawn_proxy_env(&serde_yaml::to_string(&config).unwrap(), true, &vars)
            .await;
    let stack = SamlStack {
        proxy,
        echo,
        config,
        public_url,
        tls: None,
    };
    let begun = stack.begin(&Browser::new(), "corp").await;
    let pairs = raw_query_pairs(&begun.location);
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name} in {}", begun.location))
    };
    let decoded = |name: &str| {
        begun
            .location
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    let sig_alg = decoded("SigAlg");
    assert_eq!(sig_alg, "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256");
    let signed = format!(
        "SAMLRequest={}&RelayState={}&SigAlg={}",
        get("SAMLRequest"),
        get("RelayState"),
        get("SigAlg")
    );
    let signature = base64::engine::general_purpose::STANDARD
        .decode(decoded("Signature"))
        .unwrap();
    let public = sp.cert.public_key().unwrap();
    let mut verifier =
        openssl::sign::Verifier::new(openssl::hash::MessageDigest::sha256(), &public).unwrap();
    verifier.update(signed.as_bytes()).unwrap();
    assert!(
        verifier.verify(&signature).unwrap(),
        "the AuthnRequest signature does not verify with the SP certificate"
    );
    // And not with another key: the check above can fail.
    let other = KeyPair::generate("other");
    let other_public = other.cert.public_key().unwrap();
    let mut verifier =
        openssl::sign::Verifier::new(openssl::hash::MessageDigest::sha256(), &other_public)
            .unwrap();
    verifier.update(signed.as_bytes()).unwrap();
    assert!(!verifier.verify(&signature).unwrap());
    let logs = stack.proxy.logs();
    for line in pem_body_lines(&sp.key_pem()) {
        assert!(!logs.contains(&line), "the private key was logged");
    }
}

/// URL metadata without a signing certificate is refused like inline metadata: the connection
/// never becomes ready (however often it is refreshed) and logins do not reach the IdP; the same
/// document with its certificate (the control) makes it ready.
#[tokio::test]
async fn saml_url_metadata_without_signing_certificate_never_becomes_ready() {
    let idp = BadIdp::new();
    let body = Arc::new(Mutex::new(Some(idp.metadata(false))));
    let server = metadata_server(body.clone());
    let mut provider = saml_provider("Corp", &format!("{}/metadata", server.url()));
    provider["idp_metadata_refresh"] = json!("1s");
    let echo = support::echo::EchoUpstream::start();
    let port = support::util::free_port();
    let public_url = format!("http://127.0.0.1:{port}");
    let config = json!({
        "listen": format!("127.0.0.1:{port}"),
        "upstream": echo.url,
        "public_url": public_url,
        "session": { "secret": SECRET },
        "providers": { "corp": provider },
    });
    let proxy =
        support::proxy::spawn_proxy_with(&serde_yaml::to_string(&config).unwrap(), false).await;
    let stack = SamlStack {
        proxy,
        echo,
        config,
        public_url,
        tls: None,
    };
    let client = Browser::new();
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(800)).await;
        let ready = client.api_get(&stack.url("/_sso/readyz")).await;
        assert_eq!(ready.status.as_u16(), 503, "{}", ready.body);
        assert!(ready.body.contains("corp"), "{}", ready.body);
        assert!(!login_location(&stack)
            .await
            .starts_with(support::saml_bad_idp::SSO_URL));
    }
    assert!(
        stack.proxy.logs().contains("no signing certificate"),
        "{}",
        stack.proxy.logs()
    );
    *body.lock().unwrap() = Some(idp.metadata(true));
    wait_for("readiness", Duration::from_secs(20), || async {
        (client
            .api_get(&stack.url("/_sso/readyz"))
            .await
            .status
            .as_u16()
            == 200)
            .then_some(())
    })
    .await;
    assert!(login_location(&stack)
        .await
        .starts_with(support::saml_bad_idp::SSO_URL));
    drop(server);
}
