//! The raw configuration: reading the YAML file, the key schema every layer is checked against,
//! normalisation of loosely typed values (unknown keys, text from the environment), and the raw
//! `Option` structs the merged tree deserializes into.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_yaml::{Mapping, Value};

use super::env::Tree;
use super::validate::Ctx;
use super::{provider, ConfigProblem};

/// Reads the YAML file into its top-level mapping (an empty file is an empty mapping).
pub(crate) fn read(path: &Path) -> Result<Mapping, ConfigProblem> {
    let problem = |message: String| ConfigProblem {
        key: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| problem(format!("cannot read the configuration file: {e}")))?;
    let mut value: Value =
        serde_yaml::from_str(&text).map_err(|e| problem(format!("invalid YAML: {e}")))?;
    value
        .apply_merge()
        .map_err(|e| problem(format!("invalid YAML merge key: {e}")))?;
    match value {
        Value::Null => Ok(Mapping::new()),
        Value::Mapping(map) => Ok(map),
        _ => Err(problem(
            "the top level must be a mapping of keys".to_owned(),
        )),
    }
}

/// What a key holds; drives unknown-key detection and the coercion of text values.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Str,
    Bool,
    Int,
    /// A YAML list, a comma-separated string, or a `[a, b]` flow list in a string.
    List,
    /// A header name; `false` or an empty string disables it.
    Header,
    Map(&'static [(&'static str, Kind)]),
    /// `providers.<id>` → [`PROVIDER`].
    Providers,
}

use Kind::{Bool, Header, Int, List, Map, Str};

pub(crate) const ROOT: &[(&str, Kind)] = &[
    ("listen", Str),
    ("threads", Int),
    ("upstream", Str),
    ("upstream_ca_file", Str),
    ("public_url", Str),
    ("tls", Map(&[("cert_file", Str), ("key_file", Str)])),
    ("session", Map(SESSION)),
    ("state", Map(&[("path", Str)])),
    ("skip_auth", List),
    ("api_routes", List),
    ("allowed_redirect_hosts", List),
    ("trusted_proxies", List),
    ("headers", Map(HEADERS)),
    ("log", Map(&[("format", Str), ("level", Str)])),
    ("metrics", Map(&[("listen", Str)])),
    ("watch_config", Bool),
    ("oidc_refresh_interval", Str),
    ("admin", Map(&[("token", Str), ("token_file", Str)])),
    ("directory", Map(&[("known_users", List), ("groups", List)])),
    ("providers", Kind::Providers),
    ("clearml", Map(super::clearml::SCHEMA)),
];

const SESSION: &[(&str, Kind)] = &[
    ("store", Str),
    ("secret", Str),
    ("secret_file", Str),
    ("cookie_name", Str),
    ("idle_timeout", Str),
    ("max_lifetime", Str),
    ("max_entries", Int),
    ("local_cache_ttl", Str),
];

const HEADERS: &[(&str, Kind)] = &[
    ("user", Header),
    ("email", Header),
    ("preferred_username", Header),
    ("groups", Header),
    ("name", Header),
    ("pass_access_token", Bool),
    ("pass_authorization", Bool),
    ("identity_token", Bool),
];

pub(crate) const PROVIDER: &[(&str, Kind)] = &[
    ("protocol", Str),
    ("provider", Str),
    ("display_name", Str),
    ("active", Bool),
    ("base_url", Str),
    ("issuer", Str),
    ("authorize_url", Str),
    ("access_token_url", Str),
    ("revocation_url", Str),
    ("userinfo_url", Str),
    ("jwks_uri", Str),
    ("end_session_url", Str),
    ("client_id", Str),
    ("client_secret", Str),
    ("client_secret_file", Str),
    ("code_challenge", Bool),
    ("code_challenge_method", Str),
    ("scopes", List),
    ("additional_scopes", List),
    ("user_info_from_id_token", Bool),
    ("get_info_from_access_token", Bool),
    ("email_verification", Bool),
    ("create_new_users", Bool),
    ("verify_token_signature", Bool),
    ("claims", Map(CLAIMS)),
    ("groups", Map(GROUPS)),
    ("admin_role", Str),
    ("idp_logout", Bool),
    ("default_company", Str),
    ("hosted_domain", List),
    ("graph_url", Str),
    ("debug", Bool),
    ("clock_skew", Str),
    ("id_token_signing_algs", List),
];

const CLAIMS: &[(&str, Kind)] = &[
    ("user_id", Str),
    ("email", Str),
    ("name", Str),
    ("given_name", Str),
    ("family_name", Str),
    ("picture", Str),
    ("preferred_username", Str),
];

const GROUPS: &[(&str, Kind)] = &[
    ("claim", Str),
    ("enabled", Bool),
    ("admins", List),
    ("case_sensitive", Bool),
    ("prohibit_user_signup_if_not_in_group", Bool),
];

