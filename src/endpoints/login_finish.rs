//! Finishing a verified login, the same for OIDC and SAML: the admission rules, the ClearML
//! bridge (user provisioning and its cookie), the user record, and a new session.

use serde_json::Value;

use crate::app::App;
use crate::error::Error;
use crate::identity::{admit, Admission};
use crate::session::{Session, SessionError};
use crate::store::shared::ClearmlMapping;
use crate::store::UserRecord;

/// Admit the user, provision them in ClearML when the bridge is on, remember them, and create
/// the session. Returns the `Set-Cookie` values. Nothing is created when any step fails.
pub async fn finish(
    app: &App,
    admission: &Admission<'_>,
    default_company: Option<&str>,
    claims: &Value,
    mut session: Session,
) -> Result<Vec<String>, Error> {
    let now = app.now();
    let id = &session.identity;
    let record = match app.users.get(&id.provider, &id.user) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "user store unavailable; treating the user as new");
            None
        }
    };
    let email = admission.trusted_email(id, claims);
    let known = record.is_some() || app.is_known_user(&id.provider, &id.user, email);
    admit(id, claims, admission, known)?;
    let mut record = record.unwrap_or_else(|| UserRecord {
        provider: id.provider.clone(),
        subject: id.user.clone(),
        email: None,
        name: None,
        clearml_id: None,
        clearml_role: None,
        first_login: now,
        last_login: now,
    });
    record.email = session.identity.email.clone();
    record.name = session.identity.name.clone();
    record.last_login = now;
    let mut cookies = Vec::new();
    if let Some(bridge) = &app.bridge {
        if record.clearml_id.is_none() {
            // First seen here: another replica may have made this ClearML user already.
            let shared = app.shared_users.get(&id.provider, &id.user).await;
            let shared =
                shared.map_err(|e| Error::Session(SessionError::Unavailable(e.to_string())))?;
            if let Some(m) = shared {
                record.clearml_id = Some(m.id);
                record.clearml_role = Some(m.role);
            }
        }
        let (user_id, role) = bridge
            .ensure_user(
                id,
                default_company,
                Some(&record),
                admission.groups.case_sensitive,
            )
            .await?;
        record.clearml_id = Some(user_id.clone());
        record.clearml_role = Some(role.to_owned());
        // Stored before the token is asked for: the mapping must outlive any later failure.
        app.users.put(&record).map_err(|e| {
            Error::Forbidden(format!("the ClearML user mapping could not be saved: {e}"))
        })?;
        let mapping = ClearmlMapping {
            id: user_id.clone(),
            role: role.to_owned(),
        };
        let shared = app.shared_users.put(&id.provider, &id.user, &mapping).await;
        shared.map_err(|e| Error::Session(SessionError::Unavailable(e.to_string())))?;
        let token = bridge.token_for(&user_id).await?;
        cookies.push(bridge.cookie(&token, app.secure, bridge.config.token_lifetime.as_secs()));
        session.clearml_user = Some(user_id);
    } else if let Err(e) = app.users.put(&record) {
        tracing::warn!(error = %e, "user record not saved");
    }
    session.created_ms = crate::providers::backchannel::now_ms();
    let mut session_cookies = app.sessions.create(session, now).await?;
    session_cookies.append(&mut cookies);
    Ok(session_cookies)
}
