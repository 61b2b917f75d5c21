//! The connection registry as the admin plane assembles it: the configured connections (file
//! and environment; replaced by a configuration reload) plus the stored ones, rebuilt and swapped whole on
//! every change. A stored connection whose settings did not change keeps its provider object
//! (discovery results, JWKS and replay caches); a new or changed one is built afresh and its
//! discovery (OIDC) or metadata fetch (SAML from a URL) starts in the background at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use url::Url;

use super::AdminState;
use crate::app::App;
use crate::config::{validate_connection, Config, ValidConnection};
use crate::providers::jwks::JwksCache;
use crate::providers::oidc::OidcProvider;
use crate::providers::saml::SamlProvider;
use crate::providers::Registry;
use crate::store::{StoreError, StoredConnection};

/// The `source` of connections made through the admin plane.
pub const ADMIN_SOURCE: &str = "admin";

/// A built connection of either protocol.
#[derive(Clone)]
pub enum Built {
    Oidc(Arc<OidcProvider>),
    Saml(Arc<SamlProvider>),
}

impl Built {
    pub fn id(&self) -> &str {
        match self {
            Built::Oidc(p) => p.id(),
            Built::Saml(p) => p.id(),
        }
    }

    pub fn display_name(&self) -> &str {
        match self {
            Built::Oidc(p) => &p.config.display_name,
            Built::Saml(p) => &p.config.display_name,
        }
    }

    fn insert_into(self, registry: &mut Registry) {
        match self {
            Built::Oidc(p) => registry.insert_oidc(p),
            Built::Saml(p) => registry.insert_saml(p),
        }
    }

    /// Start discovery / the metadata fetch in the background when the connection is active
    /// and not ready yet (needs a tokio runtime; without one, the first login discovers).
    pub fn warm_up(&self) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        match self {
            Built::Oidc(p) if p.config.active && !p.is_ready() => {
                rt.spawn(discover(p.clone()));
            }
            Built::Saml(p) if p.config.active && !p.is_ready() => {
                rt.spawn(fetch_metadata(p.clone()));
            }
            _ => {}
        }
    }
}

/// Build a validated connection into its provider.
pub fn build(
    valid: ValidConnection,
    public_url: &Url,
    http: &reqwest::Client,
    jwks: &Arc<JwksCache>,
) -> Result<Built, String> {
    match valid {
        ValidConnection::Oidc(c) => OidcProvider::new(*c, public_url, http.clone(), jwks.clone())
            .map(|p| Built::Oidc(Arc::new(p)))
            .map_err(|e| e.to_string()),
        ValidConnection::Saml(c) => SamlProvider::new(*c, public_url, http.clone())
            .map(|p| Built::Saml(Arc::new(p)))
            .map_err(|e| e.to_string()),
    }
}

/// The settings a stored connection is validated with: its settings plus `active`.
pub fn effective_settings(c: &StoredConnection) -> serde_json::Value {
    let mut settings = c.settings.clone();
    if let Some(map) = settings.as_object_mut() {
        map.insert("active".to_owned(), c.active.into());
    }
    settings
}

