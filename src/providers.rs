//! The connection registry: every configured identity-provider connection, swapped whole
//! (ArcSwap) so a change never disturbs logins in flight.

pub mod backchannel;
pub mod id_token;
pub mod jwks;
pub mod oidc;
pub mod refresh;

use std::collections::BTreeMap;
use std::sync::Arc;

use url::Url;

use crate::config::OidcProviderConfig;
use jwks::JwksCache;
use oidc::{OidcError, OidcProvider};

/// All connections, by id.
#[derive(Default)]
pub struct Registry {
    providers: BTreeMap<String, Arc<OidcProvider>>,
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
        Ok(Registry { providers })
    }

    pub fn get(&self, id: &str) -> Option<&Arc<OidcProvider>> {
        self.providers.get(id)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.providers.contains_key(id)
    }

    /// Active connections, ordered by display name.
    pub fn active(&self) -> Vec<&Arc<OidcProvider>> {
        let mut v: Vec<_> = self
            .providers
            .values()
            .filter(|p| p.config.active)
            .collect();
        v.sort_by(|a, b| a.config.display_name.cmp(&b.config.display_name));
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
