//! Identity headers (DESIGN section 5): removing every client-sent copy, and building the ones
//! the proxy injects upstream (`X-Forwarded-*`) or answers with (`X-Auth-Request-*`).

use http::header::{HeaderName, HeaderValue, CONNECTION};
use pingora::http::RequestHeader;

use crate::config::HeadersConfig;
use crate::identity::Identity;

/// Exact names (canonical: lower case, `-`) that a client may never send.
const RESERVED: &[&str] = &[
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-preferred-username",
    "x-forwarded-groups",
    "x-forwarded-name",
    "x-forwarded-access-token",
    "remote-user",
    "remote-email",
    "remote-groups",
    "remote-name",
];

/// Prefixes (canonical) that a client may never send.
const RESERVED_PREFIXES: &[&str] = &["x-auth-request-", "x-sso-"];

/// Prefixes removed from browser requests in ClearML bridge mode.
pub const CLEARML_PREFIXES: &[&str] = &[
    "x-clearml-impersonate-as",
    "x-clearml-act-as",
    "x-trains-impersonate-as",
    "x-trains-act-as",
];

/// Which client headers get stripped: the fixed list plus the configured header names.
#[derive(Debug, Clone)]
pub struct StripRules {
    exact: Vec<String>,
    prefixes: Vec<String>,
}

impl StripRules {
    pub fn new(config: &HeadersConfig, extra_prefixes: &[&str]) -> Self {
        let mut exact: Vec<String> = RESERVED.iter().map(|s| (*s).to_owned()).collect();
        let configured = [
            &config.user,
            &config.email,
            &config.preferred_username,
            &config.groups,
            &config.name,
        ];
        exact.extend(configured.into_iter().flatten().map(|n| canonical(n)));
        if config.pass_authorization {
            // `Authorization: Bearer <id_token>` is then an identity header of ours.
            exact.push("authorization".to_owned());
        }
        exact.sort();
        exact.dedup();
        let prefixes = RESERVED_PREFIXES
            .iter()
            .chain(extra_prefixes)
            .map(|s| (*s).to_owned())
            .collect();
        StripRules { exact, prefixes }
    }

    /// True when a header of this name must not come from a client. Allocation-free: it runs
    /// for every header of every request.
    pub fn is_reserved(&self, name: &str) -> bool {
        let name = name.trim().as_bytes();
        self.exact
            .iter()
            .any(|e| canon_prefix(name, e.as_bytes()) == Some(true))
            || self
                .prefixes
                .iter()
                .any(|p| canon_prefix(name, p.as_bytes()).is_some())
    }
}

/// Compare `name` in canonical form (lower case, `_` as `-`) with `want`: `None` when `want`
/// is not a prefix, `Some(exact)` when it is.
fn canon_prefix(name: &[u8], want: &[u8]) -> Option<bool> {
    if name.len() < want.len() {
        return None;
    }
    let same = name.iter().zip(want).all(|(a, b)| {
        let a = if *a == b'_' {
            b'-'
        } else {
            a.to_ascii_lowercase()
        };
        a == *b
    });
    same.then_some(name.len() == want.len())
}

fn canonical(name: &str) -> String {
    name.trim()
        .bytes()
        .map(|b| {
            if b == b'_' {
                '-'
            } else {
                char::from(b.to_ascii_lowercase())
            }
        })
        .collect()
}

/// Remove every reserved header (any case, `_` for `-`, every duplicate), and drop reserved
/// names from the `Connection` header so nothing downstream can be told to remove ours.
/// Returns how many headers were removed.
pub fn strip_reserved(req: &mut RequestHeader, rules: &StripRules) -> usize {
    let doomed: Vec<HeaderName> = req
        .headers
        .keys()
        .filter(|name| rules.is_reserved(name.as_str()))
        .cloned()
        .collect();
    for name in &doomed {
        req.remove_header(name);
    }
    strip_connection_listed(req);
    doomed.len()
}

/// Hop-by-hop headers (RFC 9110 section 7.6.1): every header named in `Connection` is removed,
/// and `Connection` keeps only `keep-alive`, `close` and `upgrade`. So a client can neither pass
/// a hop-by-hop header through nor ask a later hop to drop the identity headers we add.
fn strip_connection_listed(req: &mut RequestHeader) {
    let Some(first) = req.headers.get(CONNECTION) else {
        return;
    };
    if req.headers.get_all(CONNECTION).iter().count() == 1
        && first.as_bytes().eq_ignore_ascii_case(b"keep-alive")
    {
        return;
    }
    let tokens: Vec<String> = req
        .headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    let (kept, listed): (Vec<String>, Vec<String>) = tokens
        .into_iter()
        .partition(|t| matches!(t.as_str(), "keep-alive" | "close" | "upgrade"));
    for name in &listed {
        if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
            req.remove_header(&name);
        }
    }
    req.remove_header(&CONNECTION);
    if !kept.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&kept.join(", ")) {
            // Inserting a valid value into a request header cannot fail.
            let _ = req.insert_header(CONNECTION, v);
        }
    }
}

