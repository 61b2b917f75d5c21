//! Unit tests for `config::load`: layering, ClearML variables, validation and redaction.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use super::*;

const SECRET: &str = "0123456789abcdef0123456789abcdef-session";
const BASE: &str = "upstream: http://app:8080\npublic_url: https://app.example.com\nsession:\n  secret: 0123456789abcdef0123456789abcdef-session\n";

struct Fixture {
    _file: Option<tempfile::NamedTempFile>,
    sources: Sources,
}

fn fixture(yaml: Option<&str>, env: &[(&str, &str)], cli: &[(&str, &str)]) -> Fixture {
    let file = yaml.map(|text| {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    });
    let sources = Sources {
        file: file.as_ref().map(|f| f.path().to_path_buf()),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        cli: cli
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    Fixture {
        _file: file,
        sources,
    }
}

fn ok(yaml: Option<&str>, env: &[(&str, &str)]) -> Config {
    let f = fixture(yaml, env, &[]);
    match load(&f.sources) {
        Ok(config) => config,
        Err(e) => panic!("unexpected problems: {:#?}", e.0),
    }
}

fn problems(yaml: Option<&str>, env: &[(&str, &str)]) -> Vec<ConfigProblem> {
    let f = fixture(yaml, env, &[]);
    match load(&f.sources) {
        Ok(_) => panic!("expected problems"),
        Err(e) => e.0,
    }
}

fn has(problems: &[ConfigProblem], key: &str, needle: &str) -> bool {
    problems
        .iter()
        .any(|p| p.key == key && p.message.contains(needle))
}

fn provider<'a>(config: &'a Config, id: &str) -> &'a OidcProviderConfig {
    config.providers.iter().find(|p| p.id == id).unwrap()
}

#[test]
fn defaults_fill_everything_not_given() {
    let c = ok(Some(BASE), &[]);
    assert_eq!(c.listen.to_string(), "0.0.0.0:4180");
    assert_eq!(c.session.store, SessionStoreKind::Memory);
    assert_eq!(c.session.cookie_name, "sso_session");
    assert_eq!(c.session.idle_timeout, Duration::from_secs(3600));
    assert_eq!(c.session.max_lifetime, Duration::from_secs(12 * 3600));
    assert_eq!(c.session.max_entries, 1_000_000);
    assert_eq!(c.session.secret.expose().as_slice(), SECRET.as_bytes());
    assert_eq!(c.state_path, "sso-proxy.db");
    assert_eq!(c.log.format, LogFormat::Text);
    assert_eq!(c.log.level, "info");
    assert_eq!(c.headers.user.as_deref(), Some("X-Forwarded-User"));
    assert_eq!(c.headers.groups.as_deref(), Some("X-Forwarded-Groups"));
    assert!(!c.headers.pass_access_token && !c.headers.pass_authorization);
    assert!(c.providers.is_empty() && c.tls.is_none() && c.admin_token.is_none());
}

#[test]
fn env_overrides_file_and_cli_overrides_env() {
    let yaml = format!("{BASE}listen: 127.0.0.1:1000\nlog: {{level: debug}}\n");
    let env = [
        ("SSO_PROXY__LISTEN", "127.0.0.1:2000"),
        ("SSO_PROXY__session__Idle_Timeout", "30m"),
        ("SSO_PROXY__LOG__LEVEL", "warn"),
        ("SSO_PROXY_CONFIG", "/not/a/key"),
    ];
    let f = fixture(Some(&yaml), &env, &[("listen", "127.0.0.1:3000")]);
    let c = load(&f.sources).unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:3000");
    assert_eq!(c.session.idle_timeout, Duration::from_secs(1800));
    assert_eq!(c.log.level, "warn");
}

