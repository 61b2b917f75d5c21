//! Runs the real binary with `--check-config`: each class of configuration error exits 64 and
//! names its key or variable on stderr; a valid configuration prints itself with secrets redacted.

// Helpers outside `#[test]` functions panic on setup failures too; that is what a test wants.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "session-secret-0123456789abcdef-0123456789";
const VALID: &str = "upstream: http://webserver:8080\npublic_url: https://app.example.com\n";

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn yaml_file(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

/// Runs `sso-proxy --check-config [--config FILE]` with exactly `envs` (killed after 30 s).
fn run(file: Option<&tempfile::NamedTempFile>, envs: &[(&str, &str)]) -> Outcome {
    run_mode(file, envs, true)
}

/// Runs `sso-proxy [--check-config] [--config FILE]`: `check: false` is a real start-up.
fn run_mode(file: Option<&tempfile::NamedTempFile>, envs: &[(&str, &str)], check: bool) -> Outcome {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sso-proxy"));
    command.env_clear().envs(envs.iter().copied());
    if check {
        command.arg("--check-config");
    }
    if let Some(file) = file {
        command.arg("--config").arg(file.path());
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    Outcome {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn assert_invalid(outcome: &Outcome, names: &str) {
    assert_eq!(outcome.code, Some(64), "stderr:\n{}", outcome.stderr);
    assert!(
        outcome.stderr.contains("invalid configuration"),
        "stderr:\n{}",
        outcome.stderr
    );
    assert!(
        outcome.stderr.contains(&format!("  - {names}: ")),
        "stderr does not name `{names}`:\n{}",
        outcome.stderr
    );
}

#[test]
fn missing_upstream_exits_64_and_names_upstream() {
    let file = yaml_file(&format!(
        "public_url: https://app.example.com\nsession: {{secret: {SECRET}}}\n"
    ));
    assert_invalid(&run(Some(&file), &[]), "upstream");
}

#[test]
fn bad_url_exits_64_and_names_the_key() {
    let file = yaml_file(&format!(
        "upstream: ftp://webserver\npublic_url: https://app.example.com\nsession: {{secret: {SECRET}}}\n"
    ));
    assert_invalid(&run(Some(&file), &[]), "upstream");
}

#[test]
fn short_session_secret_exits_64_and_is_not_echoed() {
    let file = yaml_file(&format!("{VALID}session: {{secret: short-secret-value}}\n"));
    let outcome = run(Some(&file), &[]);
    assert_invalid(&outcome, "session.secret");
    assert!(!outcome.stderr.contains("short-secret-value"));
    assert!(!outcome.stdout.contains("short-secret-value"));
}

#[test]
fn unknown_key_exits_64_and_names_the_dotted_key() {
    let file = yaml_file(&format!(
        "{VALID}session:\n  secret: {SECRET}\n  idel_timeout: 30m\n"
    ));
    assert_invalid(&run(Some(&file), &[]), "session.idel_timeout");
}

#[test]
fn unknown_environment_variable_exits_64_and_names_it() {
    let file = yaml_file(&format!("{VALID}session: {{secret: {SECRET}}}\n"));
    let outcome = run(Some(&file), &[("SSO_PROXY__SESSION__IDEL_TIMEOUT", "30m")]);
    assert_invalid(&outcome, "SSO_PROXY__SESSION__IDEL_TIMEOUT");
}

#[test]
fn unquoted_dollar_in_a_clearml_variable_exits_64_and_names_it() {
    let var = "CLEARML__secure__login__sso__oauth_client__keycloak__client_secret";
    let file = yaml_file(&format!("{VALID}session: {{secret: {SECRET}}}\n"));
    let outcome = run(
        Some(&file),
        &[
            (var, "abc$unquoted-secret"),
            (
                "CLEARML__services__login__sso__oauth_client__keycloak__base_url",
                "https://kc.example.com/realms/clearml",
            ),
            (
                "CLEARML__secure__login__sso__oauth_client__keycloak__client_id",
                "\"clearml\"",
            ),
        ],
    );
    assert_invalid(&outcome, var);
    assert!(outcome.stderr.contains("quote values containing # or $"));
    assert!(!outcome.stderr.contains("unquoted-secret"));
}

#[test]
fn every_problem_is_listed_not_just_the_first() {
    let file = yaml_file("session:\n  idel_timeout: 30m\n");
    let outcome = run(Some(&file), &[]);
    for key in [
        "upstream",
        "public_url",
        "session.secret",
        "session.idel_timeout",
    ] {
        assert_invalid(&outcome, key);
    }
}

#[test]
fn valid_config_prints_the_effective_config_without_secrets() {
    let client_secret = "keycloak-client-secret-value";
    let admin_token = "admin-token-value-0123456789";
    let mut secret_file = tempfile::NamedTempFile::new().unwrap();
    writeln!(secret_file, "{SECRET}").unwrap();
    let file = yaml_file(&format!(
        "{VALID}session:\n  secret_file: '{}'\n  idle_timeout: 30m\nadmin:\n  token: {admin_token}\n",
        secret_file.path().display()
    ));
    let quoted_secret = format!("\"{client_secret}\"");
    let outcome = run(
        Some(&file),
        &[
            (
                "CLEARML__services__login__sso__oauth_client__keycloak__base_url",
                "https://kc.example.com/realms/clearml",
            ),
            (
                "CLEARML__secure__login__sso__oauth_client__keycloak__client_id",
                "\"clearml\"",
            ),
            (
                "CLEARML__secure__login__sso__oauth_client__keycloak__client_secret",
                &quoted_secret,
            ),
            ("SSO_PROXY__LOG__LEVEL", "debug"),
        ],
    );
    assert_eq!(outcome.code, Some(0), "stderr:\n{}", outcome.stderr);
    for expected in [
        "upstream: http://webserver:8080/",
        "idle_timeout: 30m",
        "level: debug",
        "keycloak:",
        "issuer: https://kc.example.com/realms/clearml",
        "<redacted>",
    ] {
        assert!(
            outcome.stdout.contains(expected),
            "missing `{expected}`:\n{}",
            outcome.stdout
        );
    }
    for secret in [SECRET, client_secret, admin_token] {
        assert!(
            !outcome.stdout.contains(secret),
            "{secret} leaked to stdout"
        );
        assert!(
            !outcome.stderr.contains(secret),
            "{secret} leaked to stderr"
        );
    }
}

#[test]
fn check_config_loads_the_clearml_bridge_from_sso_proxy_variables_and_redacts_its_credential() {
    let key_file = yaml_file("FILEKEY0123456789\n");
    let file = yaml_file(&format!("{VALID}session: {{secret: {SECRET}}}\n"));
    let api_secret = "clearml-secret-0123456789-abcdef";
    let key_path = key_file.path().display().to_string();
    let outcome = run(
        Some(&file),
        &[
            ("SSO_PROXY__CLEARML__ENABLED", "true"),
            ("SSO_PROXY__CLEARML__API_URL", "http://apiserver:8008"),
            ("SSO_PROXY__CLEARML__API_KEY_FILE", &key_path),
            ("SSO_PROXY__CLEARML__API_SECRET", api_secret),
            ("SSO_PROXY__CLEARML__COOKIE_NAME", "clearml-token-k8s"),
            ("SSO_PROXY__CLEARML__TOKEN_LIFETIME", "2h"),
        ],
    );
    assert_eq!(outcome.code, Some(0), "stderr:\n{}", outcome.stderr);
    for expected in [
        "enabled: true",
        "api_url: http://apiserver:8008/",
        "api_key: <redacted>",
        "api_secret: <redacted>",
        "cookie_name: clearml-token-k8s",
        "token_lifetime: 2h",
    ] {
        assert!(
            outcome.stdout.contains(expected),
            "missing `{expected}`:\n{}",
            outcome.stdout
        );
    }
    for secret in ["FILEKEY0123456789", api_secret] {
        assert!(
            !outcome.stdout.contains(secret),
            "{secret} leaked to stdout"
        );
        assert!(
            !outcome.stderr.contains(secret),
            "{secret} leaked to stderr"
        );
    }
}

#[test]
fn config_file_can_come_from_sso_proxy_config() {
    let file = yaml_file(&format!("{VALID}session: {{secret: {SECRET}}}\n"));
    let path = file.path().display().to_string();
    let outcome = run(None, &[("SSO_PROXY_CONFIG", &path)]);
    assert_eq!(outcome.code, Some(0), "stderr:\n{}", outcome.stderr);
    assert!(outcome
        .stdout
        .contains("public_url: https://app.example.com/"));
}

// ---- TLS and CA files are parsed during validation ------------------------------------------

/// A self-signed certificate and its key, as PEM files in `dir`.
fn pem_pair(dir: &std::path::Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let pair = rcgen::generate_simple_self_signed(vec![format!("{name}.test")]).unwrap();
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, pair.cert.pem()).unwrap();
    std::fs::write(&key, pair.key_pair.serialize_pem()).unwrap();
    (cert, key)
}

/// Both `--check-config` and a real start-up exit 64 naming `key`, with a free port to bind.
fn assert_file_problem(yaml: &str, key: &str) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let file = yaml_file(&format!(
        "{VALID}listen: 127.0.0.1:{port}\nsession: {{secret: {SECRET}}}\n{yaml}"
    ));
    assert_invalid(&run(Some(&file), &[]), key);
    let started = run_mode(Some(&file), &[], false);
    assert_invalid(&started, key);
}

#[test]
fn garbage_tls_certificate_exits_64_and_names_tls_cert_file() {
    let dir = tempfile::tempdir().unwrap();
    let (_, key) = pem_pair(dir.path(), "a");
    let cert = dir.path().join("garbage.crt");
    std::fs::write(&cert, "this is not a certificate\n").unwrap();
    let yaml = format!(
        "tls: {{cert_file: {}, key_file: {}}}\n",
        cert.display(),
        key.display()
    );
    assert_file_problem(&yaml, "tls.cert_file");
}

#[test]
fn tls_key_that_is_missing_or_not_the_certificates_exits_64_and_names_tls_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let (a_cert, _) = pem_pair(dir.path(), "a");
    let (_, b_key) = pem_pair(dir.path(), "b");
    let mismatched = format!(
        "tls: {{cert_file: {}, key_file: {}}}\n",
        a_cert.display(),
        b_key.display()
    );
    assert_file_problem(&mismatched, "tls.key_file");
    // A certificate where the key should be: no private key in the PEM.
    let no_key = format!("tls: {{cert_file: {0}, key_file: {0}}}\n", a_cert.display());
    assert_file_problem(&no_key, "tls.key_file");
}

#[test]
fn upstream_ca_file_without_a_certificate_exits_64_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_, key) = pem_pair(dir.path(), "a");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    for file in [&garbage, &key] {
        assert_file_problem(
            &format!("upstream_ca_file: {}\n", file.display()),
            "upstream_ca_file",
        );
    }
}

