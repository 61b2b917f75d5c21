//! ClearML-compatible SSO variables, `CLEARML__{services,secure}__login__sso__oauth_client__<id>__…`
//! (or `TRAINS__…`), with their HOCON-style values, merged into `providers.<id>`.

use std::collections::BTreeMap;

use serde_yaml::Value;

use super::env::{Layer, Tree};
use super::ConfigProblem;

/// `TRAINS__` first, so that `CLEARML__` overrides it.
const PREFIXES: &[(&str, Layer)] = &[("TRAINS__", Layer::Trains), ("CLEARML__", Layer::Clearml)];

/// What one variable under `login__sso__` means.
#[derive(Debug, PartialEq, Eq)]
enum SsoVar {
    /// `oauth_client__<id>__<key>…`: the provider path, lower-cased (`[id, key, …]`).
    Oidc(Vec<String>),
    /// `saml_client__<id>__<key>…`: the provider path, lower-cased (`[id, key, …]`).
    Saml(Vec<String>),
    Invalid(&'static str),
}

/// Merges every ClearML SSO variable into the tree's `providers` map.
pub(crate) fn apply(
    tree: &mut Tree,
    env: &BTreeMap<String, String>,
    problems: &mut Vec<ConfigProblem>,
) {
    for (prefix, layer) in PREFIXES {
        for (name, raw) in env {
            let Some(var) = name.strip_prefix(prefix).and_then(classify) else {
                continue;
            };
            let problem = |message: &str| ConfigProblem {
                key: name.clone(),
                message: message.to_owned(),
            };
            match var {
                SsoVar::Oidc(path) => match parse_value(raw) {
                    Ok(value) => {
                        let mut full = vec!["providers".to_owned()];
                        full.extend(path);
                        tree.set(&full, value, name, *layer);
                    }
                    Err(message) => problems.push(problem(message)),
                },
                SsoVar::Saml(path) => match parse_value(raw) {
                    Ok(value) => {
                        let id = path.first().cloned().unwrap_or_default();
                        let protocol = ["providers".to_owned(), id, "protocol".to_owned()];
                        tree.set(&protocol, Value::String("saml".into()), name, *layer);
                        let mut full = vec!["providers".to_owned()];
                        full.extend(path);
                        tree.set(&full, value, name, *layer);
                    }
                    Err(message) => problems.push(problem(message)),
                },
                SsoVar::Invalid(message) => problems.push(problem(message)),
            }
        }
    }
}

/// Classifies the part after `CLEARML__`; `None` for variables that are not SSO settings.
fn classify(rest: &str) -> Option<SsoVar> {
    let lower = rest.to_ascii_lowercase();
    let segments: Vec<&str> = lower.split("__").collect();
    let [namespace, "login", "sso", kind, tail @ ..] = segments.as_slice() else {
        return None;
    };
    if !matches!(*namespace, "services" | "secure") {
        return None;
    }
    let var = match (*kind, tail) {
        ("oauth_client", [id, key @ ..]) if !key.is_empty() && !id.is_empty() => {
            if key.iter().any(|k| k.is_empty()) {
                SsoVar::Invalid("empty level in the variable name (levels are separated by `__`)")
            } else {
                SsoVar::Oidc(tail.iter().map(|s| s.to_string()).collect())
            }
        }
        ("oauth_client", _) => SsoVar::Invalid("expected …__oauth_client__<id>__<key>"),
        ("saml_client", [id, key @ ..]) if !key.is_empty() && !id.is_empty() => {
            if key.iter().any(|k| k.is_empty()) {
                SsoVar::Invalid("empty level in the variable name (levels are separated by `__`)")
            } else {
                SsoVar::Saml(tail.iter().map(|s| s.to_string()).collect())
            }
        }
        ("saml_client", _) => SsoVar::Invalid("expected …__saml_client__<id>__<key>"),
        _ => SsoVar::Invalid("unknown SSO setting: expected oauth_client or saml_client"),
    };
    Some(var)
}

const UNQUOTED_SPECIAL: &str =
    "quote values containing # or $ (unquoted, HOCON reads them as a comment or a substitution)";

/// Parses a value the way ClearML's HOCON does: quoted strings, `[a, "b"]` lists, bare text.
/// `true`/`false` and numbers stay text here; the schema converts them per key.
pub(crate) fn parse_value(raw: &str) -> Result<Value, &'static str> {
    let text = raw.trim();
    if text.starts_with('"') {
        return unquote(text).map(Value::String);
    }
    if let Some(inner) = text.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or("a list must end with `]`")?;
        let items = split_list(inner)?;
        return items
            .iter()
            .map(|item| parse_item(item))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Sequence);
    }
    bare(text).map(Value::String)
}