#[test]
fn every_problem_is_reported_at_once() {
    let yaml = "session:\n  idel_timeout: 30m\nclearml:\n  enabled: true\n  nope: 1\nskip_auth: ['^/ok', 'GET=^/x', '(']\nlisten: nope\n";
    let env = [
        ("SSO_PROXY__SESSION__NOPE", "1"),
        ("SSO_PROXY__LOG__LEVEL", "loud"),
    ];
    let p = problems(Some(yaml), &env);
    assert!(
        has(&p, "session.idel_timeout", "did you mean `idle_timeout`"),
        "{p:#?}"
    );
    assert!(has(&p, "clearml.nope", "unknown key"));
    assert!(has(&p, "clearml.api_url", "required"));
    assert!(has(&p, "SSO_PROXY__SESSION__NOPE", "unknown key"));
    assert!(has(&p, "skip_auth[2]", "invalid regex"));
    assert!(has(&p, "listen", "not an address"));
    assert!(has(&p, "SSO_PROXY__LOG__LEVEL", "not one of"));
    assert!(has(&p, "upstream", "required"));
    assert!(has(&p, "public_url", "required"));
    assert!(has(&p, "session.secret", "required"));
}

#[test]
fn urls_must_be_http_with_a_host() {
    let yaml = "upstream: ftp://x\npublic_url: not a url\nsession: {secret: 0123456789abcdef0123456789abcdef}\n";
    let p = problems(Some(yaml), &[]);
    assert!(has(&p, "upstream", "http:// or https://"));
    assert!(has(&p, "public_url", "not a valid URL"));
}

#[test]
fn session_secret_rules() {
    let short = "upstream: http://a\npublic_url: http://b\nsession: {secret: tooshort}\n";
    let p = problems(Some(short), &[]);
    assert!(has(&p, "session.secret", "at least 32 bytes (got 8)"));
    assert!(!format!("{p:?}").contains("tooshort"));

    let b64 = "base64:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let c = ok(
        None,
        &[
            ("SSO_PROXY__UPSTREAM", "http://a"),
            ("SSO_PROXY__PUBLIC_URL", "http://b"),
            ("SSO_PROXY__SESSION__SECRET", b64),
        ],
    );
    assert_eq!(c.session.secret.expose(), &(0u8..32).collect::<Vec<_>>());

    let mut secret_file = tempfile::NamedTempFile::new().unwrap();
    writeln!(secret_file, "{SECRET}").unwrap();
    let path = secret_file.path().display().to_string();
    let yaml =
        format!("upstream: http://a\npublic_url: http://b\nsession: {{secret_file: '{path}'}}\n");
    assert_eq!(
        ok(Some(&yaml), &[]).session.secret.expose().as_slice(),
        SECRET.as_bytes()
    );

    let both = format!("upstream: http://a\npublic_url: http://b\nsession: {{secret: {SECRET}, secret_file: '{path}'}}\n");
    assert!(has(
        &problems(Some(&both), &[]),
        "session.secret",
        "not both"
    ));

    let missing =
        "upstream: http://a\npublic_url: http://b\nsession: {secret_file: /nonexistent/secret}\n";
    assert!(has(
        &problems(Some(missing), &[]),
        "session.secret_file",
        "cannot read"
    ));
}

#[test]
fn env_secret_replaces_a_secret_file_from_the_file() {
    let yaml =
        "upstream: http://a\npublic_url: http://b\nsession: {secret_file: /nonexistent/secret}\n";
    let c = ok(Some(yaml), &[("SSO_PROXY__SESSION__SECRET", SECRET)]);
    assert_eq!(c.session.secret.expose().as_slice(), SECRET.as_bytes());
}

#[test]
fn lists_routes_proxies_and_headers() {
    let yaml = format!("{BASE}trusted_proxies: [10.0.0.0/8, 192.168.1.1]\nheaders: {{groups: false, name: '', email: X-Email}}\nallowed_redirect_hosts: [Docs.Example.com]\n");
    let env = [
        ("SSO_PROXY__SKIP_AUTH", "GET=^/public,^/health"),
        ("SSO_PROXY__API_ROUTES", "[\"^/api/\", \"^/v2/\"]"),
    ];
    let c = ok(Some(&yaml), &env);
    assert_eq!(c.skip_auth.len(), 2);
    assert_eq!(c.skip_auth[0].method, Some(http::Method::GET));
    assert_eq!(c.skip_auth[0].path.as_str(), "^/public");
    assert_eq!(c.skip_auth[1].method, None);
    assert_eq!(c.api_routes.len(), 2);
    assert_eq!(c.trusted_proxies[1].to_string(), "192.168.1.1/32");
    assert_eq!(c.headers.groups, None);
    assert_eq!(c.headers.name, None);
    assert_eq!(c.headers.email.as_deref(), Some("X-Email"));
    assert_eq!(
        c.allowed_redirect_hosts,
        vec!["docs.example.com".to_owned()]
    );
}

