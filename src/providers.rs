//! The connection registry: every configured identity-provider connection, swapped whole
//! (ArcSwap) so a change never disturbs logins in flight.

pub mod backchannel;
pub mod id_token;
pub mod jwks;
pub mod key_refresh;
pub mod oidc;
pub mod refresh;
pub mod retired;
pub mod saml;

use std::collections::BTreeMap;
use std::sync::Arc;

use url::Url;

use crate::config::{OidcProviderConfig, SamlProviderConfig};
use jwks::JwksCache;
use oidc::{OidcError, OidcProvider};
use saml::{SamlError, SamlProvider};

/// All connections, by id.
#[derive(Default)]
pub struct Registry {
    providers: BTreeMap<String, Arc<OidcProvider>>,
    saml: BTreeMap<String, Arc<SamlProvider>>,
}

/// One connection of either protocol, as the login chooser and readiness see it.
#[derive(Clone, Copy)]
pub enum Connection<'a> {
    Oidc(&'a Arc<OidcProvider>),
    Saml(&'a Arc<SamlProvider>),
}

impl Connection<'_> {
    pub fn id(&self) -> &str {
        match self {
            Connection::Oidc(p) => p.id(),
            Connection::Saml(p) => p.id(),
        }
    }

    pub fn display_name(&self) -> &str {
        match self {
            Connection::Oidc(p) => &p.config.display_name,
            Connection::Saml(p) => &p.config.display_name,
        }
    }

    pub fn is_ready(&self) -> bool {
        match self {
            Connection::Oidc(p) => p.is_ready(),
            Connection::Saml(p) => p.is_ready(),
        }
    }
}

impl Registry {
    pub fn build(
        configs: &[OidcProviderConfig],
        public_url: &Url,
        http: &reqwest::Client,
        jwks: &Arc<JwksCache>,
    ) -> Result<Self, OidcError> {
        let mut providers = BTreeMap::new();
        for c in configs {
            let p = OidcProvider::new(c.clone(), public_url, http.clone(), jwks.clone())?;
            providers.insert(c.id.clone(), Arc::new(p));
        }
        Ok(Registry {
            providers,
            saml: BTreeMap::new(),
        })
    }

    /// Adds the SAML connections.
    pub fn with_saml(
        mut self,
        configs: &[SamlProviderConfig],
        public_url: &Url,
        http: &reqwest::Client,
    ) -> Result<Self, SamlError> {
        for c in configs {
            let p = SamlProvider::new(c.clone(), public_url, http.clone())?;
            self.saml.insert(c.id.clone(), Arc::new(p));
        }
        Ok(self)
    }

    /// Adds (or replaces) a built OIDC connection; the admin plane assembles registries from
    /// the configured connections and its store.
    pub fn insert_oidc(&mut self, provider: Arc<OidcProvider>) {
        self.providers.insert(provider.id().to_owned(), provider);
    }

    /// Adds (or replaces) a built SAML connection.
    pub fn insert_saml(&mut self, provider: Arc<SamlProvider>) {
        self.saml.insert(provider.id().to_owned(), provider);
    }

    /// A SAML connection by id.
    pub fn get_saml(&self, id: &str) -> Option<&Arc<SamlProvider>> {
        self.saml.get(id)
    }

    /// Every SAML connection.
    pub fn saml_all(&self) -> impl Iterator<Item = &Arc<SamlProvider>> {
        self.saml.values()
    }

    pub fn get(&self, id: &str) -> Option<&Arc<OidcProvider>> {
        self.providers.get(id)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.providers.contains_key(id) || self.saml.contains_key(id)
    }

    /// Active connections of both protocols, ordered by display name.
    pub fn active(&self) -> Vec<Connection<'_>> {
        let oidc = self.providers.values().filter(|p| p.config.active);
        let saml = self.saml.values().filter(|p| p.config.active);
        let mut v: Vec<Connection<'_>> = oidc
            .map(Connection::Oidc)
            .chain(saml.map(Connection::Saml))
            .collect();
        v.sort_by(|a, b| a.display_name().cmp(b.display_name()));
        v
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<OidcProvider>> {
        self.providers.values()
    }
}

/// A short, secret-free description of an HTTP client error.
pub fn describe_http_error(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_decode() || e.is_body() {
        "bad response body"
    } else {
        "request failed"
    };
    match e.url() {
        Some(u) => format!(
            "{kind} ({}://{}{})",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.path()
        ),
        None => kind.to_owned(),
    }
}