/// Checks `tree` against the schema (dropping bad entries) and deserializes it.
pub(crate) fn normalize(tree: &mut Tree, problems: &mut Vec<ConfigProblem>) -> RawConfig {
    let mut root = Value::Mapping(std::mem::take(&mut tree.root));
    let mut cx = Ctx::new(tree);
    check(&mut root, Kind::Map(ROOT), "", &mut cx);
    let saml_providers = super::saml::split_raw(&mut root, &mut cx);
    problems.append(&mut cx.problems);
    match serde_yaml::from_value(root) {
        Ok(raw) => RawConfig {
            saml_providers,
            ..raw
        },
        Err(e) => {
            problems.push(ConfigProblem {
                key: "config".to_owned(),
                message: e.to_string(),
            });
            RawConfig::default()
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Normalizes one value in place; `false` means it is unusable and must be dropped.
fn check(value: &mut Value, kind: Kind, path: &str, cx: &mut Ctx) -> bool {
    if value.is_null() && !matches!(kind, Kind::Map(_) | Kind::Providers) {
        return false;
    }
    let result = match kind {
        Kind::Map(fields) => return check_map(value, fields, path, cx),
        Kind::Providers => return check_providers(value, path, cx),
        Kind::Str => scalar_text(value).map(Value::String),
        Kind::Bool => scalar_text(value)
            .and_then(|t| parse_bool(&t))
            .map(Value::Bool),
        Kind::Int => scalar_text(value)
            .and_then(|t| t.replace('_', "").parse::<u64>().ok())
            .map(|n| Value::Number(n.into())),
        Kind::List => list(value).map(Value::Sequence),
        Kind::Header => scalar_text(value).map(|t| match parse_bool(&t) {
            Some(false) => Value::String(String::new()),
            Some(true) => Value::Null,
            None => Value::String(t),
        }),
    };
    match result {
        Some(Value::Null) => false,
        Some(normalized) => {
            *value = normalized;
            true
        }
        None => {
            cx.error(path, expected(kind));
            false
        }
    }
}

fn expected(kind: Kind) -> &'static str {
    match kind {
        Kind::Bool => "expected true or false",
        Kind::Int => "expected a non-negative whole number",
        Kind::List => "expected a list (YAML list or comma-separated)",
        Kind::Map(_) | Kind::Providers => "expected a mapping of keys",
        Kind::Str | Kind::Header => "expected a single value, not a list or mapping",
    }
}

fn check_map(
    value: &mut Value,
    fields: &'static [(&'static str, Kind)],
    path: &str,
    cx: &mut Ctx,
) -> bool {
    if value.is_null() {
        *value = Value::Mapping(Mapping::new());
    }
    let Value::Mapping(map) = value else {
        cx.error(path, expected(Kind::Map(fields)));
        return false;
    };
    let mut drop = Vec::new();
    for (key, child) in map.iter_mut() {
        let name = key_text(key);
        let child_path = join(path, &name);
        match fields.iter().find(|(field, _)| *field == name) {
            Some((_, kind)) => {
                if !check(child, *kind, &child_path, cx) {
                    drop.push(key.clone());
                }
            }
            None => {
                cx.error(&child_path, unknown_key_message(&name, fields));
                drop.push(key.clone());
            }
        }
    }
    for key in drop {
        map.shift_remove(&key);
    }
    true
}

fn check_providers(value: &mut Value, path: &str, cx: &mut Ctx) -> bool {
    if value.is_null() {
        *value = Value::Mapping(Mapping::new());
    }
    let Value::Mapping(map) = value else {
        cx.error(path, expected(Kind::Providers));
        return false;
    };
    let mut drop = Vec::new();
    for (key, child) in map.iter_mut() {
        let id = key_text(key);
        let child_path = join(path, &id);
        if !provider::valid_id(&id) {
            cx.error(
                &child_path,
                "invalid connection id: use only a-z, 0-9, `_` and `-`",
            );
            drop.push(key.clone());
        } else if super::saml::is_saml(child) {
            if !check_map(child, super::saml::SAML_PROVIDER, &child_path, cx) {
                drop.push(key.clone());
            }
        } else if !check_map(child, PROVIDER, &child_path, cx) {
            drop.push(key.clone());
        }
    }
    for key in drop {
        map.shift_remove(&key);
    }
    true
}

fn key_text(key: &Value) -> String {
    scalar_text(key).unwrap_or_else(|| "?".to_owned())
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// A YAML list of scalars, or a string: `[a, "b"]` (flow list) or `a,b` (comma-separated).
fn list(value: &Value) -> Option<Vec<Value>> {
    if let Value::Sequence(items) = value {
        return items
            .iter()
            .map(|item| scalar_text(item).map(|t| Value::String(t.trim().to_owned())))
            .collect();
    }
    let text = scalar_text(value)?;
    let trimmed = text.trim();
    if trimmed.starts_with('[') && trimmed.ends_with(']') {
        if let Ok(Value::Sequence(items)) = serde_yaml::from_str::<Value>(trimmed) {
            return list(&Value::Sequence(items));
        }
    }
    let items = trimmed
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| Value::String(item.to_owned()));
    Some(items.collect())
}