#[test]
fn bad_list_entries_name_their_index() {
    let yaml = format!("{BASE}trusted_proxies: [10.0.0.0/8, nope]\nskip_auth: ['']\n");
    let p = problems(Some(&yaml), &[]);
    assert!(has(&p, "trusted_proxies[1]", "not a CIDR"));
    assert!(has(&p, "skip_auth[0]", "match every path"));
}

/// The variables exactly as ClearML's Keycloak page spells them (after docker-compose
/// substitution, which keeps the quotes of `KEY="${VAR}"` list entries).
#[test]
fn clearml_keycloak_variables_from_the_docs() {
    let pre = "CLEARML__services__login__sso__oauth_client__keycloak__";
    let sec = "CLEARML__secure__login__sso__oauth_client__keycloak__";
    let vars = [
        (
            format!("{pre}base_url"),
            "https://kc.example.com/realms/clearml/",
        ),
        (
            format!("{pre}authorize_url"),
            "https://kc.example.com/realms/clearml/protocol/openid-connect/auth",
        ),
        (
            format!("{pre}access_token_url"),
            "https://kc.example.com/realms/clearml/protocol/openid-connect/token",
        ),
        (format!("{sec}client_id"), "\"clearml-webapp\""),
        (format!("{sec}client_secret"), "\"s3cr$t-value\""),
        (
            format!("{sec}default_company"),
            "\"d1bd92a3b039400cbafc60a7a5b1e52b\"",
        ),
        (format!("{pre}display_name"), "\"Keycloak\""),
        (format!("{pre}groups__enabled"), "true"),
        (format!("{pre}groups__claim"), "groups"),
        (format!("{pre}groups__admins"), "[\"clearml-admins\"]"),
        (
            format!("{pre}groups__prohibit_user_signup_if_not_in_group"),
            "true",
        ),
        (format!("{pre}idp_logout"), "true"),
        (format!("{pre}get_info_from_access_token"), "false"),
        (format!("{pre}admin_role"), ""),
    ];
    let mut env: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    env.extend([
        ("SSO_PROXY__UPSTREAM", "http://webserver:80"),
        ("SSO_PROXY__PUBLIC_URL", "https://app.example.com"),
        ("SSO_PROXY__SESSION__SECRET", SECRET),
    ]);
    let c = ok(None, &env);
    let kc = provider(&c, "keycloak");
    assert_eq!(kc.preset, Preset::Keycloak);
    assert_eq!(kc.display_name, "Keycloak");
    assert_eq!(
        kc.issuer.as_ref().unwrap().as_str(),
        "https://kc.example.com/realms/clearml"
    );
    assert_eq!(
        kc.endpoints.access_token_url.as_ref().unwrap().path(),
        "/realms/clearml/protocol/openid-connect/token"
    );
    assert_eq!(kc.client_id, "clearml-webapp");
    assert_eq!(kc.client_secret.as_ref().unwrap().expose(), "s3cr$t-value");
    assert_eq!(
        kc.default_company.as_deref(),
        Some("d1bd92a3b039400cbafc60a7a5b1e52b")
    );
    assert!(
        kc.groups.enabled
            && kc.groups.prohibit_user_signup_if_not_in_group
            && kc.groups.case_sensitive
    );
    assert_eq!(kc.groups.admins, vec!["clearml-admins".to_owned()]);
    assert!(kc.idp_logout && !kc.get_info_from_access_token);
    assert_eq!(kc.admin_role, None);
    assert_eq!(kc.code_challenge_method, PkceMethod::S256);
    assert_eq!(kc.scopes, vec!["openid", "profile", "email"]);
    assert_eq!(kc.source, format!("{sec}client_id"));
}

