//! The ClearML bridge (DESIGN 3.3): SSO users become ClearML users. At login the user is
//! created or updated through the API server with the proxy's `system` credential and gets a
//! token by impersonation; on requests the token is re-issued before it ends, API clients pass
//! untouched, and `login.supported_modes` / `login.logout` answers are rewritten.

pub mod rewrite;

use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwapOption;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::config::ClearmlConfig;
use crate::identity::{groups_intersect, Identity};
use crate::store::UserRecord;

/// The default company of a ClearML server.
pub const DEFAULT_COMPANY: &str = "d1bd92a3b039400cbafc60a7a5b1e52b";

#[derive(Debug, Clone, thiserror::Error)]
pub enum ClearmlError {
    #[error("the ClearML API server at {url} could not be reached: {reason}")]
    Unreachable { url: String, reason: String },
    #[error(
        "the ClearML API server refused {endpoint} (HTTP {status}, result code {code}): {message}"
    )]
    Api {
        endpoint: &'static str,
        status: u16,
        code: i64,
        message: String,
    },
    #[error(
        "the ClearML API server sent an answer to {endpoint} (HTTP {status}) that is not a ClearML envelope"
    )]
    Malformed { endpoint: &'static str, status: u16 },
}

pub struct Bridge {
    pub config: ClearmlConfig,
    http: reqwest::Client,
    /// Company from our own token (`identity.company`), learnt at the start-up check.
    company: ArcSwapOption<String>,
    ready: AtomicBool,
    /// Token re-issues, shared for [`REISSUE_SHARED_FOR`] by every request that presents the
    /// same ending cookie: the web app's parallel calls near the token's end make one
    /// impersonation, not one each.
    reissues: moka::future::Cache<[u8; 32], Option<String>>,
}

/// How long a re-issued token answers the requests that carried the same old cookie.
const REISSUE_SHARED_FOR: std::time::Duration = std::time::Duration::from_secs(10);

