//! Connection operations behind the API: validate a submitted connection with the loader's
//! code, keep write-only secrets, store it, rebuild the registry; and describe connections of
//! every source without their secrets.

use serde_json::{Map, Value};

pub use super::listing::{describe, list};

use super::api::{ApiError, Problem};
use super::auth::Actor;
use super::registry::{self, Built, ADMIN_SOURCE};
use crate::app::App;
use crate::config::validate_connection;
use crate::providers::Registry;
use crate::store::StoredConnection;

/// Write-only keys: stored, never returned.
pub const SECRET_KEYS: &[&str] = &["client_secret", "sp_private_key"];
/// Keys naming files on the proxy's host: refused through the API.
const FILE_KEYS: &[&str] = &[
    "client_secret_file",
    "sp_private_key_file",
    "sp_certificate_file",
];

/// A submitted connection, validated and built, ready to store and swap in.
pub struct Prepared {
    pub built: Built,
    /// What is stored: the submitted keys (secrets kept from before when not resent).
    pub settings: Map<String, Value>,
    pub protocol: &'static str,
    pub preset: &'static str,
}

fn is_saml(settings: &Map<String, Value>) -> bool {
    settings
        .get("protocol")
        .and_then(Value::as_str)
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("saml"))
}

/// Secrets are write-only: a key left out keeps the stored value; `""` or `null` removes it.
fn merge_secrets(settings: &mut Map<String, Value>, existing: Option<&StoredConnection>) {
    let key = if is_saml(settings) {
        "sp_private_key"
    } else {
        "client_secret"
    };
    match settings.get(key) {
        None => {
            if let Some(v) = existing.and_then(|e| e.settings.get(key)) {
                settings.insert(key.to_owned(), v.clone());
            }
        }
        Some(Value::Null) => {
            settings.remove(key);
        }
        Some(Value::String(s)) if s.is_empty() => {
            settings.remove(key);
        }
        Some(_) => {}
    }
}

fn api_problems(settings: &Map<String, Value>) -> Vec<Problem> {
    let mut problems: Vec<Problem> = FILE_KEYS
        .iter()
        .filter(|k| settings.contains_key(**k))
        .map(|k| {
            Problem::new(
                k,
                "files are not read through the admin API: send the value itself",
            )
        })
        .collect();
    if let Some(Value::String(m)) = settings.get("idp_metadata") {
        let t = m.trim();
        let inline_or_url =
            t.starts_with('<') || t.starts_with("http://") || t.starts_with("https://");
        if !t.is_empty() && !inline_or_url {
            problems.push(Problem::new(
                "idp_metadata",
                "upload the metadata XML or give its http(s):// URL (file paths are not read through the admin API)",
            ));
        }
    }
    problems
}

/// Every connection in the registry, both protocols.
pub fn registry_connections(registry: &Registry) -> Vec<Built> {
    let oidc = registry.all().map(|p| Built::Oidc(p.clone()));
    let saml = registry.saml_all().map(|p| Built::Saml(p.clone()));
    oidc.chain(saml).collect()
}

/// Validate and build `settings` as connection `id`.
pub async fn prepare(
    app: &App,
    id: &str,
    mut settings: Map<String, Value>,
    active: bool,
    existing: Option<&StoredConnection>,
) -> Result<Prepared, ApiError> {
    merge_secrets(&mut settings, existing);
    let problems = api_problems(&settings);
    if !problems.is_empty() {
        return Err(ApiError::Invalid(problems));
    }
    let mut full = settings.clone();
    full.insert("active".to_owned(), active.into());
    let mut valid = validate_connection(id, &Value::Object(full)).map_err(|problems| {
        ApiError::Invalid(
            problems
                .into_iter()
                .map(|p| Problem::new(&p.key, &p.message))
                .collect(),
        )
    })?;
    valid.set_source(ADMIN_SOURCE);
    let name = valid.display_name().to_owned();
    let registry = app.registry.load();
    let taken = registry_connections(&registry)
        .into_iter()
        .find(|c| c.id() != id && c.display_name().eq_ignore_ascii_case(&name));
    if let Some(other) = taken {
        let message = format!(
            "`{name}` is already the display name of connection `{}`; display names must be unique",
            other.id()
        );
        return Err(ApiError::Invalid(vec![Problem::new(
            "display_name",
            &message,
        )]));
    }
    let (protocol, preset) = (valid.protocol(), valid.preset());
    let built = registry::build(valid, &app.config.public_url, &app.http, &app.jwks)
        .map_err(|e| ApiError::Invalid(vec![Problem::new("", &e)]))?;
    if let Built::Saml(p) = &built {
        // URL metadata is fetched now: without a signing certificate the save is refused.
        if p.metadata_url().is_some() {
            p.fetch_metadata(app.now()).await.map_err(|e| {
                ApiError::Invalid(vec![Problem::new("idp_metadata", &e.to_string())])
            })?;
        }
    }
    Ok(Prepared {
        built,
        settings,
        protocol,
        preset,
    })
}