#[test]
fn clearml_ping_variables_from_the_docs() {
    let pre = "CLEARML__services__login__sso__oauth_client__ping__";
    let sec = "CLEARML__secure__login__sso__oauth_client__ping__";
    let vars = [
        (
            format!("{pre}authorize_url"),
            "https://auth.pingone.eu/env/as/authorize",
        ),
        (
            format!("{pre}access_token_url"),
            "https://auth.pingone.eu/env/as/token",
        ),
        (format!("{sec}client_id"), "\"ping-client\""),
        (format!("{sec}client_secret"), "\"ping-secret\""),
        (format!("{pre}code_challenge"), "true"),
        (format!("{pre}code_challenge_method"), "S256"),
        (format!("{sec}default_company"), "\"company\""),
        (format!("{pre}debug"), "true"),
        (format!("{pre}groups__enabled"), "true"),
        (format!("{pre}groups__claim"), "memberOf"),
        (format!("{pre}groups__case_sensitive"), "false"),
        (format!("{pre}groups__admins"), "[\"Ping Admins\"]"),
        (
            format!("{pre}groups__prohibit_user_signup_if_not_in_group"),
            "true",
        ),
    ];
    let mut env: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    env.extend([
        ("SSO_PROXY__UPSTREAM", "http://webserver:80"),
        ("SSO_PROXY__PUBLIC_URL", "https://app.example.com"),
        ("SSO_PROXY__SESSION__SECRET", SECRET),
    ]);
    // As written in ClearML's Ping guide: the issuer and JWKS are discovered at run time from
    // the authorize URL's parent paths.
    let c = ok(None, &env);
    let ping = provider(&c, "ping");
    assert_eq!(ping.preset, Preset::Ping);
    assert_eq!(ping.display_name, "ping");
    assert!(ping.debug && ping.groups.enabled && !ping.groups.case_sensitive);
    assert_eq!(ping.groups.claim, "memberOf");
    assert_eq!(ping.groups.admins, vec!["Ping Admins".to_owned()]);
    assert_eq!(ping.code_challenge_method, PkceMethod::S256);
    assert!(!ping.get_info_from_access_token);
    assert_eq!(ping.issuer, None);
    assert!(ping.endpoints.jwks_uri.is_none());
}

#[test]
fn explicit_endpoints_need_authorize_and_token_urls() {
    let env = [
        ("SSO_PROXY__UPSTREAM", "http://webserver:80"),
        ("SSO_PROXY__PUBLIC_URL", "https://app.example.com"),
        ("SSO_PROXY__SESSION__SECRET", SECRET),
        (
            "CLEARML__services__login__sso__oauth_client__ping__authorize_url",
            "https://p/as/authorize",
        ),
        (
            "CLEARML__secure__login__sso__oauth_client__ping__client_id",
            "c",
        ),
    ];
    let p = problems(None, &env);
    assert!(
        has(&p, "providers.ping.issuer", "missing access_token_url"),
        "{p:#?}"
    );
}

#[test]
fn clearml_value_errors_name_the_variable_and_hide_the_value() {
    let var = "CLEARML__secure__login__sso__oauth_client__kc__client_secret";
    let saml = "CLEARML__services__login__sso__saml_client__duo__entity_id";
    let p = problems(Some(BASE), &[(var, "abc$hidden"), (saml, "x")]);
    assert!(has(&p, var, "quote values containing # or $"), "{p:#?}");
    assert!(has(&p, "providers.duo.idp_metadata", "required"), "{p:#?}");
    assert!(has(
        &p,
        "providers.duo.idp_metadata",
        "saml_client__duo__idp_metadata"
    ));
    assert!(!format!("{p:?}").contains("hidden"));
}

#[test]
fn clearml_wins_over_trains_and_env_wins_over_file() {
    let yaml = format!("{BASE}providers:\n  okta:\n    issuer: https://file.okta.com\n    client_id: from-file\n    display_name: Okta\n");
    let env = [
        (
            "TRAINS__secure__login__sso__oauth_client__okta__client_id",
            "trains",
        ),
        (
            "CLEARML__secure__login__sso__oauth_client__okta__client_id",
            "clearml",
        ),
        (
            "TRAINS__services__login__sso__oauth_client__okta__display_name",
            "Trains Okta",
        ),
    ];
    let c = ok(Some(&yaml), &env);
    let okta = provider(&c, "okta");
    assert_eq!(okta.client_id, "clearml");
    assert_eq!(okta.display_name, "Trains Okta");
    assert_eq!(
        okta.issuer.as_ref().unwrap().as_str(),
        "https://file.okta.com/"
    );
    assert_eq!(okta.source, "file");
}

