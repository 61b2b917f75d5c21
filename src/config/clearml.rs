//! The `clearml` section: raw keys and their conversion into [`ClearmlConfig`].

use std::time::Duration;

use serde::Deserialize;

use super::file::Kind::{self, Bool, List, Str};
use super::validate::{non_empty_secret, Ctx};
use super::{ClearmlConfig, Secret};

pub(crate) const SCHEMA: &[(&str, Kind)] = &[
    ("enabled", Bool),
    ("api_url", Str),
    ("api_key", Str),
    ("api_key_file", Str),
    ("api_secret", Str),
    ("api_secret_file", Str),
    ("cookie_name", Str),
    ("cookie_domain", Str),
    ("token_lifetime", Str),
    ("company", Str),
    ("guest_groups", List),
];

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClearml {
    pub enabled: Option<bool>,
    pub api_url: Option<String>,
    pub api_key: Option<String>,
    pub api_key_file: Option<String>,
    pub api_secret: Option<String>,
    pub api_secret_file: Option<String>,
    pub cookie_name: Option<String>,
    pub cookie_domain: Option<String>,
    pub token_lifetime: Option<String>,
    pub company: Option<String>,
    pub guest_groups: Option<Vec<String>>,
}

/// `None` when the bridge is off (its other keys are still checked for typos by the schema).
/// `public_host` is the host of `public_url`, which `cookie_domain` must cover.
pub(crate) fn convert(
    cx: &mut Ctx,
    raw: RawClearml,
    public_host: Option<&str>,
) -> Option<ClearmlConfig> {
    if !raw.enabled.unwrap_or(false) {
        return None;
    }
    let api_url = cx.url("clearml.api_url", raw.api_url.as_deref());
    if raw.api_url.is_none() {
        cx.error("clearml.api_url", "required when clearml.enabled is true");
    }
    let api_key = non_empty_secret(cx, "clearml.api_key", raw.api_key, raw.api_key_file);
    if api_key.is_none() {
        cx.error(
            "clearml.api_key",
            "required when clearml.enabled is true (a credential with role system)",
        );
    }
    let api_secret = non_empty_secret(
        cx,
        "clearml.api_secret",
        raw.api_secret,
        raw.api_secret_file,
    );
    if api_secret.is_none() {
        cx.error(
            "clearml.api_secret",
            "required when clearml.enabled is true",
        );
    }
    let cookie_name = raw
        .cookie_name
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "clearml_token_basic".to_owned());
    if !cookie_name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        cx.error(
            "clearml.cookie_name",
            format!("`{cookie_name}` is not a valid cookie name"),
        );
    }
    let cookie_domain = cookie_domain(cx, raw.cookie_domain, public_host);
    let lifetime = cx.duration(
        "clearml.token_lifetime",
        raw.token_lifetime.as_deref(),
        Duration::from_secs(12 * 3600),
    );
    if lifetime < Duration::from_secs(10) {
        cx.error("clearml.token_lifetime", "must be at least 10s");
    }
    Some(ClearmlConfig {
        api_url: api_url?,
        api_key: Secret::new(api_key?),
        api_secret: Secret::new(api_secret?),
        cookie_name,
        cookie_domain,
        token_lifetime: lifetime,
        company: raw
            .company
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty()),
        guest_groups: raw.guest_groups.unwrap_or_default(),
    })
}

/// `clearml.cookie_domain` (the Helm chart's `clearml.cookieDomain`): a domain name, without a
/// leading dot, that covers `public_url`'s host (browsers drop a cookie for any other domain).
fn cookie_domain(cx: &mut Ctx, raw: Option<String>, public_host: Option<&str>) -> Option<String> {
    let domain = raw
        .map(|d| d.trim().trim_start_matches('.').to_ascii_lowercase())
        .filter(|d| !d.is_empty())?;
    let labels_ok = domain.split('.').all(|label| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    if !labels_ok {
        cx.error(
            "clearml.cookie_domain",
            format!("`{domain}` is not a domain name"),
        );
        return None;
    }
    if let Some(host) = public_host.map(str::to_ascii_lowercase) {
        if host != domain && !host.ends_with(&format!(".{domain}")) {
            cx.error(
                "clearml.cookie_domain",
                format!("`{domain}` does not cover public_url's host `{host}`; browsers would drop the cookie"),
            );
            return None;
        }
    }
    Some(domain)
}