#[test]
fn valid_tls_and_ca_files_pass_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = pem_pair(dir.path(), "a");
    let file = yaml_file(&format!(
        "{VALID}session: {{secret: {SECRET}}}\nupstream_ca_file: {0}\ntls: {{cert_file: {0}, key_file: {1}}}\n",
        cert.display(),
        key.display()
    ));
    let outcome = run(Some(&file), &[]);
    assert_eq!(outcome.code, Some(0), "stderr:\n{}", outcome.stderr);
}

// ---- `<key>_file` secrets ---------------------------------------------------------------------

#[test]
fn missing_secret_files_exit_64_and_name_their_keys() {
    let missing = "/nonexistent/sso-proxy-secret";
    let file = yaml_file(&format!(
        "{VALID}session: {{secret: {SECRET}}}\nadmin: {{token_file: {missing}}}\n\
providers:\n  corp:\n    issuer: https://idp.example.com\n    client_id: app\n    client_secret_file: {missing}\n"
    ));
    let outcome = run(Some(&file), &[]);
    assert_invalid(&outcome, "admin.token_file");
    assert_invalid(&outcome, "providers.corp.client_secret_file");
}

#[test]
fn secret_files_are_read_and_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("admin-token");
    let client = dir.path().join("client-secret");
    std::fs::write(&token, "admin-token-from-a-file-0123456789\n").unwrap();
    std::fs::write(&client, "client-secret-from-a-file-0123456789\n").unwrap();
    let file = yaml_file(&format!(
        "{VALID}session: {{secret: {SECRET}}}\nadmin: {{token_file: {}}}\n\
providers:\n  corp:\n    issuer: https://idp.example.com\n    client_id: app\n    client_secret_file: {}\n",
        token.display(),
        client.display()
    ));
    let outcome = run(Some(&file), &[]);
    assert_eq!(outcome.code, Some(0), "stderr:\n{}", outcome.stderr);
    for secret in ["admin-token-from-a-file", "client-secret-from-a-file"] {
        assert!(!outcome.stdout.contains(secret), "{}", outcome.stdout);
    }
}