#[test]
fn provider_defaults_and_normalisation() {
    let yaml = format!("{BASE}providers:\n  corp:\n    issuer: https://idp.example.com\n    client_id: c\n    scopes: email groups\n    additional_scopes: [offline_access, email]\n    code_challenge: false\n  google:\n    client_id: g\n    hosted_domain: example.com\n    id_token_signing_algs: [rs256, EdDSA]\n  cognito:\n    issuer: https://cognito-idp.eu-west-1.amazonaws.com/pool\n    client_id: x\n    code_challenge_method: plain\n");
    let c = ok(Some(&yaml), &[]);
    let corp = provider(&c, "corp");
    assert_eq!(corp.preset, Preset::Custom);
    assert_eq!(
        corp.scopes,
        vec!["openid", "email", "groups", "offline_access"]
    );
    assert_eq!(corp.code_challenge_method, PkceMethod::None);
    assert_eq!(corp.claims.user_id, "sub");
    assert_eq!(corp.clock_skew, Duration::from_secs(60));
    assert_eq!(
        corp.allowed_algs,
        vec![
            jsonwebtoken::Algorithm::RS256,
            jsonwebtoken::Algorithm::PS256,
            jsonwebtoken::Algorithm::ES256
        ]
    );
    let google = provider(&c, "google");
    assert_eq!(
        google.issuer.as_ref().unwrap().as_str(),
        "https://accounts.google.com/"
    );
    assert_eq!(google.hosted_domain, vec!["example.com".to_owned()]);
    assert_eq!(
        google.allowed_algs,
        vec![
            jsonwebtoken::Algorithm::RS256,
            jsonwebtoken::Algorithm::EdDSA
        ]
    );
    let cognito = provider(&c, "cognito");
    assert_eq!(cognito.groups.claim, "cognito:groups");
    assert_eq!(cognito.code_challenge_method, PkceMethod::Plain);
    assert_eq!(
        c.providers
            .iter()
            .map(|p| p.id.as_str())
            .collect::<Vec<_>>(),
        vec!["cognito", "corp", "google"]
    );
}

#[test]
fn provider_errors_are_all_reported() {
    let yaml = format!("{BASE}providers:\n  Bad:\n    client_id: x\n  a:\n    issuer: https://a\n    client_id: a\n    display_name: Same\n    id_token_signing_algs: [none, HS256]\n    claims: {{mail: email}}\n  b:\n    provider: nope\n    issuer: https://b\n    display_name: same\n  k:\n    provider: keycloak\n    client_id: k\n  s:\n    protocol: saml\n    entity_id: x\n");
    let p = problems(Some(&yaml), &[("SSO_PROXY__PROVIDERS__C__CLIENT_ID", "c")]);
    assert!(has(&p, "providers.Bad", "invalid connection id"), "{p:#?}");
    assert!(has(
        &p,
        "providers.a.id_token_signing_algs",
        "`none` is never accepted"
    ));
    assert!(has(&p, "providers.a.id_token_signing_algs", "HMAC"));
    assert!(has(&p, "providers.a.claims.mail", "unknown key"));
    assert!(has(&p, "providers.b.provider", "not one of"));
    assert!(has(&p, "providers.b.client_id", "required"));
    assert!(has(&p, "providers.b.display_name", "unique"));
    assert!(has(&p, "providers.k.base_url", "Keycloak needs base_url"));
    assert!(has(&p, "providers.s.idp_metadata", "required"));
    assert!(has(
        &p,
        "providers.c.issuer",
        "SSO_PROXY__PROVIDERS__C__ISSUER"
    ));
}

