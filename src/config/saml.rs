//! SAML connections in the loader: the key schema of `providers.<id>` with `protocol: saml`, the
//! raw struct, and the conversion into [`SamlProviderConfig`] with its preset attribute names.
//! Inline and file IdP metadata are read and checked here, so a metadata document without a
//! signing certificate is a configuration error (exit 64) naming `idp_metadata`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_yaml::Value;
use url::Url;

use super::file::{Kind, RawClaims, RawGroups};
use super::validate::Ctx;
use super::{ClaimNames, GroupsConfig, OidcProviderConfig, Secret};
use crate::providers::saml::metadata::{self, IdpMetadata};

use Kind::{Bool, List, Map, Str};

mod render;
#[cfg(test)]
mod tests;

pub(crate) use render::render;

/// The keys of a SAML connection (`providers.<id>` with `protocol: saml`).
pub(crate) const SAML_PROVIDER: &[(&str, Kind)] = &[
    ("protocol", Str),
    ("provider", Str),
    ("display_name", Str),
    ("active", Bool),
    ("entity_id", Str),
    ("idp_metadata", Str),
    ("idp_metadata_refresh", Str),
    ("require_signed_assertions", Bool),
    ("sign_requests", Bool),
    ("sp_private_key", Str),
    ("sp_private_key_file", Str),
    ("sp_certificate", Str),
    ("sp_certificate_file", Str),
    ("allow_idp_initiated", Bool),
    ("clock_skew", Str),
    ("insecure_allow_sha1", Bool),
    ("idp_logout", Bool),
    ("create_new_users", Bool),
    ("default_company", Str),
    ("debug", Bool),
    ("claims", Map(CLAIMS)),
    ("groups", Map(GROUPS)),
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

/// The claim name that means the Subject's NameID.
pub const NAMEID_CLAIM: &str = "nameid";

/// SAML presets: which IdP the connection talks to, and so its usual attribute names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SamlPreset {
    Custom,
    Duo,
    Google,
    Jumpcloud,
    MicrosoftAd,
}

const PRESETS: &[SamlPreset] = &[
    SamlPreset::Custom,
    SamlPreset::Duo,
    SamlPreset::Google,
    SamlPreset::Jumpcloud,
    SamlPreset::MicrosoftAd,
];

impl SamlPreset {
    pub fn as_str(self) -> &'static str {
        match self {
            SamlPreset::Custom => "custom",
            SamlPreset::Duo => "duo",
            SamlPreset::Google => "google",
            SamlPreset::Jumpcloud => "jumpcloud",
            SamlPreset::MicrosoftAd => "microsoft_ad",
        }
    }

    /// Default attribute names: email, name, given name, family name, preferred username,
    /// picture, groups.
    fn attributes(self) -> [&'static str; 7] {
        match self {
            SamlPreset::Custom => [
                "email",
                "name",
                "given_name",
                "family_name",
                "preferred_username",
                "picture",
                "groups",
            ],
            SamlPreset::Duo => [
                "Email",
                "DisplayName",
                "FirstName",
                "LastName",
                "Username",
                "picture",
                "groups",
            ],
            // Google Workspace sends the primary email as the NameID and no attributes unless
            // mapped; the README maps firstName, lastName and groups.
            SamlPreset::Google => [
                NAMEID_CLAIM,
                "name",
                "firstName",
                "lastName",
                NAMEID_CLAIM,
                "picture",
                "groups",
            ],
            SamlPreset::Jumpcloud => [
                "email",
                "name",
                "firstname",
                "lastname",
                "username",
                "picture",
                "memberOf",
            ],
            SamlPreset::MicrosoftAd => [
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
                "http://schemas.microsoft.com/identity/claims/displayname",
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname",
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname",
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
                "picture",
                "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
            ],
        }
    }
}

/// Where the IdP metadata comes from (`idp_metadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdpMetadataSource {
    /// The value started with `<`.
    Inline,
    /// Fetched at start-up and refreshed every `idp_metadata_refresh`.
    Url(Url),
    /// Read at load time.
    File(PathBuf),
}

