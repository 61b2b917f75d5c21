//! Configuration reload while serving: SIGHUP (and `watch_config`) re-reads the config file;
//! connections added there appear on the login page and work, a broken file is refused with
//! a logged error while the running configuration keeps serving, settings that need a restart
//! are named and kept, and the HTTPS certificate is swapped without dropping connections.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::bad_op::BadOp;
use support::browser::Browser;
use support::echo::EchoUpstream;
use support::proxy::{spawn_proxy, Proxy};
use support::stack::{oidc_provider, Stack, StackOptions};
use support::util::{free_port, random_string};

const SECOND: &str = "second";

fn write_config(proxy: &Proxy, config: &Value) {
    let yaml = serde_yaml::to_string(config).unwrap();
    std::fs::write(&proxy.config_path, yaml).unwrap();
}

/// `config` plus a connection `second` at `op`.
fn with_second(config: &Value, op: &BadOp) -> Value {
    let mut config = config.clone();
    config["providers"][SECOND] =
        oidc_provider("Second OP", &op.issuer, &op.client_id, &op.client_secret);
    config
}

/// The login page: `Some(body)` for the chooser, `None` when it goes straight to the IdP.
async fn login_page(stack: &Stack) -> Option<String> {
    let page = Browser::new().navigate(&stack.url("/_sso/login")).await;
    match page.status.as_u16() {
        200 => Some(page.body),
        302 => None,
        other => panic!("login page answered {other}: {}", page.body),
    }
}

async fn assert_second_works(stack: &Stack) {
    let browser = Browser::new();
    browser
        .login(stack.base(), Some(SECOND), "unused", "unused", None)
        .await
        .expect_success();
    assert_eq!(stack.assert_logged_in(&browser).await["provider"], SECOND);
}

/// The proxy output's lines containing every one of `needles`.
fn log_lines(proxy: &Proxy, needles: &[&str]) -> Vec<String> {
    proxy
        .logs()
        .lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn sighup_adds_a_connection_from_the_edited_file() {
    let stack = Stack::start(StackOptions::bad(), |_| {}).await;
    let signed_in = stack.browser_bad().await;
    assert_eq!(
        login_page(&stack).await,
        None,
        "one connection: straight to it"
    );

    let second = BadOp::start("second-client", &random_string(32));
    let mut config = with_second(&stack.config, &second);
    // Not changeable while serving: named in a warning, the old value stays.
    let other_port = free_port();
    config["listen"] = json!(format!("127.0.0.1:{other_port}"));
    write_config(&stack.proxy, &config);
    stack.proxy.signal("HUP");
    stack.proxy.wait_for_log("configuration reloaded", 1).await;

    let chooser = login_page(&stack)
        .await
        .expect("two connections: the chooser");
    assert!(chooser.contains("Second OP"), "{chooser}");
    assert!(chooser.contains("Bad OP"), "{chooser}");
    assert_second_works(&stack).await;
    // The unchanged connection and its session carry on.
    stack.assert_logged_in(&signed_in).await;
    stack.browser_bad().await;

    let warned = log_lines(&stack.proxy, &["only after a restart", "listen"]);
    assert_eq!(warned.len(), 1, "{}", stack.proxy.logs());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", other_port)).is_err(),
        "the listener moved without a restart"
    );
}

#[tokio::test]
async fn a_reload_that_turns_signature_checks_off_warns() {
    let stack = Stack::start(StackOptions::bad(), |_| {}).await;
    assert!(log_lines(&stack.proxy, &["verify_token_signature is off"]).is_empty());
    let second = BadOp::start("second-client", &random_string(32));
    let mut config = with_second(&stack.config, &second);
    config["providers"][SECOND]["verify_token_signature"] = json!(false);
    write_config(&stack.proxy, &config);
    stack.proxy.signal("HUP");
    stack.proxy.wait_for_log("configuration reloaded", 1).await;
    let warned = log_lines(
        &stack.proxy,
        &["verify_token_signature is off", "insecure", SECOND],
    );
    assert_eq!(warned.len(), 1, "{}", stack.proxy.logs());
}

#[tokio::test]
async fn sighup_refuses_a_broken_config_and_the_old_one_keeps_serving() {
    let mut stack = Stack::start(StackOptions::bad(), |_| {}).await;
    let signed_in = stack.browser_bad().await;
    let second = BadOp::start("second-client", &random_string(32));

    // A connection that would be added, next to an unknown key and an emptied client_id.
    let mut broken = with_second(&stack.config, &second);
    broken["bogus_key"] = json!(1);
    broken["providers"]["bad"]["client_id"] = json!("");
    write_config(&stack.proxy, &broken);
    stack.proxy.signal("HUP");
    stack
        .proxy
        .wait_for_log("configuration reload refused", 1)
        .await;
    let refused = log_lines(&stack.proxy, &["configuration reload refused"]);
    assert!(refused[0].contains("bogus_key"), "{refused:?}");
    assert!(
        refused[0].contains("providers.bad.client_id"),
        "{refused:?}"
    );
    assert!(stack.proxy.is_running());
    assert_eq!(
        log_lines(&stack.proxy, &["configuration reloaded"]).len(),
        0
    );

    // Nothing changed: still one connection, logins and sessions work.
    assert_eq!(login_page(&stack).await, None, "second must not appear");
    stack.browser_bad().await;
    stack.assert_logged_in(&signed_in).await;

    // Unparsable YAML is refused the same way.
    std::fs::write(&stack.proxy.config_path, "providers: [\n").unwrap();
    stack.proxy.signal("HUP");
    stack
        .proxy
        .wait_for_log("configuration reload refused", 2)
        .await;
    stack.browser_bad().await;

    // Fixed: the next SIGHUP applies it.
    write_config(&stack.proxy, &with_second(&stack.config, &second));
    stack.proxy.signal("HUP");
    stack.proxy.wait_for_log("configuration reloaded", 1).await;
    assert_second_works(&stack).await;
}