#[test]
fn render_redacted_hides_every_secret() {
    let yaml = format!("{BASE}admin: {{token: admin-token-value}}\nproviders:\n  okta:\n    issuer: https://x.okta.com\n    client_id: cid\n    client_secret: client-secret-value\n");
    let c = ok(Some(&yaml), &[]);
    let text = render_redacted(&c);
    for secret in [SECRET, "admin-token-value", "client-secret-value"] {
        assert!(!text.contains(secret), "{secret} leaked:\n{text}");
    }
    assert!(text.contains("<redacted>"));
    assert!(text.contains("upstream: http://app:8080/"));
    assert!(text.contains("idle_timeout: 1h"));
    assert!(text.contains("client_id: cid"));
    assert!(!format!("{c:?}").contains("client-secret-value"));
}

const CLEARML: &str = "clearml:\n  enabled: true\n  api_url: http://apiserver:8008\n  api_key: KEY\n  api_secret: SECRET\n";

#[test]
fn clearml_cookie_domain_must_cover_the_public_host() {
    let c = ok(Some(&format!("{BASE}{CLEARML}")), &[]);
    assert_eq!(
        c.clearml.unwrap().cookie_domain,
        None,
        "host-only by default"
    );
    for (domain, want) in [
        ("example.com", "example.com"),
        (".Example.com", "example.com"),
        ("app.example.com", "app.example.com"),
    ] {
        let yaml = format!("{BASE}{CLEARML}  cookie_domain: '{domain}'\n");
        let c = ok(Some(&yaml), &[]);
        assert_eq!(c.clearml.unwrap().cookie_domain.as_deref(), Some(want));
    }
    for (domain, needle) in [
        ("other.com", "does not cover"),
        ("pp.example.com", "does not cover"),
        ("x.app.example.com", "does not cover"),
        ("exa mple.com", "not a domain name"),
        ("example..com", "not a domain name"),
    ] {
        let yaml = format!("{BASE}{CLEARML}  cookie_domain: '{domain}'\n");
        let p = problems(Some(&yaml), &[]);
        assert!(has(&p, "clearml.cookie_domain", needle), "{domain}: {p:#?}");
    }
}

#[test]
fn clearml_settings_load_from_sso_proxy_variables() {
    let c = ok(
        Some(BASE),
        &[
            ("SSO_PROXY__CLEARML__ENABLED", "true"),
            ("SSO_PROXY__CLEARML__API_URL", "http://apiserver:8008"),
            ("SSO_PROXY__CLEARML__API_KEY", "ENVKEY123"),
            ("SSO_PROXY__CLEARML__API_SECRET", "env-secret-value"),
            ("SSO_PROXY__CLEARML__COOKIE_NAME", "clearml-token-k8s"),
            ("SSO_PROXY__CLEARML__COOKIE_DOMAIN", "example.com"),
            ("SSO_PROXY__CLEARML__TOKEN_LIFETIME", "2h"),
            ("SSO_PROXY__CLEARML__COMPANY", "c0ffee"),
        ],
    );
    let cm = c.clearml.expect("bridge on");
    assert_eq!(cm.api_url.as_str(), "http://apiserver:8008/");
    assert_eq!(cm.api_key.expose(), "ENVKEY123");
    assert_eq!(cm.api_secret.expose(), "env-secret-value");
    assert_eq!(cm.cookie_name, "clearml-token-k8s");
    assert_eq!(cm.cookie_domain.as_deref(), Some("example.com"));
    assert_eq!(cm.token_lifetime, Duration::from_secs(7200));
    assert_eq!(cm.company.as_deref(), Some("c0ffee"));
    // The environment wins over the file.
    let yaml = format!("{BASE}{CLEARML}");
    let c = ok(Some(&yaml), &[("SSO_PROXY__CLEARML__API_KEY", "FROMENV")]);
    assert_eq!(c.clearml.unwrap().api_key.expose(), "FROMENV");
}