/// One SAML connection (`providers.<id>` with `protocol: saml`, or the ClearML `saml_client`
/// variables), validated.
#[derive(Debug, Clone, PartialEq)]
pub struct SamlProviderConfig {
    pub id: String,
    pub preset: SamlPreset,
    pub display_name: String,
    pub active: bool,
    /// Our SP entity id; default `<public_url>/_sso/saml/<id>/metadata`.
    pub entity_id: Option<String>,
    pub idp_metadata_source: IdpMetadataSource,
    /// Parsed metadata for inline and file sources (checked at load time); `None` for a URL.
    pub idp_metadata: Option<Arc<IdpMetadata>>,
    pub idp_metadata_refresh: Duration,
    pub require_signed_assertions: bool,
    pub sign_requests: bool,
    /// PEM private key (RSA or EC) for signed AuthnRequests and LogoutRequests.
    pub sp_private_key: Option<Secret<String>>,
    /// PEM certificate matching `sp_private_key`, published in our SP metadata.
    pub sp_certificate: Option<String>,
    pub allow_idp_initiated: bool,
    pub clock_skew: Duration,
    pub insecure_allow_sha1: bool,
    /// SP-initiated Single Logout when the IdP metadata has an SLO endpoint (default true).
    pub idp_logout: bool,
    pub create_new_users: bool,
    pub default_company: Option<String>,
    pub debug: bool,
    pub claims: ClaimNames,
    pub groups: GroupsConfig,
    /// `file` or the name of the first environment variable that defined the connection.
    pub source: String,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSamlProvider {
    /// Always `saml` here (`split_raw` selected on it).
    #[allow(dead_code)]
    pub protocol: Option<String>,
    pub provider: Option<String>,
    pub display_name: Option<String>,
    pub active: Option<bool>,
    pub entity_id: Option<String>,
    pub idp_metadata: Option<String>,
    pub idp_metadata_refresh: Option<String>,
    pub require_signed_assertions: Option<bool>,
    pub sign_requests: Option<bool>,
    pub sp_private_key: Option<String>,
    pub sp_private_key_file: Option<String>,
    pub sp_certificate: Option<String>,
    pub sp_certificate_file: Option<String>,
    pub allow_idp_initiated: Option<bool>,
    pub clock_skew: Option<String>,
    pub insecure_allow_sha1: Option<bool>,
    pub idp_logout: Option<bool>,
    pub create_new_users: Option<bool>,
    pub default_company: Option<String>,
    pub debug: Option<bool>,
    pub claims: Option<RawClaims>,
    pub groups: Option<RawGroups>,
}

/// True when a raw `providers.<id>` mapping says `protocol: saml`.
pub(crate) fn is_saml(provider: &Value) -> bool {
    provider
        .get("protocol")
        .and_then(Value::as_str)
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("saml"))
}

/// Moves the (already schema-checked) SAML connections out of `root.providers`, so the OIDC
/// structs never see them, and deserializes them.
pub(crate) fn split_raw(root: &mut Value, cx: &mut Ctx) -> BTreeMap<String, RawSamlProvider> {
    let mut out = BTreeMap::new();
    let Some(Value::Mapping(providers)) = root.get_mut("providers") else {
        return out;
    };
    let ids: Vec<Value> = providers
        .iter()
        .filter(|(_, v)| is_saml(v))
        .map(|(k, _)| k.clone())
        .collect();
    for key in ids {
        let Some(value) = providers.shift_remove(&key) else {
            continue;
        };
        let id = key.as_str().unwrap_or("?").to_owned();
        match serde_yaml::from_value::<RawSamlProvider>(value) {
            Ok(raw) => {
                out.insert(id, raw);
            }
            Err(e) => cx.error(&format!("providers.{id}"), e.to_string()),
        }
    }
    out
}

/// Converts every SAML connection; display names must be unique across all connections.
pub(crate) fn convert_all(
    cx: &mut Ctx,
    raw: BTreeMap<String, RawSamlProvider>,
    oidc: &[OidcProviderConfig],
) -> Vec<SamlProviderConfig> {
    let mut out: Vec<SamlProviderConfig> = Vec::new();
    for (id, provider) in raw {
        let Some(converted) = convert(cx, &id, provider) else {
            continue;
        };
        let name = &converted.display_name;
        let taken = oidc
            .iter()
            .map(|p| (&p.display_name, &p.id))
            .chain(out.iter().map(|p| (&p.display_name, &p.id)))
            .find(|(n, _)| n.eq_ignore_ascii_case(name));
        if let Some((_, other)) = taken {
            let message = format!(
                "`{name}` is already the display name of connection `{other}`; display names must be unique"
            );
            cx.error(&format!("providers.{id}.display_name"), message);
        }
        out.push(converted);
    }
    out
}

