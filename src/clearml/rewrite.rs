//! Rewrites of ClearML API answers that pass through the proxy: `login.supported_modes` (no
//! guest mode; `authenticated` reflects the proxy session) and `login.logout` (the IdP's
//! end-session URL as `data.redirect_url`).

use serde_json::Value;

/// Which answer is rewritten, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rewrite {
    SupportedModes { authenticated: bool },
    Logout { redirect_url: Option<String> },
}

/// Which rewrite a normalised path needs, if any.
pub fn for_path(path: &str) -> Option<RewriteKind> {
    match super::action(path) {
        "login.supported_modes" => Some(RewriteKind::SupportedModes),
        "login.logout" | "auth.logout" => Some(RewriteKind::Logout),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RewriteKind {
    SupportedModes,
    Logout,
}

/// The rewritten body, or `None` when it is not a JSON envelope (then it passes unchanged).
pub fn apply(rewrite: &Rewrite, body: &[u8]) -> Option<Vec<u8>> {
    let mut json: Value = serde_json::from_slice(body).ok()?;
    let data = json.get_mut("data")?.as_object_mut()?;
    match rewrite {
        Rewrite::SupportedModes { authenticated } => {
            if let Some(guest) = data
                .get_mut("basic")
                .and_then(|b| b.get_mut("guest"))
                .and_then(Value::as_object_mut)
            {
                guest.insert("enabled".into(), Value::Bool(false));
            }
            data.insert("authenticated".into(), Value::Bool(*authenticated));
            // A non-empty list puts the open-source web app into SSO-only mode: a blank page.
            data.insert("sso_providers".into(), Value::Array(Vec::new()));
        }
        Rewrite::Logout { redirect_url } => {
            if let Some(url) = redirect_url {
                data.insert("redirect_url".into(), Value::String(url.clone()));
            }
        }
    }
    serde_json::to_vec(&json).ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn supported_modes_lose_guest_and_reflect_the_session() {
        let body = json!({"meta": {"result_code": 200}, "data": {"basic": {"enabled": true, "guest": {"enabled": true, "name": "g"}}, "sso": {}, "sso_providers": [{"name": "x"}], "authenticated": true}});
        let out = apply(
            &Rewrite::SupportedModes {
                authenticated: false,
            },
            body.to_string().as_bytes(),
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["data"]["basic"]["guest"]["enabled"], json!(false));
        assert_eq!(v["data"]["basic"]["guest"]["name"], json!("g"));
        assert_eq!(v["data"]["authenticated"], json!(false));
        assert_eq!(v["data"]["sso_providers"], json!([]));
        assert_eq!(v["meta"]["result_code"], json!(200));
    }

    #[test]
    fn logout_gets_the_redirect_url() {
        let body = json!({"meta": {}, "data": {}}).to_string();
        let out = apply(
            &Rewrite::Logout {
                redirect_url: Some("https://idp/logout".into()),
            },
            body.as_bytes(),
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["data"]["redirect_url"], json!("https://idp/logout"));
        assert_eq!(
            apply(&Rewrite::Logout { redirect_url: None }, b"not json"),
            None
        );
    }

    #[test]
    fn paths_pick_their_rewrite() {
        assert_eq!(
            for_path("/api/v2.31/login.supported_modes"),
            Some(RewriteKind::SupportedModes)
        );
        assert_eq!(for_path("/v999.0/auth.logout"), Some(RewriteKind::Logout));
        assert_eq!(
            for_path("/api/v2.31/login.logout/"),
            Some(RewriteKind::Logout)
        );
        assert_eq!(for_path("/api/v2.31/tasks.get_all"), None);
    }
}