fn unknown_key_message(name: &str, fields: &[(&str, Kind)]) -> String {
    let closest = fields
        .iter()
        .map(|(field, _)| (edit_distance(name, field), *field))
        .min();
    match closest {
        Some((distance, field)) if distance <= 2 => {
            format!("unknown key (did you mean `{field}`?)")
        }
        _ => "unknown key".to_owned(),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub listen: Option<String>,
    pub threads: Option<u64>,
    pub upstream: Option<String>,
    pub upstream_ca_file: Option<String>,
    pub public_url: Option<String>,
    pub tls: Option<RawTls>,
    pub session: Option<RawSession>,
    pub state: Option<RawState>,
    pub skip_auth: Option<Vec<String>>,
    pub api_routes: Option<Vec<String>>,
    pub allowed_redirect_hosts: Option<Vec<String>>,
    pub trusted_proxies: Option<Vec<String>>,
    pub headers: Option<RawHeaders>,
    pub log: Option<RawLog>,
    pub metrics: Option<RawMetrics>,
    pub watch_config: Option<bool>,
    pub oidc_refresh_interval: Option<String>,
    pub admin: Option<RawAdmin>,
    pub directory: Option<RawDirectory>,
    pub providers: Option<BTreeMap<String, RawProvider>>,
    pub clearml: Option<super::clearml::RawClearml>,
    /// `protocol: saml` connections, moved out of `providers` by `normalize`.
    #[serde(skip)]
    pub saml_providers: BTreeMap<String, super::saml::RawSamlProvider>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTls {
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSession {
    pub store: Option<String>,
    pub secret: Option<String>,
    pub secret_file: Option<String>,
    pub cookie_name: Option<String>,
    pub idle_timeout: Option<String>,
    pub max_lifetime: Option<String>,
    pub max_entries: Option<u64>,
    pub local_cache_ttl: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(crate) struct RawState {
    pub path: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHeaders {
    pub user: Option<String>,
    pub email: Option<String>,
    pub preferred_username: Option<String>,
    pub groups: Option<String>,
    pub name: Option<String>,
    pub pass_access_token: Option<bool>,
    pub pass_authorization: Option<bool>,
    pub identity_token: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLog {
    pub format: Option<String>,
    pub level: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMetrics {
    pub listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAdmin {
    pub token: Option<String>,
    pub token_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDirectory {
    pub known_users: Option<Vec<String>>,
    pub groups: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProvider {
    pub protocol: Option<String>,
    pub provider: Option<String>,
    pub display_name: Option<String>,
    pub active: Option<bool>,
    pub base_url: Option<String>,
    pub issuer: Option<String>,
    pub authorize_url: Option<String>,
    pub access_token_url: Option<String>,
    pub revocation_url: Option<String>,
    pub userinfo_url: Option<String>,
    pub jwks_uri: Option<String>,
    pub end_session_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub client_secret_file: Option<String>,
    pub code_challenge: Option<bool>,
    pub code_challenge_method: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub additional_scopes: Option<Vec<String>>,
    pub user_info_from_id_token: Option<bool>,
    pub get_info_from_access_token: Option<bool>,
    pub email_verification: Option<bool>,
    pub create_new_users: Option<bool>,
    pub verify_token_signature: Option<bool>,
    pub claims: Option<RawClaims>,
    pub groups: Option<RawGroups>,
    pub admin_role: Option<String>,
    pub idp_logout: Option<bool>,
    pub default_company: Option<String>,
    pub hosted_domain: Option<Vec<String>>,
    pub graph_url: Option<String>,
    pub debug: Option<bool>,
    pub clock_skew: Option<String>,
    pub id_token_signing_algs: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClaims {
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub picture: Option<String>,
    pub preferred_username: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGroups {
    pub claim: Option<String>,
    pub enabled: Option<bool>,
    pub admins: Option<Vec<String>>,
    pub case_sensitive: Option<bool>,
    pub prohibit_user_signup_if_not_in_group: Option<bool>,
}

/// Every accepted key as a dotted path (`session.idle_timeout`, `providers.<id>.claims.email`),
/// for the README reference check.
pub(crate) fn reference_keys() -> Vec<String> {
    fn walk(prefix: &str, fields: &[(&str, Kind)], out: &mut Vec<String>) {
        for (name, kind) in fields {
            let path = join(prefix, name);
            match kind {
                Map(inner) => walk(&path, inner, out),
                Kind::Providers => {
                    walk(&format!("{path}.<id>"), PROVIDER, out);
                    let mut saml = Vec::new();
                    walk(
                        &format!("{path}.<id>"),
                        super::saml::SAML_PROVIDER,
                        &mut saml,
                    );
                    saml.retain(|k| !out.contains(k));
                    out.extend(saml);
                }
                _ => out.push(path),
            }
        }
    }
    let mut out = Vec::new();
    walk("", ROOT, &mut out);
    out
}