#[tokio::test]
async fn watch_config_reloads_an_edited_file_without_a_signal() {
    let metrics_port = free_port();
    let stack = Stack::start(StackOptions::bad(), |config| {
        config["watch_config"] = json!(true);
        config["metrics"] = json!({ "listen": format!("127.0.0.1:{metrics_port}") });
    })
    .await;
    let reloads = |text: &str, result: &str| -> u64 {
        let series = format!("sso_proxy_config_reloads_total{{result=\"{result}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&series))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{series} missing:\n{text}"))
    };
    let scrape = || async {
        reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    assert_eq!(reloads(&scrape().await, "applied"), 0);

    let second = BadOp::start("second-client", &random_string(32));
    write_config(&stack.proxy, &with_second(&stack.config, &second));
    let deadline = Instant::now() + Duration::from_secs(15);
    while login_page(&stack).await.is_none() {
        assert!(Instant::now() < deadline, "the edit was not picked up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_second_works(&stack).await;
    // One reload for one edit, none while the file stays as it is.
    tokio::time::sleep(POLL_AFTER).await;
    let text = scrape().await;
    assert_eq!(reloads(&text, "applied"), 1, "{text}");
    assert_eq!(reloads(&text, "refused"), 0, "{text}");
    assert_eq!(log_lines(&stack.proxy, &["SIGHUP"]).len(), 0);

    // A broken edit is refused and counted; the running connections stay.
    std::fs::write(&stack.proxy.config_path, "providers: [\n").unwrap();
    stack
        .proxy
        .wait_for_log("configuration reload refused", 1)
        .await;
    assert_eq!(reloads(&scrape().await, "refused"), 1);
    assert!(login_page(&stack)
        .await
        .is_some_and(|p| p.contains("Second OP")));
    assert_second_works(&stack).await;
}

/// Two polls of `watch_config` and a little more.
pub const POLL_AFTER: Duration = Duration::from_millis(4_500);

/// A self-signed certificate for localhost/127.0.0.1: (certificate PEM, key PEM, DER).
fn certificate() -> (String, String, Vec<u8>) {
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    (
        cert.cert.pem(),
        cert.key_pair.serialize_pem(),
        cert.cert.der().to_vec(),
    )
}

/// The DER of the certificate a fresh TLS connection to `port` is served.
async fn served_certificate(port: u16) -> Vec<u8> {
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .tls_info(true)
        .build()
        .unwrap();
    let resp = client
        .get(format!("https://127.0.0.1:{port}/_sso/healthz"))
        .send()
        .await
        .unwrap();
    let info = resp
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .expect("TLS info");
    info.peer_certificate().expect("a certificate").to_vec()
}

/// A client that trusts only `cert_pem` and keeps its connections alive.
fn trusting(cert_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .tls_built_in_root_certs(false)
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

#[tokio::test]
async fn sighup_swaps_the_https_certificate_without_dropping_connections() {
    let dir = tempfile::tempdir().unwrap();
    let cert_file = dir.path().join("tls.crt");
    let key_file = dir.path().join("tls.key");
    let (a_pem, a_key, a_der) = certificate();
    let (b_pem, b_key, b_der) = certificate();
    std::fs::write(&cert_file, &a_pem).unwrap();
    std::fs::write(&key_file, &a_key).unwrap();
    let echo = EchoUpstream::start();
    let port = free_port();
    let yaml = format!(
        "listen: 127.0.0.1:{port}\nupstream: {}\npublic_url: https://localhost:{port}\n\
         session: {{ secret: \"{}\" }}\nstate: {{ path: \":memory:\" }}\nskip_auth: [\"^/\"]\n\
         tls: {{ cert_file: {}, key_file: {} }}\n",
        echo.url,
        random_string(40),
        cert_file.display(),
        key_file.display()
    );
    let proxy = spawn_proxy(&yaml).await;
    assert_eq!(served_certificate(port).await, a_der);
    let url = format!("https://localhost:{port}/kept");
    let old_client = trusting(&a_pem);
    assert_eq!(old_client.get(&url).send().await.unwrap().status(), 200);

    // A key that does not belong to the certificate: refused, A stays.
    std::fs::write(&cert_file, &b_pem).unwrap();
    proxy.signal("HUP");
    proxy.wait_for_log("configuration reload refused", 1).await;
    assert_eq!(served_certificate(port).await, a_der);

    std::fs::write(&key_file, &b_key).unwrap();
    proxy.signal("HUP");
    proxy.wait_for_log("configuration reloaded", 1).await;
    assert_eq!(
        served_certificate(port).await,
        b_der,
        "new handshakes get B"
    );
    let new_client = trusting(&b_pem);
    assert_eq!(new_client.get(&url).send().await.unwrap().status(), 200);
    assert!(
        trusting(&a_pem).get(&url).send().await.is_err(),
        "a fresh connection trusting only A must fail now"
    );
    // The connection opened under A is still open and still served (it could not be
    // re-established: its client trusts only A).
    assert_eq!(old_client.get(&url).send().await.unwrap().status(), 200);
    let kept = echo.requests().iter().filter(|r| r.path == "/kept").count();
    assert_eq!(kept, 3);
}
