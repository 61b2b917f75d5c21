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
    let mut command = Command::new(env!("CARGO_BIN_EXE_sso-proxy"));
    command
        .env_clear()
        .envs(envs.iter().copied())
        .arg("--check-config");
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