#[test]
fn clearml_credential_can_come_from_files() {
    let mut key = tempfile::NamedTempFile::new().unwrap();
    key.write_all(b"FILEKEY\n").unwrap();
    let mut secret = tempfile::NamedTempFile::new().unwrap();
    secret.write_all(b"file-secret-value\n").unwrap();
    let yaml = format!(
        "{BASE}clearml:\n  enabled: true\n  api_url: http://apiserver:8008\n  api_key_file: '{}'\n  api_secret_file: '{}'\n",
        key.path().display(),
        secret.path().display()
    );
    let cm = ok(Some(&yaml), &[]).clearml.unwrap();
    assert_eq!(cm.api_key.expose(), "FILEKEY");
    assert_eq!(cm.api_secret.expose(), "file-secret-value");
    let missing = format!(
        "{BASE}clearml:\n  enabled: true\n  api_url: http://apiserver:8008\n  api_key: K\n  api_secret_file: /nonexistent/clearml-secret\n"
    );
    let p = problems(Some(&missing), &[]);
    assert!(
        p.iter().any(|p| p.key.starts_with("clearml.api_secret")),
        "{p:#?}"
    );
}

#[test]
fn render_redacted_hides_the_clearml_credential() {
    let yaml = format!("{BASE}clearml:\n  enabled: true\n  api_url: http://apiserver:8008\n  api_key: CLEARMLKEYVALUE\n  api_secret: clearml-secret-value\n");
    let c = ok(Some(&yaml), &[]);
    let text = render_redacted(&c);
    for secret in ["CLEARMLKEYVALUE", "clearml-secret-value"] {
        assert!(!text.contains(secret), "{secret} leaked:\n{text}");
        assert!(!format!("{c:?}").contains(secret), "{secret} in Debug");
    }
    assert!(text.contains("api_url: http://apiserver:8008/"), "{text}");
    assert!(text.contains("api_key: <redacted>"), "{text}");
    assert!(text.contains("api_secret: <redacted>"), "{text}");
}

/// Every schema key must deserialize into the raw structs, and every raw field must be in the schema.
#[test]
fn schema_and_raw_structs_agree() {
    use serde_yaml::{Mapping, Value};
    fn sample(fields: &[(&str, file::Kind)]) -> Value {
        let mut m = Mapping::new();
        for (name, kind) in fields {
            let v = match kind {
                file::Kind::Str | file::Kind::Header => Value::from("x"),
                file::Kind::Bool => Value::from(true),
                file::Kind::Int => Value::from(1u64),
                file::Kind::List => Value::from(vec!["x"]),
                file::Kind::Map(inner) => sample(inner),
                file::Kind::Providers => {
                    let mut p = Mapping::new();
                    p.insert(Value::from("id"), sample(file::PROVIDER));
                    Value::Mapping(p)
                }
            };
            m.insert(Value::from(*name), v);
        }
        Value::Mapping(m)
    }
    let full = sample(file::ROOT);
    let raw: file::RawConfig = serde_yaml::from_value(full.clone()).unwrap();
    assert_eq!(serde_yaml::to_value(&raw).unwrap(), full);
}

#[test]
fn small_sanity_rules() {
    let yaml = format!("{BASE}metrics: {{listen: 0.0.0.0:4180}}\nstate: {{path: ''}}\n");
    let p = problems(Some(&yaml), &[("SSO_PROXY__SESSION__IDLE_TIMEOUT", "0s")]);
    assert!(has(&p, "metrics.listen", "differ from listen"));
    assert!(has(&p, "state.path", "must not be empty"));
    assert!(has(
        &p,
        "SSO_PROXY__SESSION__IDLE_TIMEOUT",
        "longer than zero"
    ));
    let c = ok(
        Some(BASE),
        &[
            ("SSO_PROXY__SESSION__MAX_LIFETIME", "7d"),
            ("SSO_PROXY__SESSION__IDLE_TIMEOUT", "90"),
        ],
    );
    assert_eq!(c.session.max_lifetime, Duration::from_secs(7 * 86400));
    assert_eq!(c.session.idle_timeout, Duration::from_secs(90));
}

#[test]
fn threads_default_to_the_cpus_and_are_bounded() {
    let base = format!("upstream: http://app:80\npublic_url: https://app.example.com\nsession:\n  secret: {SECRET}\n");
    let c = ok(Some(&base), &[]);
    assert!(c.threads >= 1);
    let one = ok(Some(&format!("{base}threads: 1\n")), &[]);
    assert_eq!(one.threads, 1);
    let p = problems(Some(&format!("{base}threads: 0\n")), &[]);
    assert!(has(&p, "threads", "between 1 and 1024"), "{p:#?}");
    let env = ok(Some(&base), &[("SSO_PROXY__THREADS", "3")]);
    assert_eq!(env.threads, 3);
}

