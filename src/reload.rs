//! Configuration reload without a restart: on SIGHUP, and with `watch_config` whenever the
//! config file or the TLS certificate/key files change (polled).
//!
//! A reload loads the configuration from the same sources as at start-up (file, environment,
//! flags, `*_file` secrets). If it is invalid, or a certificate or connection cannot be built,
//! nothing changes and the problem is logged. Otherwise it applies what can change while
//! serving: the configured connections (OIDC and SAML; unchanged ones keep their provider
//! object, new and changed ones are discovered before the swap, admin-made ones stay — see
//! [`crate::admin::replace_configured`]) and the HTTPS certificate. Any other setting
//! that differs is logged as needing a restart and keeps its running value.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_yaml::Value;
use sha2::{Digest, Sha256};
use tokio::signal::unix::Signal;

use crate::admin::{self, Built};
use crate::app::{App, Clock, SystemClock};
use crate::config::{self, Config, Sources};
use crate::providers::oidc::OidcProvider;
use crate::providers::saml::SamlProvider;
use crate::providers::Registry;
use crate::store::StoreError;
use crate::tls::{CertPair, CertResolver, TlsError};

/// How often `watch_config` looks at the files.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// How long a reload waits for a new connection's discovery or metadata before swapping it in
/// anyway (it then keeps trying in the background, as at start-up).
const WARM_UP_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("connection {id} could not be set up: {reason}")]
    Connection { id: String, reason: String },
    #[error("the stored connections could not be read: {0}")]
    Store(#[from] StoreError),
}

/// What a reload changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    /// The HTTPS certificate was read again (it may be the same one).
    pub certificate: bool,
    /// Settings that differ but apply only after a restart (their running value stays).
    pub restart_needed: Vec<String>,
}

/// Reloads the running proxy's configuration.
pub struct Reloader {
    app: Arc<App>,
    sources: Sources,
    certs: Option<Arc<CertResolver>>,
    /// The TLS files the running configuration names (watched with the config file).
    tls_files: Mutex<Vec<PathBuf>>,
    /// One reload at a time (the signal and the watcher may both fire).
    running: tokio::sync::Mutex<()>,
}

impl Reloader {
    pub fn new(app: Arc<App>, sources: Sources, certs: Option<Arc<CertResolver>>) -> Self {
        let tls_files = tls_files(&app.config);
        Reloader {
            app,
            sources,
            certs,
            tls_files: Mutex::new(tls_files),
            running: tokio::sync::Mutex::new(()),
        }
    }

    /// Reload now; `trigger` says why (for the log). Refused reloads change nothing.
    pub async fn reload(&self, trigger: &'static str) -> Result<Applied, ReloadError> {
        let _one = self.running.lock().await;
        let result = self.apply().await;
        self.app.metrics.reload(result.is_ok());
        match &result {
            Ok(a) => {
                for key in &a.restart_needed {
                    tracing::warn!(%trigger, %key, "setting changed, but it applies only after a restart; the running value stays");
                }
                tracing::info!(%trigger, added = ?a.added, changed = ?a.changed, removed = ?a.removed, certificate = a.certificate, "configuration reloaded");
            }
            Err(e) => {
                tracing::error!(%trigger, error = %e, "configuration reload refused; the running configuration stays");
            }
        }
        result
    }

    async fn apply(&self) -> Result<Applied, ReloadError> {
        let new = config::load(&self.sources).map_err(|errors| {
            let problems: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
            ReloadError::Invalid(problems.join("; "))
        })?;
        let old = &self.app.config;
        let mut applied = Applied {
            restart_needed: restart_needed(old, &new),
            ..Applied::default()
        };
        // Everything is read and built before anything is swapped.
        let pair = match (&self.certs, &new.tls) {
            (Some(_), Some(tls)) => Some(CertPair::read(tls)?),
            _ => None,
        };
        let (configured, fresh) = self.build_configured(&new, &mut applied)?;
        warm_up(&fresh).await;
        admin::replace_configured(&self.app, configured).await?;
        for b in &fresh {
            b.warm_up();
        }
        if let (Some(certs), Some(pair)) = (&self.certs, pair) {
            certs.install(pair);
            applied.certificate = true;
        }
        if let Ok(mut files) = self.tls_files.lock() {
            *files = tls_files(&new);
        }
        Ok(applied)
    }