/// A submitted body: its `id`, its `active` and the connection's keys.
type Split = (Option<String>, Option<bool>, Map<String, Value>);

/// Splits `id` and `active` off a submitted body; the rest are the connection's keys.
pub fn split_body(mut body: Map<String, Value>) -> Result<Split, ApiError> {
    let id = match body.remove("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        Some(_) => {
            return Err(ApiError::Invalid(vec![Problem::new(
                "id",
                "expected a string",
            )]))
        }
    };
    let active = match body.remove("active") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(b),
        Some(_) => {
            return Err(ApiError::Invalid(vec![Problem::new(
                "active",
                "expected true or false",
            )]))
        }
    };
    Ok((id, active, body))
}

/// An id for a new connection when none was given: `<preset>-<6 hex>`.
fn new_id(settings: &Map<String, Value>) -> String {
    let preset = settings
        .get("provider")
        .and_then(Value::as_str)
        .map(|p| p.trim().to_ascii_lowercase())
        .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        .unwrap_or_else(|| "connection".to_owned());
    format!("{preset}-{:06x}", rand::random::<u32>() & 0x00ff_ffff)
}

fn exists(app: &App, id: &str) -> Result<bool, ApiError> {
    Ok(app.registry.load().contains(id) || app.admin.store.get_connection(id)?.is_some())
}

fn conflict(id: &str) -> ApiError {
    ApiError::Invalid(vec![Problem::new(
        "id",
        &format!("a connection with id `{id}` already exists"),
    )])
}

fn read_only(app: &App, id: &str) -> ApiError {
    let registry = app.registry.load();
    let source = registry
        .get(id)
        .map(|p| p.config.source.clone())
        .or_else(|| registry.get_saml(id).map(|p| p.config.source.clone()))
        .unwrap_or_default();
    if source.is_empty() {
        return ApiError::NotFound;
    }
    ApiError::ReadOnly(format!(
        "connection `{id}` comes from the configuration ({source}); change it there"
    ))
}

/// `POST /connections`.
pub async fn create(app: &App, actor: &Actor, body: Map<String, Value>) -> Result<Value, ApiError> {
    let (id, active, settings) = split_body(body)?;
    let id = id.unwrap_or_else(|| new_id(&settings));
    let _change = app.admin.changes.lock().await;
    if exists(app, &id)? {
        return Err(conflict(&id));
    }
    let prepared = prepare(app, &id, settings, active.unwrap_or(true), None).await?;
    let now = app.now();
    let stored = StoredConnection {
        id: id.clone(),
        protocol: prepared.protocol.to_owned(),
        preset: prepared.preset.to_owned(),
        settings: Value::Object(prepared.settings),
        active: active.unwrap_or(true),
        created_at: now,
        updated_at: now,
    };
    if !app.admin.store.insert_connection(&stored)? {
        return Err(conflict(&id));
    }
    registry::rebuild(app, Some(prepared.built))?;
    app.admin
        .audit(now, actor.label(), "connection.create", &id, None);
    describe(app, &id).ok_or(ApiError::NotFound)
}

