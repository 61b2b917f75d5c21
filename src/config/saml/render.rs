//! `--check-config` output for a SAML connection, secrets redacted.

use std::time::Duration;

use serde_yaml::{Mapping, Value};

use super::{IdpMetadataSource, SamlProviderConfig};

/// The connection for `--check-config`, secrets redacted.
pub(crate) fn render(p: &SamlProviderConfig) -> Mapping {
    let mut m = Mapping::new();
    let mut put = |key: &str, value: Value| {
        m.insert(Value::from(key), value);
    };
    let text = |s: &str| Value::from(s);
    let opt = |s: &Option<String>| s.as_deref().map_or(Value::Null, Value::from);
    let duration = |d: Duration| Value::from(humantime::format_duration(d).to_string());
    put("protocol", text("saml"));
    put("provider", text(p.preset.as_str()));
    put("display_name", text(&p.display_name));
    put("active", Value::Bool(p.active));
    put("source", text(&p.source));
    put("entity_id", opt(&p.entity_id));
    let metadata = match &p.idp_metadata_source {
        IdpMetadataSource::Inline => "<inline XML>".to_owned(),
        IdpMetadataSource::Url(url) => url.to_string(),
        IdpMetadataSource::File(path) => path.display().to_string(),
    };
    put("idp_metadata", Value::from(metadata));
    put("idp_metadata_refresh", duration(p.idp_metadata_refresh));
    let signed = p.require_signed_assertions;
    put("require_signed_assertions", Value::Bool(signed));
    put("sign_requests", Value::Bool(p.sign_requests));
    let key = p.sp_private_key.as_ref().map(|_| "<redacted>".to_owned());
    put("sp_private_key", opt(&key));
    let cert = p
        .sp_certificate
        .as_ref()
        .map(|_| "<PEM certificate>".to_owned());
    put("sp_certificate", opt(&cert));
    put("allow_idp_initiated", Value::Bool(p.allow_idp_initiated));
    put("clock_skew", duration(p.clock_skew));
    put("insecure_allow_sha1", Value::Bool(p.insecure_allow_sha1));
    put("idp_logout", Value::Bool(p.idp_logout));
    put("create_new_users", Value::Bool(p.create_new_users));
    put("default_company", opt(&p.default_company));
    put("debug", Value::Bool(p.debug));
    let c = &p.claims;
    let mut claims = Mapping::new();
    for (k, v) in [
        ("user_id", &c.user_id),
        ("email", &c.email),
        ("name", &c.name),
        ("given_name", &c.given_name),
        ("family_name", &c.family_name),
        ("picture", &c.picture),
        ("preferred_username", &c.preferred_username),
    ] {
        claims.insert(Value::from(k), Value::from(v.as_str()));
    }
    put("claims", Value::Mapping(claims));
    let g = &p.groups;
    let mut groups = Mapping::new();
    groups.insert(Value::from("claim"), Value::from(g.claim.as_str()));
    groups.insert(Value::from("enabled"), Value::Bool(g.enabled));
    groups.insert(Value::from("admins"), Value::from(g.admins.clone()));
    groups.insert(Value::from("case_sensitive"), Value::Bool(g.case_sensitive));
    let prohibit = Value::Bool(g.prohibit_user_signup_if_not_in_group);
    groups.insert(
        Value::from("prohibit_user_signup_if_not_in_group"),
        prohibit,
    );
    put("groups", Value::Mapping(groups));
    m
}
