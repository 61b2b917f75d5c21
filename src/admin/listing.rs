//! Connections as the API and the pages show them: every source, without secrets. Stored
//! connections show their stored keys (secrets removed); configured ones their effective
//! settings, read-only, with their source.

use serde_json::{json, Map, Value};

use super::api::ApiError;
use super::connections::{registry_connections, SECRET_KEYS};
use super::registry::{Built, ADMIN_SOURCE};
use super::render::{oidc_settings, preset_label, saml_settings};
use crate::app::App;
use crate::store::StoredConnection;

/// Every connection, configured and stored, ordered by display name.
pub fn list(app: &App) -> Result<Vec<Value>, ApiError> {
    let registry = app.registry.load();
    let stored = app.admin.store.list_connections()?;
    let mut out: Vec<Value> = registry_connections(&registry)
        .iter()
        .map(|b| connection_json(app, Some(b), stored.iter().find(|s| s.id == b.id())))
        .collect();
    for s in stored.iter().filter(|s| !registry.contains(&s.id)) {
        out.push(connection_json(app, None, Some(s)));
    }
    out.sort_by_key(|c| {
        c["display_name"]
            .as_str()
            .unwrap_or_default()
            .to_ascii_lowercase()
    });
    Ok(out)
}

/// One connection as the API shows it, or `None` when there is no such connection.
pub fn describe(app: &App, id: &str) -> Option<Value> {
    let registry = app.registry.load();
    let built = registry_connections(&registry)
        .into_iter()
        .find(|c| c.id() == id);
    let stored = app.admin.store.get_connection(id).ok().flatten();
    if built.is_none() && stored.is_none() {
        return None;
    }
    Some(connection_json(app, built.as_ref(), stored.as_ref()))
}

fn connection_json(app: &App, built: Option<&Built>, stored: Option<&StoredConnection>) -> Value {
    let (id, mut settings, secret_set, ready, source, active) = match built {
        Some(Built::Oidc(p)) => {
            let c = &p.config;
            (
                c.id.clone(),
                oidc_settings(c),
                c.client_secret.is_some(),
                p.is_ready(),
                c.source.clone(),
                c.active,
            )
        }
        Some(Built::Saml(p)) => {
            let c = &p.config;
            (
                c.id.clone(),
                saml_settings(c),
                c.sp_private_key.is_some(),
                p.is_ready(),
                c.source.clone(),
                c.active,
            )
        }
        None => {
            let s = stored.map(|s| (s.id.clone(), s.active)).unwrap_or_default();
            (s.0, Map::new(), false, false, ADMIN_SOURCE.to_owned(), s.1)
        }
    };
    let mut secret_set = secret_set;
    if source == ADMIN_SOURCE {
        if let Some(s) = stored {
            settings = s.settings.as_object().cloned().unwrap_or_default();
            secret_set = SECRET_KEYS.iter().any(|k| settings.contains_key(*k));
            for k in SECRET_KEYS {
                settings.remove(*k);
            }
        }
    }
    let protocol = match built {
        Some(Built::Saml(_)) => "saml".to_owned(),
        Some(Built::Oidc(_)) => "oidc".to_owned(),
        None => stored.map(|s| s.protocol.clone()).unwrap_or_default(),
    };
    let preset = settings
        .get("provider")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| stored.map(|s| s.preset.clone()))
        .unwrap_or_else(|| "custom".to_owned());
    let display_name = built
        .map(|b| b.display_name().to_owned())
        .or_else(|| {
            settings
                .get("display_name")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| id.clone());
    let public = &app.config.public_url;
    let callback = public
        .join(&format!("callback_{id}"))
        .map(String::from)
        .unwrap_or_default();
    let secret_key = if protocol == "saml" {
        "sp_private_key_set"
    } else {
        "client_secret_set"
    };
    let mut out = json!({
        "id": id,
        "protocol": protocol,
        "provider": preset,
        "provider_label": preset_label(&preset),
        "display_name": display_name,
        "active": active,
        "source": source,
        "editable": source == ADMIN_SOURCE,
        "ready": ready,
        "callback_url": callback,
        "created_at": stored.map(|s| super::rfc3339(s.created_at)),
        "updated_at": stored.map(|s| super::rfc3339(s.updated_at)),
        "settings": settings,
        secret_key: secret_set,
    });
    if protocol == "saml" {
        let metadata = public
            .join(&format!("_sso/saml/{id}/metadata"))
            .map(String::from)
            .unwrap_or_default();
        out["sp_metadata_url"] = metadata.into();
    }
    if let Some(error) = app.admin.load_error(&id).filter(|_| built.is_none()) {
        out["error"] = error.into();
    }
    out
}