    /// The configured connections of `new`: unchanged ones reuse the running provider (its
    /// discovery results and caches), others are built afresh (returned in `fresh`).
    fn build_configured(
        &self,
        new: &Config,
        applied: &mut Applied,
    ) -> Result<(Registry, Vec<Built>), ReloadError> {
        let app = &self.app;
        let running = admin::configured_connections(&app.registry.load());
        let public_url = &app.config.public_url;
        let mut next = Registry::default();
        let mut fresh = Vec::new();
        for c in &new.providers {
            match running.get(&c.id) {
                Some(p) if p.config == *c => next.insert_oidc(p.clone()),
                _ => {
                    let p = OidcProvider::new(
                        c.clone(),
                        public_url,
                        app.http.clone(),
                        app.jwks.clone(),
                    )
                    .map_err(|e| connection_error(&c.id, e))?;
                    let p = Arc::new(p);
                    next.insert_oidc(p.clone());
                    fresh.push(Built::Oidc(p));
                }
            }
        }
        for c in &new.saml_providers {
            match running.get_saml(&c.id) {
                Some(p) if p.config == *c => next.insert_saml(p.clone()),
                _ => {
                    let p = SamlProvider::new(c.clone(), public_url, app.http.clone())
                        .map_err(|e| connection_error(&c.id, e))?;
                    let p = Arc::new(p);
                    next.insert_saml(p.clone());
                    fresh.push(Built::Saml(p));
                }
            }
        }
        for b in &fresh {
            let list = if running.contains(b.id()) {
                &mut applied.changed
            } else {
                &mut applied.added
            };
            list.push(b.id().to_owned());
        }
        let ids = running
            .all()
            .map(|p| p.id())
            .chain(running.saml_all().map(|p| p.id()));
        applied.removed = ids
            .filter(|id| !next.contains(id))
            .map(str::to_owned)
            .collect();
        Ok((next, fresh))
    }

    /// The files `watch_config` looks at: the config file and the TLS certificate and key.
    fn watched(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = self.sources.file.iter().cloned().collect();
        if let Ok(tls) = self.tls_files.lock() {
            files.extend(tls.iter().cloned());
        }
        files
    }

    /// Reload, and return the fingerprint of the watched files as they were read for it (a
    /// change made meanwhile triggers the next reload).
    async fn reload_marking(&self, trigger: &'static str) -> [u8; 32] {
        let files = self.watched();
        let before = fingerprint(&files);
        let _ = self.reload(trigger).await;
        let now_watched = self.watched();
        if now_watched == files {
            before
        } else {
            fingerprint(&now_watched)
        }
    }
}

/// A digest of `files`: each one's path and content, or its absence.
fn fingerprint(files: &[PathBuf]) -> [u8; 32] {
    let mut hash = Sha256::new();
    for path in files {
        hash.update(path.as_os_str().as_encoded_bytes());
        match std::fs::read(path) {
            Ok(content) => {
                hash.update([1]);
                hash.update(Sha256::digest(&content));
            }
            Err(_) => hash.update([0]),
        }
    }
    hash.finalize().into()
}

fn connection_error(id: &str, e: impl std::fmt::Display) -> ReloadError {
    ReloadError::Connection {
        id: id.to_owned(),
        reason: e.to_string(),
    }
}

fn tls_files(config: &Config) -> Vec<PathBuf> {
    config
        .tls
        .iter()
        .flat_map(|t| [t.cert_file.clone(), t.key_file.clone()])
        .collect()
}

