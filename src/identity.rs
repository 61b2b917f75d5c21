//! Who the user is once a login succeeded: the `Identity` handed to sessions and headers,
//! claim mapping from ID-token/userinfo JSON, and the group, admin and signup rules.

use serde::{Deserialize, Serialize};

/// The mapped identity of a logged-in user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Identity {
    /// Mapped user id (`claims.user_id`, default `sub`).
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub admin: bool,
    /// Connection id the user logged in with.
    pub provider: String,
}

use serde_json::Value;

use crate::config::{ClaimNames, GroupsConfig, OidcProviderConfig, Preset, SamlProviderConfig};

/// Why a login was refused after the tokens were verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the identity provider sent no {0:?} claim for this user")]
    MissingUserId(String),
    #[error("your email address is not verified at the identity provider")]
    EmailNotVerified,
    #[error(
        "new users cannot sign up through this connection; ask an administrator for an invitation"
    )]
    SignupClosed,
    #[error("you are not a member of any group allowed to log in through this connection")]
    NotInAllowedGroup,
    #[error("your account is not allowed by this connection")]
    DomainNotAllowed,
}

/// A claim by name: the exact key first (names may contain dots, like URIs), then a dotted
/// path into nested objects (`realm_access.roles`).
pub fn claim<'a>(claims: &'a Value, name: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(name) {
        return Some(v);
    }
    name.split('.').try_fold(claims, |v, part| v.get(part))
}

/// A claim by a name that may list alternatives: `email|upn` is `email`, or `upn` when
/// `email` is absent.
pub fn claim_any<'a>(claims: &'a Value, names: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(names) {
        return Some(v);
    }
    names
        .split('|')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .find_map(|n| claim(claims, n))
}

fn claim_string(claims: &Value, name: &str) -> Option<String> {
    match claim_any(claims, name)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A list claim: a JSON array of strings, or one string (comma-separated values allowed).
pub fn claim_list(claims: &Value, name: &str) -> Vec<String> {
    match claim_any(claims, name) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str())
            .map(str::to_owned)
            .filter(|s| !s.is_empty())
            .collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// The rules that turn verified claims into an [`Identity`].
#[derive(Debug, Clone, Copy)]
pub struct MappingRules<'a> {
    pub provider: &'a str,
    pub claims: &'a ClaimNames,
    pub groups: &'a GroupsConfig,
    /// Keycloak role that makes the user an admin: a realm role (`realm_access.roles`) or a
    /// role of our own client (`resource_access.<client_id>.roles`), never another client's.
    pub admin_role: Option<&'a str>,
    /// Our client id at the IdP, whose client roles count for `admin_role`.
    pub client_id: &'a str,
}