fn parse_item(item: &str) -> Result<Value, &'static str> {
    if item.starts_with('"') {
        unquote(item).map(Value::String)
    } else if item.starts_with('[') || item.starts_with('{') {
        Err("nested lists and objects are not supported")
    } else {
        bare(item).map(Value::String)
    }
}

fn bare(text: &str) -> Result<String, &'static str> {
    if text.contains(['#', '$']) {
        return Err(UNQUOTED_SPECIAL);
    }
    if text.contains('"') {
        return Err("unbalanced `\"` in an unquoted value");
    }
    Ok(text.to_owned())
}

/// Splits a list body on commas (and newlines) outside quoted strings; empty items are dropped.
fn split_list(inner: &str) -> Result<Vec<String>, &'static str> {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut in_quotes = false;
    let mut escaped = false;
    for c in inner.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            ',' | '\n' if !in_quotes => {
                items.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if in_quotes {
        return Err("unterminated quoted string");
    }
    items.push(current);
    let items = items.iter().map(|s| s.trim().to_owned());
    Ok(items.filter(|s| !s.is_empty()).collect())
}

/// Unquotes a JSON-style `"…"` string; nothing but whitespace may follow the closing quote.
fn unquote(text: &str) -> Result<String, &'static str> {
    let mut out = String::new();
    let mut chars = text.chars().skip(1);
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                return match chars.all(char::is_whitespace) {
                    true => Ok(out),
                    false => Err("unexpected text after a quoted string"),
                };
            }
            '\\' => out.push(match chars.next() {
                Some('"') => '"',
                Some('\\') => '\\',
                Some('/') => '/',
                Some('n') => '\n',
                Some('t') => '\t',
                Some('r') => '\r',
                _ => return Err("invalid escape in a quoted string (use \\\" \\\\ \\n \\t)"),
            }),
            _ => out.push(c),
        }
    }
    Err("unterminated quoted string")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hocon_values_parse_like_clearml() {
        let s = |v: &str| Value::String(v.to_owned());
        assert_eq!(parse_value("true"), Ok(s("true")));
        assert_eq!(parse_value("\"Keycloak\""), Ok(s("Keycloak")));
        assert_eq!(parse_value(r#""a \"b\" c""#), Ok(s(r#"a "b" c"#)));
        assert_eq!(
            parse_value("https://kc/realms/x"),
            Ok(s("https://kc/realms/x"))
        );
        assert_eq!(parse_value(""), Ok(s("")));
        assert_eq!(
            parse_value(r#"["admins"]"#),
            Ok(Value::Sequence(vec![s("admins")]))
        );
        let two = Value::Sequence(vec![s("admins"), s("ops")]);
        assert_eq!(parse_value("[admins, ops]"), Ok(two));
        assert_eq!(parse_value("[]"), Ok(Value::Sequence(vec![])));
        assert_eq!(
            parse_value(r#""${KEYCLOAK_AUTH_CLIENT_ID}""#),
            Ok(s("${KEYCLOAK_AUTH_CLIENT_ID}"))
        );
    }

    #[test]
    fn unquoted_hash_or_dollar_is_rejected() {
        assert_eq!(parse_value("abc$def"), Err(UNQUOTED_SPECIAL));
        assert_eq!(parse_value("${X}"), Err(UNQUOTED_SPECIAL));
        assert_eq!(parse_value("a#b"), Err(UNQUOTED_SPECIAL));
        assert_eq!(parse_value("[a, b$]"), Err(UNQUOTED_SPECIAL));
        assert!(parse_value("\"abc").is_err());
        assert!(parse_value("[a").is_err());
    }

    #[test]
    fn classify_reads_namespaces_and_ignores_other_settings() {
        let oidc = |p: &[&str]| Some(SsoVar::Oidc(p.iter().map(|s| s.to_string()).collect()));
        assert_eq!(
            classify("services__login__sso__oauth_client__KC__Groups__Admins"),
            oidc(&["kc", "groups", "admins"])
        );
        assert_eq!(
            classify("secure__login__sso__oauth_client__kc__client_id"),
            oidc(&["kc", "client_id"])
        );
        assert_eq!(
            classify("secure__login__sso__saml_client__duo__entity_id"),
            Some(SsoVar::Saml(vec!["duo".into(), "entity_id".into()]))
        );
        assert_eq!(classify("apiserver__auth__fixed_users__enabled"), None);
        assert!(matches!(
            classify("services__login__sso__oauth_client__kc"),
            Some(SsoVar::Invalid(_))
        ));
    }
}
