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
    pub token_lifetime: Option<String>,
    pub company: Option<String>,
    pub guest_groups: Option<Vec<String>>,
}

/// `None` when the bridge is off (its other keys are still checked for typos by the schema).
pub(crate) fn convert(cx: &mut Ctx, raw: RawClearml) -> Option<ClearmlConfig> {
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
        api_key: api_key?,
        api_secret: Secret::new(api_secret?),
        cookie_name,
        token_lifetime: lifetime,
        company: raw
            .company
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty()),
        guest_groups: raw.guest_groups.unwrap_or_default(),
    })
}
