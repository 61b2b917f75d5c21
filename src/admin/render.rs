//! A validated connection's effective settings as JSON, keyed like `providers.<id>` in the
//! config file, without secrets: how the API and the pages show configured (read-only)
//! connections, and where the form's preset defaults come from.

use serde_json::{json, Map, Value};
use url::Url;

use crate::config::{
    ClaimNames, GroupsConfig, IdpMetadataSource, OidcProviderConfig, PkceMethod, SamlProviderConfig,
};

/// Display names of the presets, as on ClearML's "New Provider Connection" modal.
pub fn preset_label(preset: &str) -> &'static str {
    match preset {
        "auth0" => "Auth0",
        "cognito" => "AWS Cognito",
        "google" => "Google",
        "keycloak" => "Keycloak",
        "microsoft_ad" => "Microsoft AD",
        "azure" => "Microsoft Azure",
        "okta" => "Okta",
        "ping" => "Ping",
        "duo" => "Duo",
        "jumpcloud" => "Jumpcloud",
        _ => "Custom",
    }
}

fn url(u: &Option<Url>) -> Value {
    u.as_ref().map_or(Value::Null, |u| Value::from(u.as_str()))
}

fn text(t: &Option<String>) -> Value {
    t.as_deref().map_or(Value::Null, Value::from)
}

pub fn claims(c: &ClaimNames) -> Value {
    json!({
        "user_id": c.user_id,
        "email": c.email,
        "name": c.name,
        "given_name": c.given_name,
        "family_name": c.family_name,
        "picture": c.picture,
        "preferred_username": c.preferred_username,
    })
}

pub fn groups(g: &GroupsConfig) -> Value {
    json!({
        "claim": g.claim,
        "enabled": g.enabled,
        "admins": g.admins,
        "case_sensitive": g.case_sensitive,
        "prohibit_user_signup_if_not_in_group": g.prohibit_user_signup_if_not_in_group,
    })
}

fn pkce(method: PkceMethod) -> &'static str {
    match method {
        PkceMethod::None => "none",
        PkceMethod::Plain => "plain",
        PkceMethod::S256 => "S256",
    }
}

/// An OIDC connection's effective settings; the client secret is never included.
pub fn oidc_settings(c: &OidcProviderConfig) -> Map<String, Value> {
    let e = &c.endpoints;
    let value = json!({
        "protocol": "oidc",
        "provider": c.preset.as_str(),
        "display_name": c.display_name,
        "base_url": url(&c.base_url),
        "issuer": url(&c.issuer),
        "authorize_url": url(&e.authorize_url),
        "access_token_url": url(&e.access_token_url),
        "revocation_url": url(&e.revocation_url),
        "userinfo_url": url(&e.userinfo_url),
        "jwks_uri": url(&e.jwks_uri),
        "end_session_url": url(&e.end_session_url),
        "client_id": c.client_id,
        "code_challenge_method": pkce(c.code_challenge_method),
        "scopes": c.scopes,
        "user_info_from_id_token": c.user_info_from_id_token,
        "get_info_from_access_token": c.get_info_from_access_token,
        "email_verification": c.email_verification,
        "create_new_users": c.create_new_users,
        "verify_token_signature": c.verify_token_signature,
        "claims": claims(&c.claims),
        "groups": groups(&c.groups),
        // "" (not null) when off, so that a round trip does not bring back Keycloak's default.
        "admin_role": c.admin_role.as_deref().unwrap_or_default(),
        "idp_logout": c.idp_logout,
        "default_company": text(&c.default_company),
        "hosted_domain": c.hosted_domain,
        "graph_url": url(&c.graph_url),
        "debug": c.debug,
        "clock_skew": humantime::format_duration(c.clock_skew).to_string(),
    });
    without_nulls(value)
}

/// A SAML connection's effective settings; the SP private key is never included.
pub fn saml_settings(c: &SamlProviderConfig) -> Map<String, Value> {
    let metadata = match &c.idp_metadata_source {
        IdpMetadataSource::Url(u) => Value::from(u.as_str()),
        IdpMetadataSource::File(p) => Value::from(p.display().to_string()),
        IdpMetadataSource::Inline => Value::from("(inline XML)"),
    };
    let value = json!({
        "protocol": "saml",
        "provider": c.preset.as_str(),
        "display_name": c.display_name,
        "entity_id": text(&c.entity_id),
        "idp_metadata": metadata,
        "require_signed_assertions": c.require_signed_assertions,
        "sign_requests": c.sign_requests,
        "sp_certificate": text(&c.sp_certificate),
        "allow_idp_initiated": c.allow_idp_initiated,
        "insecure_allow_sha1": c.insecure_allow_sha1,
        "idp_logout": c.idp_logout,
        "create_new_users": c.create_new_users,
        "default_company": text(&c.default_company),
        "debug": c.debug,
        "clock_skew": humantime::format_duration(c.clock_skew).to_string(),
        "claims": claims(&c.claims),
        "groups": groups(&c.groups),
    });
    without_nulls(value)
}

fn without_nulls(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map.into_iter().filter(|(_, v)| !v.is_null()).collect(),
        _ => Map::new(),
    }
}
