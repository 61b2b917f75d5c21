//! Raw provider → [`OidcProviderConfig`]: preset defaults, discovery or explicit endpoints, PKCE,
//! scopes, claims, groups, the ID-token algorithm allowlist and unique display names.

use std::collections::BTreeMap;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use url::Url;

use super::file::{RawClaims, RawGroups, RawProvider};
use super::validate::Ctx;
use super::{
    ClaimNames, GroupsConfig, OidcEndpoints, OidcProviderConfig, PkceMethod, Preset, Secret,
};

const PRESETS: &[Preset] = &[
    Preset::Custom,
    Preset::Keycloak,
    Preset::Auth0,
    Preset::Cognito,
    Preset::Google,
    Preset::MicrosoftAd,
    Preset::Azure,
    Preset::Okta,
    Preset::Ping,
];

const DEFAULT_ALGS: &[Algorithm] = &[Algorithm::RS256, Algorithm::PS256, Algorithm::ES256];
const DEFAULT_SCOPES: &[&str] = &["openid", "profile", "email"];
const GOOGLE_ISSUER: &str = "https://accounts.google.com";
const GRAPH_URL: &str = "https://graph.microsoft.com";

/// `[a-z0-9_-]+`: ids appear in callback paths and ClearML variable names.
pub(crate) fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Converts every connection (sorted by id) and checks that display names are unique.
pub(crate) fn convert_all(
    cx: &mut Ctx,
    raw: BTreeMap<String, RawProvider>,
) -> Vec<OidcProviderConfig> {
    let mut out: Vec<OidcProviderConfig> = Vec::new();
    for (id, provider) in raw {
        let Some(converted) = convert(cx, &id, provider) else {
            continue;
        };
        let duplicate = out
            .iter()
            .find(|p| p.display_name.eq_ignore_ascii_case(&converted.display_name));
        if let Some(first) = duplicate {
            let message = format!(
                "`{}` is already the display name of connection `{}`; display names must be unique",
                converted.display_name, first.id
            );
            cx.error(&format!("providers.{id}.display_name"), message);
        }
        out.push(converted);
    }
    out
}

/// For connections from the environment, names the variable that would set `key`:
/// ` (set CLEARML__…)`. Empty for connections from the file, whose key is already named.
fn hint(source: &str, id: &str, key: &str) -> String {
    let secure = key == "client_id" || key.starts_with("client_secret");
    variable_hint(source, id, key, "oauth_client", secure)
}

/// The variable hint for either protocol: `kind` is ClearML's `oauth_client` or `saml_client`,
/// `secure` picks its `secure` namespace over `services`.
pub(crate) fn variable_hint(source: &str, id: &str, key: &str, kind: &str, secure: bool) -> String {
    if source.starts_with("CLEARML__") || source.starts_with("TRAINS__") {
        let namespace = if secure { "secure" } else { "services" };
        format!(" (set CLEARML__{namespace}__login__sso__{kind}__{id}__{key})")
    } else if source.starts_with("SSO_PROXY__") {
        let var = format!("SSO_PROXY__PROVIDERS__{id}__{key}").to_ascii_uppercase();
        format!(" (set {var})")
    } else {
        String::new()
    }
}

