//! The presets offered by the New Connection modal and their defaults. The defaults are not
//! written down twice: each is what the configuration loader itself fills in for a minimal
//! connection of that preset.

use std::sync::OnceLock;

use serde_json::{json, Map, Value};

use super::render::{oidc_settings, preset_label, saml_settings};
use crate::config::{validate_connection, ValidConnection};

/// OIDC presets in the order of the ClearML modal.
pub const OIDC: &[&str] = &[
    "auth0",
    "cognito",
    "google",
    "keycloak",
    "microsoft_ad",
    "azure",
    "okta",
    "ping",
    "custom",
];

/// SAML presets in the order of the ClearML modal.
pub const SAML: &[&str] = &["duo", "google", "jumpcloud", "microsoft_ad", "custom"];

/// Keys shown in the form that a preset gives a default to.
const OIDC_DEFAULT_KEYS: &[&str] = &[
    "code_challenge_method",
    "scopes",
    "user_info_from_id_token",
    "get_info_from_access_token",
    "email_verification",
    "create_new_users",
    "verify_token_signature",
    "claims",
    "groups",
    "admin_role",
];

const SAML_DEFAULT_KEYS: &[&str] = &[
    "require_signed_assertions",
    "sign_requests",
    "create_new_users",
    "claims",
    "groups",
];

/// `{"oidc": [{"id","label","defaults"}...], "saml": [...]}`, computed once.
pub fn all() -> &'static Value {
    static PRESETS: OnceLock<Value> = OnceLock::new();
    PRESETS.get_or_init(|| {
        let oidc: Vec<Value> = OIDC.iter().map(|p| entry(p, oidc_defaults(p))).collect();
        let saml: Vec<Value> = SAML.iter().map(|p| entry(p, saml_defaults(p))).collect();
        json!({"oidc": oidc, "saml": saml})
    })
}

fn entry(preset: &str, defaults: Map<String, Value>) -> Value {
    json!({"id": preset, "label": preset_label(preset), "defaults": defaults})
}

fn pick(all: Map<String, Value>, keys: &[&str]) -> Map<String, Value> {
    all.into_iter()
        .filter(|(k, _)| keys.contains(&k.as_str()))
        .collect()
}

fn oidc_defaults(preset: &str) -> Map<String, Value> {
    let probe = json!({"provider": preset, "issuer": "https://idp.invalid", "client_id": "x"});
    let mut out = match validate_connection("probe", &probe) {
        Ok(ValidConnection::Oidc(c)) => pick(oidc_settings(&c), OIDC_DEFAULT_KEYS),
        _ => Map::new(),
    };
    if let Some(scopes) = out.get("scopes").and_then(Value::as_array) {
        let joined: Vec<&str> = scopes.iter().filter_map(Value::as_str).collect();
        out.insert("scopes".to_owned(), Value::from(joined.join(", ")));
    }
    if preset == "google" {
        out.insert("issuer".into(), Value::from("https://accounts.google.com"));
    }
    out
}

fn saml_defaults(preset: &str) -> Map<String, Value> {
    let probe = json!({"protocol": "saml", "provider": preset, "idp_metadata": "https://idp.invalid/metadata"});
    match validate_connection("probe", &probe) {
        Ok(ValidConnection::Saml(c)) => pick(saml_settings(&c), SAML_DEFAULT_KEYS),
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_has_loader_defaults() {
        let all = all();
        let keycloak = &all["oidc"][3];
        assert_eq!(keycloak["id"], "keycloak");
        assert_eq!(keycloak["defaults"]["get_info_from_access_token"], true);
        assert_eq!(keycloak["defaults"]["scopes"], "openid, profile, email");
        assert_eq!(keycloak["defaults"]["admin_role"], "admin");
        let cognito = &all["oidc"][1]["defaults"];
        assert_eq!(cognito["groups"]["claim"], "cognito:groups");
        for p in all["saml"].as_array().unwrap() {
            assert_eq!(p["defaults"]["claims"]["user_id"], "nameid", "{p}");
            assert_eq!(p["defaults"]["require_signed_assertions"], true);
        }
    }
}
