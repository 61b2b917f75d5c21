//! One connection validated on its own, through exactly the code the loader runs for
//! `providers.<id>` (key schema, coercion, preset defaults, conversion): what the admin API uses
//! to create and update connections. Problems name the connection's own key (`client_id`,
//! `claims.email`, `idp_metadata`), as they would appear under `providers.<id>.` in the file.

use serde_yaml::{Mapping, Value};

use super::env::Tree;
use super::validate::Ctx;
use super::{file, provider, saml, ConfigProblem, OidcProviderConfig, SamlProviderConfig};

/// A validated connection of either protocol.
#[derive(Debug, Clone)]
pub enum ValidConnection {
    Oidc(Box<OidcProviderConfig>),
    Saml(Box<SamlProviderConfig>),
}

impl ValidConnection {
    pub fn id(&self) -> &str {
        match self {
            ValidConnection::Oidc(c) => &c.id,
            ValidConnection::Saml(c) => &c.id,
        }
    }

    pub fn display_name(&self) -> &str {
        match self {
            ValidConnection::Oidc(c) => &c.display_name,
            ValidConnection::Saml(c) => &c.display_name,
        }
    }

    /// `oidc` or `saml`.
    pub fn protocol(&self) -> &'static str {
        match self {
            ValidConnection::Oidc(_) => "oidc",
            ValidConnection::Saml(_) => "saml",
        }
    }

    /// The preset name (`keycloak`, `duo`, ...).
    pub fn preset(&self) -> &'static str {
        match self {
            ValidConnection::Oidc(c) => c.preset.as_str(),
            ValidConnection::Saml(c) => c.preset.as_str(),
        }
    }

    /// Sets where the connection came from (`admin` for the admin plane's store).
    pub fn set_source(&mut self, source: &str) {
        match self {
            ValidConnection::Oidc(c) => c.source = source.to_owned(),
            ValidConnection::Saml(c) => c.source = source.to_owned(),
        }
    }
}

/// Validates `settings` (the keys of `providers.<id>`, as JSON) for connection `id`. On
/// failure returns every problem; each `key` is relative to the connection (`client_id`), and
/// `id` itself when the id is malformed.
pub fn validate_connection(
    id: &str,
    settings: &serde_json::Value,
) -> Result<ValidConnection, Vec<ConfigProblem>> {
    let value = serde_yaml::to_value(settings).map_err(|e| {
        vec![ConfigProblem {
            key: String::new(),
            message: format!("cannot read the settings: {e}"),
        }]
    })?;
    let mut providers = Mapping::new();
    providers.insert(Value::from(id), value);
    let mut root = Mapping::new();
    root.insert(Value::from("providers"), Value::Mapping(providers));
    let mut tree = Tree::default();
    tree.set_file(root);
    let mut problems = Vec::new();
    let raw = file::normalize(&mut tree, &mut problems);
    let mut cx = Ctx::new(&tree);
    let oidc = provider::convert_all(&mut cx, raw.providers.unwrap_or_default());
    let mut saml = saml::convert_all(&mut cx, raw.saml_providers, &oidc);
    problems.append(&mut cx.problems);
    if !problems.is_empty() {
        let prefix = format!("providers.{id}");
        for p in &mut problems {
            p.key = match p.key.strip_prefix(&prefix) {
                Some("") => "id".to_owned(),
                Some(rest) => rest.trim_start_matches('.').to_owned(),
                None => p.key.clone(),
            };
        }
        return Err(problems);
    }
    match (oidc.into_iter().next(), saml.pop()) {
        (Some(c), _) => Ok(ValidConnection::Oidc(Box::new(c))),
        (None, Some(c)) => Ok(ValidConnection::Saml(Box::new(c))),
        (None, None) => Err(vec![ConfigProblem {
            key: String::new(),
            message: "the settings describe no connection".to_owned(),
        }]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(result: Result<ValidConnection, Vec<ConfigProblem>>) -> Vec<String> {
        match result {
            Ok(_) => Vec::new(),
            Err(problems) => problems.into_iter().map(|p| p.key).collect(),
        }
    }

    #[test]
    fn a_complete_oidc_connection_gets_preset_defaults() {
        let settings = json!({"provider": "keycloak", "base_url": "https://kc.example/realms/x",
            "client_id": "app", "client_secret": "s", "groups": {"enabled": "true"}});
        let Ok(ValidConnection::Oidc(c)) = validate_connection("kc", &settings) else {
            panic!("expected an OIDC connection");
        };
        assert_eq!(c.display_name, "kc");
        assert!(c.get_info_from_access_token && c.groups.enabled);
        assert_eq!(
            c.issuer.as_ref().map(|u| u.as_str()),
            Some("https://kc.example/realms/x")
        );
    }

    #[test]
    fn problems_name_the_connection_key() {
        let settings = json!({"provider": "custom", "issuer": "not a url",
            "claims": {"emial": "x"}, "code_challenge_method": "S512"});
        let mut got = keys(validate_connection("c1", &settings));
        got.sort();
        assert_eq!(
            got,
            [
                "claims.emial",
                "client_id",
                "code_challenge_method",
                "issuer"
            ]
        );
        assert_eq!(keys(validate_connection("Bad Id", &json!({}))), ["id"]);
    }

    #[test]
    fn saml_without_signing_certificate_is_refused() {
        let xml = r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>"#;
        let settings = json!({"protocol": "saml", "idp_metadata": xml});
        assert_eq!(keys(validate_connection("s1", &settings)), ["idp_metadata"]);
    }
}