fn convert(cx: &mut Ctx, id: &str, raw: RawProvider) -> Option<OidcProviderConfig> {
    let at = |key: &str| format!("providers.{id}.{key}");
    let source = cx.tree().provider_source(id);
    let preset = preset(cx, id, raw.protocol.as_deref(), raw.provider.as_deref());
    let discovery = discovery(cx, id, &source, preset, &raw);
    let client_id = client_id(cx, id, &source, raw.client_id.as_deref());
    let secret = cx.secret(
        &at("client_secret"),
        raw.client_secret,
        raw.client_secret_file,
    );
    let method = raw.code_challenge_method;
    let pkce = pkce(cx, &at("code_challenge_method"), raw.code_challenge, method);
    let groups_enabled = raw.groups.as_ref().and_then(|g| g.enabled).unwrap_or(false);
    let mut scopes = scopes(raw.scopes, raw.additional_scopes);
    // Okta sends the groups claim only for the `groups` scope.
    if preset == Preset::Okta && groups_enabled && !scopes.iter().any(|s| s == "groups") {
        scopes.push("groups".to_owned());
    }
    let allowed_algs = algorithms(cx, &at("id_token_signing_algs"), raw.id_token_signing_algs);
    let skew = raw.clock_skew.as_deref();
    let clock_skew = cx.duration(&at("clock_skew"), skew, Duration::from_secs(60));
    let graph_url = match raw.graph_url.as_deref() {
        Some(url) => cx.url(&at("graph_url"), Some(url)),
        None if matches!(preset, Preset::Azure | Preset::MicrosoftAd) => Url::parse(GRAPH_URL).ok(),
        None => None,
    };
    let (issuer, base_url, endpoints) = discovery?;
    let issuer_text = issuer.as_ref().and(non_empty(raw.issuer.clone()));
    Some(OidcProviderConfig {
        id: id.to_owned(),
        preset,
        display_name: non_empty(raw.display_name).unwrap_or_else(|| id.to_owned()),
        active: raw.active.unwrap_or(true),
        issuer,
        issuer_text,
        base_url,
        endpoints,
        client_id,
        client_secret: secret.map(Secret::new),
        code_challenge_method: pkce,
        scopes,
        user_info_from_id_token: raw.user_info_from_id_token.unwrap_or(true),
        get_info_from_access_token: raw
            .get_info_from_access_token
            .unwrap_or(preset == Preset::Keycloak),
        email_verification: raw.email_verification.unwrap_or(false),
        create_new_users: raw.create_new_users.unwrap_or(true),
        verify_token_signature: raw.verify_token_signature.unwrap_or(true),
        claims: claims(preset, raw.claims.unwrap_or_default()),
        groups: groups(preset, raw.groups.unwrap_or_default()),
        admin_role: admin_role(preset, raw.admin_role),
        idp_logout: raw.idp_logout.unwrap_or(false),
        default_company: non_empty(raw.default_company),
        hosted_domain: raw.hosted_domain.unwrap_or_default(),
        graph_url,
        debug: raw.debug.unwrap_or(false),
        clock_skew,
        allowed_algs,
        source,
    })
}

/// Keycloak maps the realm or client role `admin` unless told otherwise, as ClearML does; an
/// empty value turns role mapping off. Other presets map no role unless one is named.
fn admin_role(preset: Preset, value: Option<String>) -> Option<String> {
    match value {
        None if preset == Preset::Keycloak => Some(DEFAULT_KEYCLOAK_ADMIN_ROLE.to_owned()),
        other => non_empty(other),
    }
}

/// ClearML's default Keycloak role for administrators.
const DEFAULT_KEYCLOAK_ADMIN_ROLE: &str = "admin";