impl Bridge {
    pub fn new(config: ClearmlConfig, http: reqwest::Client) -> Self {
        Bridge {
            config,
            http,
            company: ArcSwapOption::empty(),
            ready: AtomicBool::new(false),
            reissues: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(REISSUE_SHARED_FOR)
                .build(),
        }
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    fn url(&self, endpoint: &str) -> String {
        format!(
            "{}/{endpoint}",
            self.config.api_url.as_str().trim_end_matches('/')
        )
    }

    fn basic(&self) -> String {
        let raw = format!(
            "{}:{}",
            self.config.api_key.expose(),
            self.config.api_secret.expose()
        );
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    /// POST one API call with our system credential; `data` of the envelope on success.
    async fn call(
        &self,
        endpoint: &'static str,
        body: Value,
        impersonate: Option<&str>,
    ) -> Result<Value, ClearmlError> {
        self.send(endpoint, body, self.basic(), impersonate).await
    }

    /// POST one API call with `authorization`; `data` of the envelope on success.
    async fn send(
        &self,
        endpoint: &'static str,
        body: Value,
        authorization: String,
        impersonate: Option<&str>,
    ) -> Result<Value, ClearmlError> {
        let url = self.url(endpoint);
        let mut req = self
            .http
            .post(&url)
            .header("authorization", authorization)
            .json(&body);
        if let Some(user) = impersonate {
            req = req.header("x-clearml-impersonate-as", user);
        }
        let resp = req.send().await.map_err(|e| ClearmlError::Unreachable {
            url: self.config.api_url.to_string(),
            reason: crate::providers::describe_http_error(&e),
        })?;
        let status = resp.status().as_u16();
        let malformed = ClearmlError::Malformed { endpoint, status };
        let envelope: Value = resp.json().await.map_err(|_| malformed.clone())?;
        let meta = envelope.get("meta").ok_or(malformed)?;
        let code = meta
            .get("result_code")
            .and_then(Value::as_i64)
            .unwrap_or(i64::from(status));
        if status != 200 || code != 200 {
            let message = meta
                .get("result_msg")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            return Err(ClearmlError::Api {
                endpoint,
                status,
                code,
                message,
            });
        }
        Ok(envelope.get("data").cloned().unwrap_or(Value::Null))
    }

    /// Start-up check: our credential logs in; remember its company.
    pub async fn check(&self) -> Result<(), ClearmlError> {
        let data = self.call("auth.login", json!({}), None).await?;
        let token = answer_field(&data, "token", "auth.login")?;
        if let Some(company) = token_claim(&token, &["identity", "company"]) {
            self.company.store(Some(std::sync::Arc::new(company)));
        }
        self.ready.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// `admin` for admins, `guest` for members of `guest_groups` (compared as the connection's
    /// `groups.case_sensitive` says), else `user`.
    pub fn role_for(&self, identity: &Identity, case_sensitive: bool) -> &'static str {
        if identity.admin {
            "admin"
        } else if groups_intersect(&identity.groups, &self.config.guest_groups, case_sensitive) {
            "guest"
        } else {
            "user"
        }
    }

    fn company(&self, default_company: Option<&str>) -> String {
        default_company
            .map(str::to_owned)
            .or_else(|| self.config.company.clone())
            .or_else(|| self.company.load_full().map(|c| (*c).clone()))
            .unwrap_or_else(|| DEFAULT_COMPANY.to_owned())
    }

    /// Create or update the ClearML user for this login; returns their id and role. The caller
    /// stores the mapping before asking for a token, so a later failure never leaves a created
    /// user without its mapping (ClearML has no lookup by email to recover it).
    ///
    /// Until the start-up check has succeeded the company from our own token is unknown, so the
    /// check runs here first: a login never creates the user in the wrong company, and fails
    /// with the API server's error when the check does.
    pub async fn ensure_user(
        &self,
        identity: &Identity,
        default_company: Option<&str>,
        known: Option<&UserRecord>,
        groups_case_sensitive: bool,
    ) -> Result<(String, &'static str), ClearmlError> {
        if !self.is_ready() {
            tracing::debug!("ClearML bridge not checked yet; checking before provisioning");
            self.check().await?;
        }
        let role = self.role_for(identity, groups_case_sensitive);
        let user_id = match known.and_then(|r| r.clearml_id.clone()) {
            Some(id) => {
                if known.and_then(|r| r.clearml_role.as_deref()) != Some(role) {
                    self.call("auth.edit_user", json!({"user": id, "role": role}), None)
                        .await?;
                    tracing::info!(clearml_user = %id, role, "ClearML role updated");
                }
                id
            }
            None => self.create_user(identity, role, default_company).await?,
        };
        Ok((user_id, role))
    }

    async fn create_user(
        &self,
        identity: &Identity,
        role: &str,
        default_company: Option<&str>,
    ) -> Result<String, ClearmlError> {
        let name = identity
            .name
            .clone()
            .or_else(|| identity.preferred_username.clone())
            .unwrap_or_else(|| identity.user.clone());
        let mut body = json!({
            "name": name,
            "company": self.company(default_company),
            "email": identity.email.clone().unwrap_or_else(|| format!("{}@{}.sso", identity.user, identity.provider)),
            "role": role,
        });
        for (key, value) in [
            ("given_name", &identity.given_name),
            ("family_name", &identity.family_name),
            ("avatar", &identity.picture),
        ] {
            if let Some(v) = value {
                body[key] = Value::from(v.clone());
            }
        }
        let data = self.call("auth.create_user", body, None).await?;
        let id = answer_field(&data, "id", "auth.create_user")?;
        tracing::info!(clearml_user = %id, role, "ClearML user created");
        Ok(id)
    }

    /// A token for `user_id` by impersonation, lasting `token_lifetime`.
    pub async fn token_for(&self, user_id: &str) -> Result<String, ClearmlError> {
        let body = json!({"expiration_sec": self.config.token_lifetime.as_secs()});
        let data = self.call("auth.login", body, Some(user_id)).await?;
        answer_field(&data, "token", "auth.login")
    }

    /// A new token for `user_id` in place of `current` (the browser's cookie, if any), single-flight:
    /// requests of one browser session presenting the same cookie share one impersonation.
    /// `session` tells browser sessions apart. `None` when the API server refused or failed
    /// (logged); the result is shared, so a failing server is not asked again at once.
    pub async fn reissue(
        &self,
        user_id: &str,
        session: &str,
        current: Option<&str>,
    ) -> Option<String> {
        use sha2::Digest as _;
        let mut key = sha2::Sha256::new();
        for part in [user_id, session, current.unwrap_or_default()] {
            key.update(part.as_bytes());
            key.update([0]);
        }
        let key: [u8; 32] = key.finalize().into();
        self.reissues
            .get_with(key, async {
                match self.token_for(user_id).await {
                    Ok(token) => {
                        tracing::debug!(clearml_user = %user_id, "ClearML token re-issued");
                        Some(token)
                    }
                    Err(e) => {
                        tracing::warn!(clearml_user = %user_id, error = %e, "ClearML token re-issue failed");
                        None
                    }
                }
            })
            .await
    }

    /// Revoke a user's ClearML token: `auth.logout` called with that token.
    pub async fn revoke(&self, token: &str) -> Result<(), ClearmlError> {
        let bearer = format!("Bearer {token}");
        self.send("auth.logout", json!({}), bearer, None).await?;
        Ok(())
    }

    /// True when the token is missing its `exp`, or less than a tenth of the lifetime is left.
    pub fn needs_reissue(&self, token: &str, now: u64) -> bool {
        let margin = self.config.token_lifetime.as_secs() / 10;
        match token_claim(token, &["exp"]).and_then(|e| e.parse::<u64>().ok()) {
            Some(exp) => exp.saturating_sub(now) < margin.max(1),
            None => true,
        }
    }

    /// The ClearML session cookie, with the attributes the API server uses (`HttpOnly`,
    /// `SameSite=Lax`, `Path=/`, `Domain` from `cookie_domain`) and `Secure` on https. Unlike the
    /// server's (`Max-Age=99999999999`) it lasts as long as its token (docs/deviations.md).
    pub fn cookie(&self, token: &str, secure: bool, max_age: u64) -> String {
        format!(
            "{}={token}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{}",
            self.config.cookie_name,
            self.cookie_tail(secure)
        )
    }

    pub fn clear_cookie(&self, secure: bool) -> String {
        format!(
            "{}=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax{}",
            self.config.cookie_name,
            self.cookie_tail(secure)
        )
    }

    /// `; Domain=…` when configured, `; Secure` on https.
    fn cookie_tail(&self, secure: bool) -> String {
        let domain = self
            .config
            .cookie_domain
            .as_deref()
            .map(|d| format!("; Domain={d}"))
            .unwrap_or_default();
        let secure = if secure { "; Secure" } else { "" };
        format!("{domain}{secure}")
    }
}

/// A claim of an (unverified) JWT, as text: only used to read our own token's company and a
/// token's `exp`; the API server verifies tokens itself.
fn token_claim(token: &str, path: &[&str]) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let json: Value = serde_json::from_slice(&raw).ok()?;
    let v = path.iter().try_fold(&json, |v, k| v.get(k))?;
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// ClearML's error envelope, for unauthenticated `/api/` requests.
pub fn unauthorized_envelope(endpoint: &str, request_id: &str) -> Value {
    json!({
        "meta": {
            "id": request_id,
            "trx": request_id,
            "endpoint": {"name": endpoint, "requested_version": null, "actual_version": null},
            "result_code": 401,
            "result_subcode": 20,
            "result_msg": "Unauthorized (missing credentials): sign in through single sign-on",
            "error_stack": null,
            "error_data": {}
        },
        "data": {}
    })
}

/// The API action of a path (`/api/v2.31/login.logout` → `login.logout`); one trailing `/` is
/// allowed, as ClearML's own path rule allows it.
pub fn action(path: &str) -> &str {
    let path = path.strip_suffix('/').unwrap_or(path);
    path.rsplit('/').next().unwrap_or_default()
}

/// A string field of a successful call's `data`; its absence makes the answer malformed.
fn answer_field(data: &Value, name: &str, endpoint: &'static str) -> Result<String, ClearmlError> {
    data.get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or(ClearmlError::Malformed {
            endpoint,
            status: 200,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: Value) -> String {
        let enc =
            |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.sig", enc(&json!({"alg": "HS256"})), enc(&payload))
    }

    #[test]
    fn reads_claims_of_a_token() {
        let t = jwt(json!({"exp": 1000, "identity": {"company": "c1"}}));
        assert_eq!(token_claim(&t, &["exp"]).as_deref(), Some("1000"));
        assert_eq!(
            token_claim(&t, &["identity", "company"]).as_deref(),
            Some("c1")
        );
        assert_eq!(token_claim("garbage", &["exp"]), None);
    }

    #[test]
    fn guest_groups_follow_the_connections_case_rule() {
        let env = [
            ("SSO_PROXY__UPSTREAM", "http://127.0.0.1:1"),
            ("SSO_PROXY__PUBLIC_URL", "http://127.0.0.1:2"),
            (
                "SSO_PROXY__SESSION__SECRET",
                "0123456789abcdef0123456789abcdef",
            ),
            ("SSO_PROXY__CLEARML__ENABLED", "true"),
            ("SSO_PROXY__CLEARML__API_URL", "http://127.0.0.1:3"),
            ("SSO_PROXY__CLEARML__API_KEY", "k"),
            ("SSO_PROXY__CLEARML__API_SECRET", "s"),
            ("SSO_PROXY__CLEARML__GUEST_GROUPS", "Viewers"),
        ];
        let sources = crate::config::Sources {
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        };
        let config = crate::config::load(&sources);
        let clearml = config.ok().and_then(|c| c.clearml).expect("bridge config");
        let bridge = Bridge::new(clearml, reqwest::Client::new());
        let viewer = Identity {
            groups: vec!["viewers".into()],
            ..Identity::default()
        };
        assert_eq!(bridge.role_for(&viewer, true), "user");
        assert_eq!(bridge.role_for(&viewer, false), "guest");
        let admin = Identity {
            admin: true,
            ..viewer
        };
        assert_eq!(bridge.role_for(&admin, false), "admin");
    }

    #[test]
    fn action_is_the_last_segment() {
        assert_eq!(action("/api/v2.31/login.logout"), "login.logout");
        assert_eq!(action("/login.supported_modes"), "login.supported_modes");
        assert_eq!(action("/api/v2.31/login.logout/"), "login.logout");
        assert_eq!(action("/api/v2.31/login.logout//"), "");
    }
}
