//! The admin plane (DESIGN 1 "Operators", issue 6): provider connections managed at runtime,
//! users, local groups, invites and the audit log.
//!
//! - [`AdminState`] holds the store ([`crate::store::AdminStore`], SQLite at `state.path`) and
//!   the Test Provider logins in flight.
//! - `/_sso/api/…` is the JSON API ([`api`]); `/_sso/admin/…` the server-rendered pages
//!   ([`pages`]). Both admit an admin session (identity `admin: true`); the API also admits
//!   `Authorization: Bearer <admin.token>` ([`auth`]).
//! - Every change rebuilds the connection registry (configured connections + stored ones) and
//!   swaps it whole ([`registry`]); unchanged connections keep their provider (discovery,
//!   caches), new ones are discovered in the background.
//! - Connections from the API are validated by the configuration loader's own code
//!   ([`crate::config::validate_connection`]), so problems name the same keys.

pub mod api;
mod auth;
mod connections;
mod directory;
mod form;
mod listing;
mod pages;
mod presets;
mod registry;
mod render;
pub mod test_login;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use crate::app::App;
use crate::endpoints::{Request, Response};
use crate::store::{AdminStore, AuditEntry, Group, Invite};

pub use registry::{configured_connections, replace_configured, Built};

/// The admin plane's state, one per process.
pub struct AdminState {
    pub store: Arc<dyn AdminStore>,
    /// Serialises changes: store write + registry rebuild happen as one step.
    changes: tokio::sync::Mutex<()>,
    /// Stored connection id → fingerprint of the settings its current provider was built from.
    built: Mutex<HashMap<String, String>>,
    /// Stored connections that could not be loaded, with the reason.
    load_errors: Mutex<BTreeMap<String, String>>,
    /// Test Provider tickets and logins in flight.
    pub(crate) tests: test_login::Tests,
}

impl AdminState {
    pub fn new(store: Arc<dyn AdminStore>) -> Self {
        AdminState {
            store,
            changes: tokio::sync::Mutex::new(()),
            built: Mutex::new(HashMap::new()),
            load_errors: Mutex::new(BTreeMap::new()),
            tests: test_login::Tests::new(),
        }
    }

    /// Whether `email` has an invite (case-insensitive). A store error counts as no.
    pub fn is_invited(&self, email: &str) -> bool {
        self.store.is_invited(email).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "invite lookup failed");
            false
        })
    }

    /// Names of the groups made in the admin plane.
    pub fn group_names(&self) -> Vec<String> {
        match self.store.list_groups() {
            Ok(groups) => groups.into_iter().map(|g| g.name).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "local groups unavailable");
                Vec::new()
            }
        }
    }

    pub fn invites(&self) -> Vec<Invite> {
        self.store.list_invites().unwrap_or_default()
    }

    pub fn groups(&self) -> Vec<Group> {
        self.store.list_groups().unwrap_or_default()
    }

    /// Record an admin change; a failure is logged, never shown.
    pub(crate) fn audit(
        &self,
        at: u64,
        actor: &str,
        action: &str,
        target: &str,
        detail: Option<String>,
    ) {
        let entry = AuditEntry {
            at,
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            detail,
        };
        tracing::info!(actor, action, target, "admin change");
        if let Err(e) = self.store.append(&entry) {
            tracing::warn!(error = %e, "audit log entry not saved");
        }
    }

    fn load_error(&self, id: &str) -> Option<String> {
        self.load_errors.lock().ok()?.get(id).cloned()
    }
}

/// `/_sso/admin…` and `/_sso/api/…`; `rest` is the path after `/_sso/`.
pub async fn handle(app: &App, rest: &str, req: &Request<'_>) -> Response {
    match rest.strip_prefix("api/") {
        Some(api_path) => api::handle(app, api_path, req).await,
        None => pages::handle(app, rest.strip_prefix("admin").unwrap_or(rest), req).await,
    }
}

/// Unix seconds as RFC 3339 (UTC).
pub(crate) fn rfc3339(secs: u64) -> String {
    use time::format_description::well_known::Rfc3339;
    i64::try_from(secs)
        .ok()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}