/// Discover the new OIDC connections and fetch the new SAML metadata (URL sources) before the
/// swap, all at once, each for at most [`WARM_UP_WAIT`]; one that is not ready by then is
/// swapped in anyway and keeps trying in the background.
async fn warm_up(fresh: &[Built]) {
    let mut tasks = tokio::task::JoinSet::new();
    for b in fresh {
        match b.clone() {
            Built::Oidc(p) if p.config.active && !p.is_ready() => {
                tasks.spawn(async move {
                    let done = tokio::time::timeout(WARM_UP_WAIT, p.discover()).await;
                    (
                        p.id().to_owned(),
                        done.map(|r| r.map(|_| ()).map_err(|e| e.to_string())),
                    )
                });
            }
            Built::Saml(p) if p.config.active && !p.is_ready() => {
                tasks.spawn(async move {
                    let now = SystemClock.now();
                    let done = tokio::time::timeout(WARM_UP_WAIT, p.fetch_metadata(now)).await;
                    (
                        p.id().to_owned(),
                        done.map(|r| r.map_err(|e| e.to_string())),
                    )
                });
            }
            _ => {}
        }
    }
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((id, Ok(Ok(())))) => tracing::info!(provider = %id, "connection ready"),
            Ok((id, Ok(Err(e)))) => {
                tracing::warn!(provider = %id, error = %e, "new connection not ready yet; will retry");
            }
            Ok((id, Err(_))) => {
                tracing::warn!(provider = %id, "new connection not ready in time; will retry");
            }
            Err(e) => tracing::warn!(error = %e, "connection warm-up task failed"),
        }
    }
}

/// The settings that differ between `old` and `new` but cannot change while serving: every
/// key except the connections and (when HTTPS stays on) the TLS files, secrets included.
pub fn restart_needed(old: &Config, new: &Config) -> Vec<String> {
    let strip = |c: &Config| {
        let mut root: Value = serde_yaml::from_str(&config::render_redacted(c)).unwrap_or_default();
        if let Value::Mapping(map) = &mut root {
            map.remove("providers");
            if c.tls.is_some() && old.tls.is_some() == new.tls.is_some() {
                map.remove("tls");
            }
        }
        root
    };
    let mut keys = BTreeSet::new();
    diff("", &strip(old), &strip(new), &mut keys);
    if old.session.secret != new.session.secret {
        keys.insert("session.secret".to_owned());
    }
    // A Redis URL's password is redacted in the rendering.
    let redis_url = |c: &Config| c.session.redis.as_ref().map(|r| r.url.clone());
    if redis_url(old) != redis_url(new) {
        keys.insert("session.store".to_owned());
    }
    if old.admin_token != new.admin_token {
        keys.insert("admin.token".to_owned());
    }
    let (a, b) = (old.clearml.as_ref(), new.clearml.as_ref());
    if a.map(|c| &c.api_key) != b.map(|c| &c.api_key) {
        keys.insert("clearml.api_key".to_owned());
    }
    if a.map(|c| &c.api_secret) != b.map(|c| &c.api_secret) {
        keys.insert("clearml.api_secret".to_owned());
    }
    keys.into_iter().collect()
}

/// Dotted paths of the leaves that differ (a list counts as one leaf).
fn diff(prefix: &str, old: &Value, new: &Value, out: &mut BTreeSet<String>) {
    match (old, new) {
        (Value::Mapping(a), Value::Mapping(b)) => {
            let keys: BTreeSet<&str> = a.keys().chain(b.keys()).filter_map(Value::as_str).collect();
            for key in keys {
                let path = if prefix.is_empty() {
                    key.to_owned()
                } else {
                    format!("{prefix}.{key}")
                };
                let missing = Value::Null;
                diff(
                    &path,
                    a.get(key).unwrap_or(&missing),
                    b.get(key).unwrap_or(&missing),
                    out,
                );
            }
        }
        (a, b) if a != b => {
            out.insert(prefix.to_owned());
        }
        _ => {}
    }
}

/// Reload on SIGHUP and, with `watch_config`, when a watched file changes. Runs for the life
/// of the process.
pub async fn watch(reloader: Arc<Reloader>, mut hangup: Signal) {
    let polling = reloader.app.config.watch_config;
    if polling && reloader.sources.file.is_none() {
        tracing::warn!("watch_config is on, but there is no config file to watch (TLS files are still watched)");
    }
    let mut seen = fingerprint(&reloader.watched());
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            got = hangup.recv() => {
                if got.is_none() {
                    return;
                }
                seen = reloader.reload_marking("SIGHUP").await;
            }
            _ = tick.tick(), if polling => {
                if fingerprint(&reloader.watched()) != seen {
                    seen = reloader.reload_marking("file change").await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