/// The identity as `(header name, value)` pairs under the configured upstream names.
/// Values that cannot be a header value (control characters) are left out.
pub fn upstream_identity(
    identity: &Identity,
    names: &HeadersConfig,
) -> Vec<(HeaderName, HeaderValue)> {
    let groups = identity.groups.join(",");
    let fields: [(&Option<String>, Option<&str>); 5] = [
        (&names.user, Some(identity.user.as_str())),
        (&names.email, identity.email.as_deref()),
        (
            &names.preferred_username,
            identity.preferred_username.as_deref(),
        ),
        (&names.groups, Some(groups.as_str())),
        (&names.name, identity.name.as_deref()),
    ];
    fields
        .into_iter()
        .filter_map(|(name, value)| header_pair(name.as_deref()?, value?))
        .collect()
}

/// The forward-auth answer headers (`X-Auth-Request-*`).
pub fn auth_request_identity(identity: &Identity) -> Vec<(HeaderName, HeaderValue)> {
    let groups = identity.groups.join(",");
    [
        ("x-auth-request-user", Some(identity.user.as_str())),
        ("x-auth-request-email", identity.email.as_deref()),
        (
            "x-auth-request-preferred-username",
            identity.preferred_username.as_deref(),
        ),
        ("x-auth-request-groups", Some(groups.as_str())),
        ("x-auth-request-name", identity.name.as_deref()),
    ]
    .into_iter()
    .filter_map(|(n, v)| header_pair(n, v?))
    .collect()
}

pub fn header_pair(name: &str, value: &str) -> Option<(HeaderName, HeaderValue)> {
    let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
    match HeaderValue::from_bytes(value.as_bytes()) {
        Ok(v) => Some((name, v)),
        Err(_) => {
            tracing::debug!(header = %name, "identity value is not a valid header value; left out");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> HeadersConfig {
        HeadersConfig {
            user: Some("X-Forwarded-User".into()),
            email: Some("X-Forwarded-Email".into()),
            preferred_username: Some("X-Forwarded-Preferred-Username".into()),
            groups: Some("X-Forwarded-Groups".into()),
            name: Some("X-Custom-Name".into()),
            pass_access_token: false,
            pass_authorization: false,
            identity_token: false,
        }
    }

    #[test]
    fn strips_every_variant_and_keeps_others() {
        let rules = StripRules::new(&names(), &[]);
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        for (k, v) in [
            ("X-Forwarded-User", "mallory"),
            ("x-forwarded-user", "mallory2"),
            ("X_Forwarded_Email", "m@evil"),
            ("X-Auth-Request-User", "m"),
            ("Remote-User", "m"),
            ("X-Sso-Identity", "forged"),
            ("x-custom-name", "M"),
            ("Accept", "text/html"),
            ("Connection", "keep-alive, X-Forwarded-Groups, x_sso_foo"),
        ] {
            req.append_header(k.to_owned(), v).unwrap();
        }
        strip_reserved(&mut req, &rules);
        let left: Vec<&str> = req.headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, vec!["accept", "connection"]);
        assert_eq!(req.headers.get("connection").unwrap(), "keep-alive");
    }

    #[test]
    fn authorization_is_ours_only_when_pass_authorization_is_on() {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.append_header("Authorization", "Bearer client").unwrap();
        strip_reserved(&mut req, &StripRules::new(&names(), &[]));
        assert!(
            req.headers.get("authorization").is_some(),
            "an app's own token passes"
        );
        let on = HeadersConfig {
            pass_authorization: true,
            ..names()
        };
        strip_reserved(&mut req, &StripRules::new(&on, &[]));
        assert!(req.headers.get("authorization").is_none());
    }

    #[test]
    fn connection_with_only_reserved_names_is_dropped() {
        let rules = StripRules::new(&names(), &[]);
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.append_header("Connection", "X-Forwarded-User").unwrap();
        strip_reserved(&mut req, &rules);
        assert!(req.headers.get("connection").is_none());
    }

    #[test]
    fn identity_headers_use_configured_names_and_skip_bad_values() {
        let id = Identity {
            user: "alice".into(),
            email: Some("alice@example.com".into()),
            name: Some("Bad\nName".into()),
            groups: vec!["admins".into(), "ml-team".into()],
            provider: "local".into(),
            ..Identity::default()
        };
        let pairs = upstream_identity(&id, &names());
        let got: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("x-forwarded-user".into(), "alice".into()),
                ("x-forwarded-email".into(), "alice@example.com".into()),
                ("x-forwarded-groups".into(), "admins,ml-team".into()),
            ]
        );
    }
}