#[test]
fn session_store_redis_urls() {
    let base = "upstream: http://a\npublic_url: http://b\n";
    let secret = "secret: 0123456789abcdef0123456789abcdef";
    let with = |store: &str, extra: &str| {
        format!("{base}session: {{{secret}, store: \"{store}\"{extra}}}\n")
    };
    let c = ok(
        Some(&with(
            "redis://:hunter2-pw@cache:6380/3",
            ", local_cache_ttl: 2s",
        )),
        &[],
    );
    assert_eq!(c.session.store, SessionStoreKind::Redis);
    let redis = c.session.redis.as_ref().unwrap();
    assert_eq!(redis.url.expose(), "redis://:hunter2-pw@cache:6380/3");
    assert_eq!(redis.local_cache_ttl, std::time::Duration::from_secs(2));
    assert!(!redis.display.contains("hunter2"), "{}", redis.display);
    let rendered = render_redacted(&c);
    assert!(
        !rendered.contains("hunter2") && rendered.contains("cache:6380/3"),
        "{rendered}"
    );
    assert!(!format!("{c:?}").contains("hunter2"));

    let tls = ok(Some(&with("rediss://cache", "")), &[]);
    assert_eq!(
        tls.session
            .redis
            .as_ref()
            .unwrap()
            .local_cache_ttl
            .as_secs(),
        10
    );

    for (store, needle) in [
        ("redis://cache/not-a-db", "database number"),
        ("redis://", "no host"),
        ("memcached://:hunter2-pw@cache", "not one of"),
    ] {
        let p = problems(Some(&with(store, "")), &[]);
        assert!(has(&p, "session.store", needle), "{store}: {p:?}");
        assert!(!format!("{p:?}").contains("hunter2"), "{p:?}");
    }
    let sentinel = ok(
        Some(&with(
            "redis+sentinel://:hunter2-pw@s1:26379,s2/mymaster/1",
            "",
        )),
        &[],
    );
    assert_eq!(sentinel.session.store, SessionStoreKind::Redis);
    let shown = &sentinel.session.redis.as_ref().unwrap().display;
    assert!(
        !shown.contains("hunter2") && shown.contains("s1:26379,s2/mymaster/1"),
        "{shown}"
    );
    let cluster = ok(
        Some(&with("redis+cluster://:hunter2-pw@n1:7000,n2:7001", "")),
        &[],
    );
    let shown = &cluster.session.redis.as_ref().unwrap().display;
    assert!(
        !shown.contains("hunter2") && shown.contains("n1:7000,n2:7001"),
        "{shown}"
    );
    for (bad, needle) in [
        ("redis+cluster://n1", "host:port"),
        ("redis+cluster://n1:7000/3", "database 0"),
    ] {
        let p = problems(Some(&with(bad, "")), &[]);
        assert!(has(&p, "session.store", needle), "{bad}: {p:?}");
    }
    let p = problems(Some(&with("redis+sentinel://:hunter2-pw@s1", "")), &[]);
    assert!(has(&p, "session.store", "monitored master"), "{p:?}");
    assert!(!format!("{p:?}").contains("hunter2"), "{p:?}");
    let p = problems(Some(&with("redis://cache", ", local_cache_ttl: 0s")), &[]);
    assert!(
        has(&p, "session.local_cache_ttl", "longer than zero"),
        "{p:?}"
    );
}

#[test]
fn pass_authorization_and_the_clearml_bridge_exclude_each_other() {
    let yaml = "headers:\n  pass_authorization: true\nclearml:\n  enabled: true\n  api_url: http://apiserver:8008\n  api_key: k\n  api_secret: s\n";
    let p = problems(Some(yaml), &[]);
    assert!(
        has(&p, "headers.pass_authorization", "clearml.enabled"),
        "{p:?}"
    );
    let without_bridge = format!("{BASE}headers:\n  pass_authorization: true\n");
    assert!(ok(Some(&without_bridge), &[]).headers.pass_authorization);
}