fn non_empty(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn client_id(cx: &mut Ctx, id: &str, source: &str, value: Option<&str>) -> String {
    let client_id = value.map(str::trim).unwrap_or_default();
    if client_id.is_empty() {
        let message = format!("required{}", hint(source, id, "client_id"));
        cx.error(&format!("providers.{id}.client_id"), message);
    }
    client_id.to_owned()
}

/// Checks `protocol`; the preset is `provider`, else the id when it names one, else `custom`.
fn preset(cx: &mut Ctx, id: &str, protocol: Option<&str>, value: Option<&str>) -> Preset {
    if let Some(protocol) = protocol.map(str::trim) {
        if !protocol.eq_ignore_ascii_case("oidc") {
            let message = format!("`{protocol}` is not one of: oidc, saml");
            cx.error(&format!("providers.{id}.protocol"), message);
        }
    }
    let find = |name: &str| {
        let name = name.trim().to_ascii_lowercase();
        PRESETS.iter().copied().find(|p| p.as_str() == name)
    };
    match value {
        Some(name) => find(name).unwrap_or_else(|| {
            let names: Vec<&str> = PRESETS.iter().map(|p| p.as_str()).collect();
            let message = format!("`{name}` is not one of: {}", names.join(", "));
            cx.error(&format!("providers.{id}.provider"), message);
            Preset::Custom
        }),
        None => find(id).unwrap_or(Preset::Custom),
    }
}

type Discovery = (Option<Url>, Option<Url>, OidcEndpoints);

/// Parses the endpoint URLs and checks that discovery or explicit endpoints are possible.
fn discovery(
    cx: &mut Ctx,
    id: &str,
    source: &str,
    preset: Preset,
    raw: &RawProvider,
) -> Option<Discovery> {
    let at = |key: &str| format!("providers.{id}.{key}");
    let mut url = |key: &str, value: &Option<String>| cx.url(&at(key), value.as_deref());
    let base_url = url("base_url", &raw.base_url);
    let mut issuer = url("issuer", &raw.issuer);
    let endpoints = OidcEndpoints {
        authorize_url: url("authorize_url", &raw.authorize_url),
        access_token_url: url("access_token_url", &raw.access_token_url),
        revocation_url: url("revocation_url", &raw.revocation_url),
        userinfo_url: url("userinfo_url", &raw.userinfo_url),
        jwks_uri: url("jwks_uri", &raw.jwks_uri),
        end_session_url: url("end_session_url", &raw.end_session_url),
    };
    let given = |value: &Option<String>| value.as_deref().is_some_and(|v| !v.trim().is_empty());
    if preset == Preset::Keycloak {
        if issuer.is_none() {
            issuer = base_url.as_ref().map(issuer_from_base_url);
        }
        if !given(&raw.base_url) && !given(&raw.issuer) {
            let message = format!(
                "Keycloak needs base_url (the realm URL) or issuer{}",
                hint(source, id, "base_url")
            );
            cx.error(&at("base_url"), message);
            return None;
        }
    } else if preset == Preset::Google && !given(&raw.issuer) {
        issuer = Url::parse(GOOGLE_ISSUER).ok();
    } else if !given(&raw.issuer) && !explicit_endpoints(cx, id, source, raw) {
        return None;
    }
    Some((issuer, base_url, endpoints))
}

/// Without an issuer, the authorization and token endpoints must be explicit; the issuer and
/// the JWKS URI are then discovered from the authorization endpoint's parent paths.
fn explicit_endpoints(cx: &mut Ctx, id: &str, source: &str, raw: &RawProvider) -> bool {
    let given = |value: &Option<String>| value.as_deref().is_some_and(|v| !v.trim().is_empty());
    let checks = [
        ("authorize_url", &raw.authorize_url, true),
        ("access_token_url", &raw.access_token_url, true),
    ];
    let missing: Vec<&str> = checks
        .into_iter()
        .filter(|(_, value, needed)| *needed && !given(value))
        .map(|(key, _, _)| key)
        .collect();
    if missing.is_empty() {
        return true;
    }
    let message = format!(
        "needs issuer (discovery) or explicit endpoints; missing {}{}",
        missing.join(", "),
        hint(source, id, "issuer")
    );
    cx.error(&format!("providers.{id}.issuer"), message);
    false
}

/// Keycloak's issuer is the realm base URL without a trailing slash.
fn issuer_from_base_url(base_url: &Url) -> Url {
    let mut issuer = base_url.clone();
    let path = issuer.path().trim_end_matches('/').to_owned();
    if !path.is_empty() {
        issuer.set_path(&path);
    }
    issuer
}

fn pkce(cx: &mut Ctx, path: &str, enabled: Option<bool>, method: Option<String>) -> PkceMethod {
    let method = match method.as_deref().map(str::trim) {
        None => PkceMethod::S256,
        Some(m) if m.eq_ignore_ascii_case("s256") => PkceMethod::S256,
        Some(m) if m.eq_ignore_ascii_case("plain") => PkceMethod::Plain,
        Some(m) if m.eq_ignore_ascii_case("none") || m.is_empty() => PkceMethod::None,
        Some(m) => {
            cx.error(path, format!("`{m}` is not one of: none, plain, S256"));
            PkceMethod::S256
        }
    };
    if enabled == Some(false) {
        PkceMethod::None
    } else {
        method
    }
}

/// `scopes` (default `openid,profile,email`) then `additional_scopes`, deduplicated, `openid` first.
fn scopes(scopes: Option<Vec<String>>, additional: Option<Vec<String>>) -> Vec<String> {
    let base = scopes.unwrap_or_else(|| DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect());
    let mut out = vec!["openid".to_owned()];
    let all = base.iter().chain(additional.iter().flatten());
    for scope in all.flat_map(|s| s.split([',', ' ', '\t'])) {
        if !scope.is_empty() && !out.iter().any(|s| s == scope) {
            out.push(scope.to_owned());
        }
    }
    out
}

fn algorithms(cx: &mut Ctx, path: &str, names: Option<Vec<String>>) -> Vec<Algorithm> {
    let Some(names) = names else {
        return DEFAULT_ALGS.to_vec();
    };
    let mut out = Vec::new();
    for name in &names {
        match parse_algorithm(name.trim()) {
            Ok(alg) if !out.contains(&alg) => out.push(alg),
            Ok(_) => {}
            Err(message) => cx.error(path, message),
        }
    }
    if names.is_empty() {
        cx.error(path, "must name at least one algorithm");
    }
    out
}

fn parse_algorithm(name: &str) -> Result<Algorithm, String> {
    let upper = name.to_ascii_uppercase();
    let alg = match upper.as_str() {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EDDSA" => Algorithm::EdDSA,
        "NONE" => return Err("`none` is never accepted for ID tokens".to_owned()),
        hs if hs.starts_with("HS") => {
            return Err(format!(
                "`{name}`: HMAC algorithms are not accepted for ID tokens"
            ))
        }
        _ => {
            return Err(format!(
                "`{name}` is not one of: RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA"
            ))
        }
    };
    Ok(alg)
}

/// Claim names: configured ones win; presets know their IdP's usual names. `a|b` means "`a`,
/// or `b` when `a` is absent".
fn claims(preset: Preset, raw: RawClaims) -> ClaimNames {
    let pick = |value: Option<String>, default: &str| {
        non_empty(value).unwrap_or_else(|| default.to_owned())
    };
    let (email, username, name) = match preset {
        // ADFS: `upn`/`unique_name` instead of email/username.
        Preset::MicrosoftAd => ("email|upn", "upn|unique_name", "name|unique_name"),
        // Entra ID: work accounts often lack `email`; `preferred_username` is the UPN.
        Preset::Azure => ("email|preferred_username|upn", "preferred_username", "name"),
        // Cognito's username claim.
        Preset::Cognito => ("email", "cognito:username|preferred_username", "name"),
        _ => ("email", "preferred_username", "name"),
    };
    ClaimNames {
        user_id: pick(raw.user_id, "sub"),
        email: pick(raw.email, email),
        name: pick(raw.name, name),
        given_name: pick(raw.given_name, "given_name"),
        family_name: pick(raw.family_name, "family_name"),
        picture: pick(raw.picture, "picture"),
        preferred_username: pick(raw.preferred_username, username),
    }
}

fn groups(preset: Preset, raw: RawGroups) -> GroupsConfig {
    let default_claim = match preset {
        Preset::Cognito => "cognito:groups",
        Preset::MicrosoftAd => "group|groups",
        _ => "groups",
    };
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