/// `PUT /connections/<id>`: the whole connection; secrets left out are kept.
pub async fn update(
    app: &App,
    actor: &Actor,
    id: &str,
    body: Map<String, Value>,
) -> Result<Value, ApiError> {
    let (body_id, active, settings) = split_body(body)?;
    if body_id.as_deref().is_some_and(|b| b != id) {
        return Err(ApiError::Invalid(vec![Problem::new(
            "id",
            "the id of a connection cannot change",
        )]));
    }
    let _change = app.admin.changes.lock().await;
    let existing = app
        .admin
        .store
        .get_connection(id)?
        .ok_or_else(|| read_only(app, id))?;
    let active = active.unwrap_or(existing.active);
    let prepared = prepare(app, id, settings, active, Some(&existing)).await?;
    let changed = changed_keys(&existing, &prepared.settings, active);
    let stored = StoredConnection {
        protocol: prepared.protocol.to_owned(),
        preset: prepared.preset.to_owned(),
        settings: Value::Object(prepared.settings),
        active,
        updated_at: app.now(),
        ..existing
    };
    app.admin.store.update_connection(&stored)?;
    registry::rebuild(app, Some(prepared.built))?;
    let detail = (!changed.is_empty()).then(|| format!("changed: {}", changed.join(", ")));
    app.admin
        .audit(app.now(), actor.label(), "connection.update", id, detail);
    describe(app, id).ok_or(ApiError::NotFound)
}

/// Names (never values) of the keys that differ.
fn changed_keys(old: &StoredConnection, new: &Map<String, Value>, active: bool) -> Vec<String> {
    let empty = Map::new();
    let before = old.settings.as_object().unwrap_or(&empty);
    let mut keys: Vec<String> = before
        .keys()
        .chain(new.keys())
        .filter(|k| before.get(*k) != new.get(*k))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    if old.active != active {
        keys.push("active".to_owned());
    }
    keys
}

/// `DELETE /connections/<id>`.
pub async fn delete(app: &App, actor: &Actor, id: &str) -> Result<(), ApiError> {
    let _change = app.admin.changes.lock().await;
    if !app.admin.store.delete_connection(id)? {
        return Err(read_only(app, id));
    }
    registry::rebuild(app, None)?;
    app.admin
        .audit(app.now(), actor.label(), "connection.delete", id, None);
    Ok(())
}

/// `POST /connections/<id>/active`.
pub async fn set_active(
    app: &App,
    actor: &Actor,
    id: &str,
    active: bool,
) -> Result<Value, ApiError> {
    let _change = app.admin.changes.lock().await;
    let existing = app
        .admin
        .store
        .get_connection(id)?
        .ok_or_else(|| read_only(app, id))?;
    if existing.active != active {
        let stored = StoredConnection {
            active,
            updated_at: app.now(),
            ..existing
        };
        app.admin.store.update_connection(&stored)?;
        registry::rebuild(app, None)?;
        let action = if active {
            "connection.activate"
        } else {
            "connection.deactivate"
        };
        app.admin.audit(app.now(), actor.label(), action, id, None);
    }
    describe(app, id).ok_or(ApiError::NotFound)
}

/// What Test Provider runs against: the live connection (empty body), or the submitted
/// (unsaved) settings of connection `id`, or of a new connection (`id: None`).
pub async fn test_target(
    app: &App,
    id: Option<&str>,
    body: Map<String, Value>,
) -> Result<Built, ApiError> {
    let (body_id, active, settings) = split_body(body)?;
    match id {
        Some(id) if settings.is_empty() => registry_connections(&app.registry.load())
            .into_iter()
            .find(|c| c.id() == id)
            .ok_or(ApiError::NotFound),
        Some(id) => {
            let existing = app
                .admin
                .store
                .get_connection(id)?
                .ok_or_else(|| read_only(app, id))?;
            let active = active.unwrap_or(existing.active);
            Ok(prepare(app, id, settings, active, Some(&existing))
                .await?
                .built)
        }
        None => {
            let id =
                body_id.ok_or_else(|| ApiError::Invalid(vec![Problem::new("id", "required")]))?;
            if exists(app, &id)? {
                return Err(conflict(&id));
            }
            Ok(prepare(app, &id, settings, true, None).await?.built)
        }
    }
}