/// For connections from ClearML variables, names the variable that would set `key`.
fn hint(source: &str, id: &str, key: &str) -> String {
    let secure = key.starts_with("sp_private_key") || key.starts_with("sp_certificate");
    super::provider::variable_hint(source, id, key, "saml_client", secure)
}

fn convert(cx: &mut Ctx, id: &str, raw: RawSamlProvider) -> Option<SamlProviderConfig> {
    let at = |key: &str| format!("providers.{id}.{key}");
    let source = cx.tree().provider_source(id);
    let preset = preset(cx, id, raw.provider.as_deref());
    let skew = raw.clock_skew.as_deref();
    let clock_skew = cx.duration(&at("clock_skew"), skew, Duration::from_secs(60));
    let refresh = raw.idp_metadata_refresh.as_deref();
    let idp_metadata_refresh = cx.duration(
        &at("idp_metadata_refresh"),
        refresh,
        Duration::from_secs(3600),
    );
    if idp_metadata_refresh < Duration::from_secs(1) {
        cx.error(&at("idp_metadata_refresh"), "must be at least 1s");
    }
    let metadata = idp_metadata(cx, id, &source, raw.idp_metadata.as_deref());
    let key = cx.secret(
        &at("sp_private_key"),
        raw.sp_private_key,
        raw.sp_private_key_file,
    );
    let cert = cx.secret(
        &at("sp_certificate"),
        raw.sp_certificate,
        raw.sp_certificate_file,
    );
    let sign_requests = raw.sign_requests.unwrap_or(false);
    let (sp_private_key, sp_certificate) = signing_pair(cx, id, &source, sign_requests, key, cert);
    let entity_id = raw
        .entity_id
        .map(|e| e.trim().to_owned())
        .filter(|e| !e.is_empty());
    let (idp_metadata_source, idp_metadata) = metadata?;
    Some(SamlProviderConfig {
        id: id.to_owned(),
        preset,
        display_name: non_empty(raw.display_name).unwrap_or_else(|| id.to_owned()),
        active: raw.active.unwrap_or(true),
        entity_id,
        idp_metadata_source,
        idp_metadata,
        idp_metadata_refresh,
        require_signed_assertions: raw.require_signed_assertions.unwrap_or(true),
        sign_requests,
        sp_private_key: sp_private_key.map(Secret::new),
        sp_certificate,
        allow_idp_initiated: raw.allow_idp_initiated.unwrap_or(false),
        clock_skew,
        insecure_allow_sha1: raw.insecure_allow_sha1.unwrap_or(false),
        idp_logout: raw.idp_logout.unwrap_or(true),
        create_new_users: raw.create_new_users.unwrap_or(true),
        default_company: non_empty(raw.default_company),
        debug: raw.debug.unwrap_or(false),
        claims: claims(preset, raw.claims.unwrap_or_default()),
        groups: groups(preset, raw.groups.unwrap_or_default()),
        source,
    })
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// The preset is `provider`, else the id when it names one, else `custom`.
fn preset(cx: &mut Ctx, id: &str, value: Option<&str>) -> SamlPreset {
    let find = |name: &str| {
        let name = name.trim().to_ascii_lowercase();
        PRESETS.iter().copied().find(|p| p.as_str() == name)
    };
    match value {
        Some(name) => find(name).unwrap_or_else(|| {
            let names: Vec<&str> = PRESETS.iter().map(|p| p.as_str()).collect();
            let message = format!("`{name}` is not one of: {}", names.join(", "));
            cx.error(&format!("providers.{id}.provider"), message);
            SamlPreset::Custom
        }),
        None => find(id).unwrap_or(SamlPreset::Custom),
    }
}

type Metadata = (IdpMetadataSource, Option<Arc<IdpMetadata>>);

/// `idp_metadata`: inline XML (starts with `<`), an http(s) URL, or a file path. Inline and
/// file metadata are parsed now; one without a signing certificate is refused.
fn idp_metadata(cx: &mut Ctx, id: &str, source: &str, value: Option<&str>) -> Option<Metadata> {
    let path = format!("providers.{id}.idp_metadata");
    let Some(text) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        let message = format!(
            "required: the IdP metadata as inline XML, an https:// URL or a file path{}",
            hint(source, id, "idp_metadata")
        );
        cx.error(&path, message);
        return None;
    };
    let (kind, xml) = if text.starts_with('<') {
        (IdpMetadataSource::Inline, text.to_owned())
    } else if text.starts_with("http://") || text.starts_with("https://") {
        let url = cx.url(&path, Some(text))?;
        return Some((IdpMetadataSource::Url(url), None));
    } else {
        match std::fs::read_to_string(text) {
            Ok(xml) => (IdpMetadataSource::File(PathBuf::from(text)), xml),
            Err(e) => {
                cx.error(
                    &path,
                    format!("cannot read the metadata file `{text}`: {e}"),
                );
                return None;
            }
        }
    };
    match metadata::parse(&xml) {
        Ok(parsed) => Some((kind, Some(Arc::new(parsed)))),
        Err(e) => {
            cx.error(&path, e.to_string());
            None
        }
    }
}