#[test]
fn command_line_beats_environment_beats_file() {
    let file = yaml_file(&format!(
        "{VALID}listen: 127.0.0.1:1001\nlog:\n  level: warn\n  format: json\nsession:\n  secret: {SECRET}\n"
    ));
    let envs = [
        ("SSO_PROXY__LISTEN", "127.0.0.1:1002"),
        ("SSO_PROXY__LOG__LEVEL", "debug"),
    ];
    let run_with = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_sso-proxy"))
            .env_clear()
            .envs(envs)
            .arg("--check-config")
            .arg("--config")
            .arg(file.path())
            .args(args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0));
        let printed: serde_yaml::Value = serde_yaml::from_slice(&output.stdout).unwrap();
        printed
    };
    let env_over_file = run_with(&[]);
    assert_eq!(env_over_file["listen"], "127.0.0.1:1002");
    assert_eq!(env_over_file["log"]["level"], "debug");
    assert_eq!(
        env_over_file["log"]["format"], "json",
        "the file's own value"
    );
    let cli = run_with(&[
        "--listen",
        "127.0.0.1:1003",
        "--log-level",
        "error",
        "--upstream",
        "http://other:9000",
    ]);
    assert_eq!(cli["listen"], "127.0.0.1:1003");
    assert_eq!(cli["log"]["level"], "error");
    assert_eq!(cli["upstream"], "http://other:9000/");
}
