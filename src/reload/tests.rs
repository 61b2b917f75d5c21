//! Which changed settings a reload reports as needing a restart.

use std::path::Path;

use super::*;

const BASE: &str = "listen: 127.0.0.1:4180
upstream: http://127.0.0.1:8080
public_url: https://app.example.com
session: { secret: 0123456789abcdef0123456789abcdef-one }
providers:
  kc:
    issuer: https://kc.example.com/realms/main
    client_id: app
    client_secret: first-secret
";

fn load(dir: &Path, yaml: &str) -> Config {
    let path = dir.join("c.yaml");
    std::fs::write(&path, yaml).unwrap();
    let sources = Sources {
        file: Some(path),
        ..Sources::default()
    };
    config::load(&sources).unwrap_or_else(|e| panic!("{:?}", e.0))
}

#[test]
fn connections_alone_need_no_restart() {
    let dir = tempfile::tempdir().unwrap();
    let old = load(dir.path(), BASE);
    assert_eq!(restart_needed(&old, &old), Vec::<String>::new());
    let edited = BASE
        .replace("first-secret", "second-secret")
        .replace("client_id: app", "client_id: app2")
        + "  other:\n    issuer: https://other.example.com\n    client_id: x\n";
    let new = load(dir.path(), &edited);
    assert_eq!(restart_needed(&old, &new), Vec::<String>::new());
    assert_ne!(old.providers, new.providers);
}

#[test]
fn other_settings_are_named_secrets_included() {
    let dir = tempfile::tempdir().unwrap();
    let old = load(dir.path(), BASE);
    let edited = BASE
        .replace("127.0.0.1:4180", "127.0.0.1:4181")
        .replace("-one }", "-two, idle_timeout: 5m }")
        + "watch_config: true\nadmin: { token: some-admin-token-value }\n";
    let new = load(dir.path(), &edited);
    assert_eq!(
        restart_needed(&old, &new),
        vec![
            "admin.token",
            "listen",
            "session.idle_timeout",
            "session.secret",
            "watch_config"
        ]
    );
}

#[test]
fn tls_files_may_change_but_turning_https_on_needs_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    // The files are parsed during validation, so they must be real PEM pairs.
    for name in ["a", "b"] {
        let pair = rcgen::generate_simple_self_signed(vec![format!("{name}.test")]).unwrap();
        std::fs::write(dir.path().join(format!("{name}.crt")), pair.cert.pem()).unwrap();
        let key = pair.key_pair.serialize_pem();
        std::fs::write(dir.path().join(format!("{name}.key")), key).unwrap();
    }
    let tls = |n: &str| {
        format!(
            "tls: {{ cert_file: {0}/{n}.crt, key_file: {0}/{n}.key }}\n",
            dir.path().display()
        )
    };
    let plain = load(dir.path(), BASE);
    let a = load(dir.path(), &(BASE.to_owned() + &tls("a")));
    let b = load(dir.path(), &(BASE.to_owned() + &tls("b")));
    assert_eq!(restart_needed(&a, &b), Vec::<String>::new());
    assert_eq!(restart_needed(&plain, &a), vec!["tls"]);
    assert_eq!(restart_needed(&a, &plain), vec!["tls"]);
}