/// With `sign_requests`, both the key and the certificate are required and must match.
fn signing_pair(
    cx: &mut Ctx,
    id: &str,
    source: &str,
    sign_requests: bool,
    key: Option<String>,
    cert: Option<String>,
) -> (Option<String>, Option<String>) {
    let at = |key: &str| format!("providers.{id}.{key}");
    if !sign_requests {
        return (key, cert);
    }
    for (name, value) in [("sp_private_key", &key), ("sp_certificate", &cert)] {
        if value.is_none() {
            let message = format!(
                "required when sign_requests is true (PEM, or {name}_file){}",
                hint(source, id, name)
            );
            cx.error(&at(name), message);
        }
    }
    let (Some(key_pem), Some(cert_pem)) = (&key, &cert) else {
        return (None, None);
    };
    let pkey = openssl::pkey::PKey::private_key_from_pem(key_pem.as_bytes());
    let x509 = openssl::x509::X509::from_pem(cert_pem.as_bytes());
    match (pkey, x509) {
        (Err(_), _) => cx.error(&at("sp_private_key"), "is not a PEM private key"),
        (_, Err(_)) => cx.error(&at("sp_certificate"), "is not a PEM certificate"),
        (Ok(pkey), Ok(x509)) => {
            let matches = x509
                .public_key()
                .is_ok_and(|public| public.public_eq(&pkey));
            if !matches {
                cx.error(
                    &at("sp_certificate"),
                    "does not belong to sp_private_key (the public keys differ)",
                );
            }
        }
    }
    (key, cert)
}

fn claims(preset: SamlPreset, raw: RawClaims) -> ClaimNames {
    let [email, name, given, family, username, picture, _] = preset.attributes();
    let pick = |value: Option<String>, default: &str| {
        non_empty(value).unwrap_or_else(|| default.to_owned())
    };
    ClaimNames {
        user_id: pick(raw.user_id, NAMEID_CLAIM),
        email: pick(raw.email, email),
        name: pick(raw.name, name),
        given_name: pick(raw.given_name, given),
        family_name: pick(raw.family_name, family),
        picture: pick(raw.picture, picture),
        preferred_username: pick(raw.preferred_username, username),
    }
}

fn groups(preset: SamlPreset, raw: RawGroups) -> GroupsConfig {
    let [.., default_claim] = preset.attributes();
    GroupsConfig {
        claim: non_empty(raw.claim).unwrap_or_else(|| default_claim.to_owned()),
        enabled: raw.enabled.unwrap_or(false),
        admins: raw.admins.unwrap_or_default(),
        case_sensitive: raw.case_sensitive.unwrap_or(true),
        prohibit_user_signup_if_not_in_group: raw
            .prohibit_user_signup_if_not_in_group
            .unwrap_or(false),
    }
}