fn fingerprint(c: &StoredConnection) -> String {
    let digest = Sha256::digest(effective_settings(c).to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn build_stored(
    c: &StoredConnection,
    public_url: &Url,
    http: &reqwest::Client,
    jwks: &Arc<JwksCache>,
) -> Result<Built, String> {
    let mut valid = validate_connection(&c.id, &effective_settings(c)).map_err(|problems| {
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        text.join("; ")
    })?;
    valid.set_source(ADMIN_SOURCE);
    build(valid, public_url, http, jwks)
}

fn previous(registry: &Registry, id: &str) -> Option<Built> {
    if let Some(p) = registry.get(id) {
        return Some(Built::Oidc(p.clone()));
    }
    registry.get_saml(id).map(|p| Built::Saml(p.clone()))
}

fn shadowed() -> String {
    "a connection with this id is configured in the file or environment, which wins".to_owned()
}

impl AdminState {
    /// At start-up: adds the stored connections to the configured ones. A stored connection
    /// that does not validate (or whose id the configuration uses) is left out and reported.
    pub fn load_stored(
        &self,
        mut registry: Registry,
        config: &Config,
        http: &reqwest::Client,
        jwks: &Arc<JwksCache>,
    ) -> Registry {
        let stored = self.store.list_connections().unwrap_or_else(|e| {
            tracing::error!(error = %e, "stored connections could not be read");
            Vec::new()
        });
        let mut fingerprints = HashMap::new();
        let mut errors = std::collections::BTreeMap::new();
        for c in &stored {
            if registry.contains(&c.id) {
                tracing::warn!(provider = %c.id, "stored connection ignored: {}", shadowed());
                errors.insert(c.id.clone(), shadowed());
                continue;
            }
            match build_stored(c, &config.public_url, http, jwks) {
                Ok(built) => {
                    fingerprints.insert(c.id.clone(), fingerprint(c));
                    built.insert_into(&mut registry);
                }
                Err(e) => {
                    tracing::error!(provider = %c.id, error = %e, "stored connection could not be loaded");
                    errors.insert(c.id.clone(), e);
                }
            }
        }
        if let Ok(mut built) = self.built.lock() {
            *built = fingerprints;
        }
        if let Ok(mut load_errors) = self.load_errors.lock() {
            *load_errors = errors;
        }
        registry
    }
}

/// Rebuild the registry from the configured connections and the store, and swap it in.
/// `fresh` is the connection just saved (already built, with prefetched SAML metadata).
pub fn rebuild(app: &App, fresh: Option<Built>) -> Result<(), StoreError> {
    let old = app.registry.load_full();
    let configured = configured_connections(&old);
    assemble(app, &old, configured, fresh)
}

/// A configuration reload: `configured` (the connections of the file and environment, built)
/// replaces the configured part of the registry; the stored connections are assembled on top
/// as on every admin change, and the result is swapped in. Serialised with admin changes.
pub async fn replace_configured(app: &App, configured: Registry) -> Result<(), StoreError> {
    let _change = app.admin.changes.lock().await;
    let old = app.registry.load_full();
    assemble(app, &old, configured, None)
}

/// The connections of `registry` that come from the file or the environment.
pub fn configured_connections(registry: &Registry) -> Registry {
    let mut next = Registry::default();
    for p in registry.all().filter(|p| p.config.source != ADMIN_SOURCE) {
        next.insert_oidc(p.clone());
    }
    for p in registry
        .saml_all()
        .filter(|p| p.config.source != ADMIN_SOURCE)
    {
        next.insert_saml(p.clone());
    }
    next
}

/// `next` (the configured connections) plus the stored ones, swapped in for `old`.
fn assemble(
    app: &App,
    old: &Registry,
    mut next: Registry,
    fresh: Option<Built>,
) -> Result<(), StoreError> {
    let admin = &app.admin;
    let stored = admin.store.list_connections()?;
    let known = admin.built.lock().map(|b| b.clone()).unwrap_or_default();
    let mut fingerprints = HashMap::new();
    let mut errors = std::collections::BTreeMap::new();
    for c in &stored {
        if next.contains(&c.id) {
            errors.insert(c.id.clone(), shadowed());
            continue;
        }
        let fp = fingerprint(c);
        let reused = (known.get(&c.id) == Some(&fp))
            .then(|| previous(old, &c.id))
            .flatten();
        let (built, is_new) = match (&fresh, reused) {
            (Some(f), _) if f.id() == c.id => (Ok(f.clone()), true),
            (_, Some(p)) => (Ok(p), false),
            _ => (
                build_stored(c, &app.config.public_url, &app.http, &app.jwks),
                true,
            ),
        };
        match built {
            Ok(b) => {
                if is_new {
                    b.warm_up();
                }
                fingerprints.insert(c.id.clone(), fp);
                b.insert_into(&mut next);
            }
            Err(e) => {
                tracing::error!(provider = %c.id, error = %e, "stored connection could not be loaded");
                errors.insert(c.id.clone(), e);
            }
        }
    }
    app.retired.retire_replaced(old, &next);
    app.registry.store(Arc::new(next));
    if let Ok(mut built) = admin.built.lock() {
        *built = fingerprints;
    }
    if let Ok(mut load_errors) = admin.load_errors.lock() {
        *load_errors = errors;
    }
    Ok(())
}

/// Discovery with backoff until it works, or until the connection left the registry (only
/// this task still holds it).
async fn discover(p: Arc<OidcProvider>) {
    let mut delay = Duration::from_millis(250);
    while !p.is_ready() && Arc::strong_count(&p) > 1 {
        match p.discover().await {
            Ok(_) => tracing::info!(provider = %p.id(), "connection ready"),
            Err(e) => {
                tracing::warn!(provider = %p.id(), error = %e, "discovery failed; will retry");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}

async fn fetch_metadata(p: Arc<SamlProvider>) {
    let mut delay = Duration::from_millis(250);
    while !p.is_ready() && Arc::strong_count(&p) > 1 {
        let now = crate::app::Clock::now(&crate::app::SystemClock);
        match p.fetch_metadata(now).await {
            Ok(()) => tracing::info!(provider = %p.id(), "IdP metadata loaded"),
            Err(e) => {
                tracing::warn!(provider = %p.id(), error = %e, "IdP metadata fetch failed; will retry");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}
