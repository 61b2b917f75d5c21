//! Users, invites, local groups and the audit log behind the API. Invites count as known users
//! for `create_new_users: false` ([`crate::app::App::is_known_user`]); local groups extend
//! `directory.groups` for `groups.prohibit_user_signup_if_not_in_group`
//! ([`crate::app::App::known_groups`]).

use serde_json::{json, Map, Value};

use super::api::{ApiError, Problem};
use super::auth::Actor;
use super::rfc3339;
use crate::app::App;
use crate::store::{Group, Invite};

const MAX_AUDIT: usize = 1000;

/// `GET /users`: users seen at login, plus `directory.known_users` from the configuration.
pub fn users(app: &App) -> Result<Value, ApiError> {
    let users: Vec<Value> = app
        .admin
        .store
        .list_users()?
        .into_iter()
        .map(|u| {
            json!({
                "provider": u.provider,
                "user": u.subject,
                "email": u.email,
                "name": u.name,
                "clearml_id": u.clearml_id,
                "clearml_role": u.clearml_role,
                "first_login": rfc3339(u.first_login),
                "last_login": rfc3339(u.last_login),
            })
        })
        .collect();
    Ok(json!({"users": users, "known_users": app.config.directory.known_users}))
}

fn invite_json(app: &App, i: &Invite) -> Value {
    let accepted = app.users.email_known(&i.email).unwrap_or(false);
    json!({
        "email": i.email,
        "invited_by": i.invited_by,
        "created_at": rfc3339(i.created_at),
        "accepted": accepted,
    })
}

/// `GET /invites`.
pub fn invites(app: &App) -> Result<Value, ApiError> {
    let list: Vec<Value> = app
        .admin
        .store
        .list_invites()?
        .iter()
        .map(|i| invite_json(app, i))
        .collect();
    Ok(json!({"invites": list}))
}

/// A plausible e-mail address: one `@`, a dotted domain, no spaces or control characters.
fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn string_field(body: &Map<String, Value>, field: &str) -> Result<String, ApiError> {
    match body.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            Err(ApiError::Invalid(vec![Problem::new(field, "required")]))
        }
        Some(_) => Err(ApiError::Invalid(vec![Problem::new(
            field,
            "expected a string",
        )])),
    }
}

fn only_fields(body: &Map<String, Value>, allowed: &[&str]) -> Result<(), ApiError> {
    let unknown: Vec<Problem> = body
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .map(|k| Problem::new(k, "unknown key"))
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Invalid(unknown))
    }
}

/// `POST /invites {"email"}`.
pub fn invite(app: &App, actor: &Actor, body: &Map<String, Value>) -> Result<Value, ApiError> {
    only_fields(body, &["email"])?;
    let email = string_field(body, "email")?;
    if !valid_email(&email) {
        let message = format!("`{email}` is not an e-mail address");
        return Err(ApiError::Invalid(vec![Problem::new("email", &message)]));
    }
    let invite = Invite {
        email: email.clone(),
        invited_by: actor.label().to_owned(),
        created_at: app.now(),
    };
    if !app.admin.store.add_invite(&invite)? {
        return Err(ApiError::Exists(format!("`{email}` is already invited")));
    }
    app.admin
        .audit(app.now(), actor.label(), "invite.create", &email, None);
    Ok(invite_json(app, &invite))
}

/// `DELETE /invites/<email>`.
pub fn uninvite(app: &App, actor: &Actor, email: &str) -> Result<(), ApiError> {
    if !app.admin.store.delete_invite(email)? {
        return Err(ApiError::NotFound);
    }
    app.admin
        .audit(app.now(), actor.label(), "invite.delete", email, None);
    Ok(())
}

/// `GET /groups`: the configured `directory.groups` (read-only) and the local ones.
pub fn groups(app: &App) -> Result<Value, ApiError> {
    let configured = app.config.directory.groups.iter().map(|name| {
        json!({"name": name, "description": null, "source": "file", "editable": false,
               "created_by": null, "created_at": null})
    });
    let local: Vec<Group> = app.admin.store.list_groups()?;
    let stored = local.iter().map(|g| {
        json!({"name": g.name, "description": g.description, "source": "admin", "editable": true,
               "created_by": g.created_by, "created_at": rfc3339(g.created_at)})
    });
    let all: Vec<Value> = configured.chain(stored).collect();
    Ok(json!({"groups": all}))
}

/// `POST /groups {"name", "description"?}`.
pub fn add_group(app: &App, actor: &Actor, body: &Map<String, Value>) -> Result<Value, ApiError> {
    only_fields(body, &["name", "description"])?;
    let name = string_field(body, "name")?;
    if name.len() > 128 || name.contains(',') || name.chars().any(char::is_control) {
        let message = "at most 128 characters, without commas or control characters";
        return Err(ApiError::Invalid(vec![Problem::new("name", message)]));
    }
    let description = match body.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        Some(_) => {
            return Err(ApiError::Invalid(vec![Problem::new(
                "description",
                "expected a string",
            )]))
        }
    };
    if app
        .config
        .directory
        .groups
        .iter()
        .any(|g| g.eq_ignore_ascii_case(&name))
    {
        return Err(ApiError::Exists(format!(
            "`{name}` is configured in directory.groups"
        )));
    }
    let group = Group {
        name: name.clone(),
        description,
        created_by: actor.label().to_owned(),
        created_at: app.now(),
    };
    if !app.admin.store.add_group(&group)? {
        return Err(ApiError::Exists(format!("the group `{name}` exists")));
    }
    app.admin
        .audit(app.now(), actor.label(), "group.create", &name, None);
    Ok(
        json!({"name": group.name, "description": group.description, "source": "admin",
              "editable": true, "created_by": group.created_by, "created_at": rfc3339(group.created_at)}),
    )
}

/// `DELETE /groups/<name>`.
pub fn delete_group(app: &App, actor: &Actor, name: &str) -> Result<(), ApiError> {
    if app.admin.store.delete_group(name)? {
        app.admin
            .audit(app.now(), actor.label(), "group.delete", name, None);
        return Ok(());
    }
    if app
        .config
        .directory
        .groups
        .iter()
        .any(|g| g.eq_ignore_ascii_case(name))
    {
        return Err(ApiError::ReadOnly(format!(
            "`{name}` is configured in directory.groups; change it there"
        )));
    }
    Err(ApiError::NotFound)
}

/// `GET /audit?limit=N` (at most 1000).
pub fn audit(app: &App, limit: usize) -> Result<Value, ApiError> {
    let entries: Vec<Value> = app
        .admin
        .store
        .recent(limit.clamp(1, MAX_AUDIT))?
        .into_iter()
        .map(|e| {
            json!({"at": rfc3339(e.at), "actor": e.actor, "action": e.action,
                   "target": e.target, "detail": e.detail})
        })
        .collect();
    Ok(json!({"entries": entries}))
}

#[cfg(test)]
mod tests {
    use super::valid_email;

    #[test]
    fn email_check_is_plausible_not_pedantic() {
        assert!(valid_email("bob@example.com"));
        assert!(valid_email("a.b+tag@sub.example.org"));
        for bad in [
            "bob",
            "@example.com",
            "bob@",
            "bob@example",
            "bo b@example.com",
            "a@b@c.com",
            "a@.com",
        ] {
            assert!(!valid_email(bad), "{bad}");
        }
    }
}