/// Map claims into an identity. Groups always come from `groups.claim`; admin comes from
/// `groups.admins` (only when `groups.enabled`) or `admin_role`.
pub fn map_claims(claims: &Value, rules: &MappingRules<'_>) -> Result<Identity, Refusal> {
    let names = rules.claims;
    let user = claim_string(claims, &names.user_id)
        .ok_or_else(|| Refusal::MissingUserId(names.user_id.clone()))?;
    let given_name = claim_string(claims, &names.given_name);
    let family_name = claim_string(claims, &names.family_name);
    let name = claim_string(claims, &names.name).or_else(|| {
        let joined = [given_name.as_deref(), family_name.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        (!joined.is_empty()).then_some(joined)
    });
    let groups = claim_list(claims, &rules.groups.claim);
    let admin = (rules.groups.enabled
        && groups_intersect(&groups, &rules.groups.admins, rules.groups.case_sensitive))
        || rules
            .admin_role
            .is_some_and(|role| has_role(claims, rules.client_id, role));
    Ok(Identity {
        user,
        email: claim_string(claims, &names.email),
        preferred_username: claim_string(claims, &names.preferred_username),
        name,
        given_name,
        family_name,
        picture: claim_string(claims, &names.picture),
        groups,
        admin,
        provider: rules.provider.to_owned(),
    })
}

/// True when any of `have` is in `want`, honouring case sensitivity.
pub fn groups_intersect(have: &[String], want: &[String], case_sensitive: bool) -> bool {
    have.iter().any(|h| {
        want.iter().any(|w| {
            if case_sensitive {
                h == w
            } else {
                h.eq_ignore_ascii_case(w)
            }
        })
    })
}

fn has_role(claims: &Value, client_id: &str, role: &str) -> bool {
    let realm = claim_list(claims, "realm_access.roles");
    let client = claims
        .get("resource_access")
        .and_then(|r| r.get(client_id))
        .map(|c| claim_list(c, "roles"))
        .unwrap_or_default();
    realm.iter().chain(&client).any(|r| r == role)
}

/// The sign-up and admission rules of one connection.
#[derive(Debug, Clone, Copy)]
pub struct Admission<'a> {
    pub email_verification: bool,
    pub create_new_users: bool,
    pub groups: &'a GroupsConfig,
    /// Local group names (`directory.groups`).
    pub known_groups: &'a [String],
    /// Allowed Google `hd` domains (empty: any).
    pub hosted_domain: &'a [String],
    /// The IdP vouches for the `email` it sends without an `email_verified` claim (a directory
    /// the organisation runs: SAML IdPs, ADFS). Otherwise only a verified email may match a
    /// listed, invited or previously seen user.
    pub email_asserted: bool,
}

impl<'a> Admission<'a> {
    /// The rules of an OIDC connection.
    pub fn oidc(c: &'a OidcProviderConfig, known_groups: &'a [String]) -> Self {
        Self {
            email_verification: c.email_verification,
            create_new_users: c.create_new_users,
            groups: &c.groups,
            known_groups,
            hosted_domain: &c.hosted_domain,
            email_asserted: c.preset == Preset::MicrosoftAd,
        }
    }

    /// The rules of a SAML connection.
    pub fn saml(c: &'a SamlProviderConfig, known_groups: &'a [String]) -> Self {
        Self {
            email_verification: false,
            create_new_users: c.create_new_users,
            groups: &c.groups,
            known_groups,
            hosted_domain: &[],
            email_asserted: true,
        }
    }

    /// The email that may identify an already known user: only one the IdP verified (or
    /// vouches for), so nobody becomes a listed user by typing that address at a
    /// self-service IdP.
    pub fn trusted_email<'i>(&self, identity: &'i Identity, claims: &Value) -> Option<&'i str> {
        let email = identity.email.as_deref()?;
        (self.email_asserted || email_verified(claims)).then_some(email)
    }
}

/// `email_verified` is true (a boolean, or the string `"true"` some IdPs send).
fn email_verified(claims: &Value) -> bool {
    match claim(claims, "email_verified") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// Decide whether a verified, mapped user may log in. `is_known` says whether the user has
/// logged in before or is listed/invited. The group rule applies to every login, known users
/// included: a user whose last known group was taken away at the IdP is refused.
pub fn admit(
    identity: &Identity,
    claims: &Value,
    rules: &Admission<'_>,
    is_known: bool,
) -> Result<(), Refusal> {
    if rules.email_verification && !email_verified(claims) {
        return Err(Refusal::EmailNotVerified);
    }
    if !rules.hosted_domain.is_empty() {
        let hd = claim_string(claims, "hd").unwrap_or_default();
        if !rules
            .hosted_domain
            .iter()
            .any(|d| d.eq_ignore_ascii_case(&hd))
        {
            return Err(Refusal::DomainNotAllowed);
        }
    }
    if rules.groups.enabled
        && rules.groups.prohibit_user_signup_if_not_in_group
        && !groups_intersect(
            &identity.groups,
            rules.known_groups,
            rules.groups.case_sensitive,
        )
    {
        return Err(Refusal::NotInAllowedGroup);
    }
    if !is_known && !rules.create_new_users {
        return Err(Refusal::SignupClosed);
    }
    Ok(())
}

#[cfg(test)]
#[path = "identity_tests.rs"]
mod tests;
