//! Test Provider: a real login against the IdP that creates no session.
//!
//! The API hands out a single-use ticket URL (`/_sso/admin/test?ticket=…`, 10 minutes) for a
//! live connection or for unsaved settings. Opening it (in the page's popup) starts the
//! connection's OIDC or SAML flow with a pending login marked `test`, bound to this browser by
//! the usual sealed pending cookie. The callback (`/callback_<id>`, routed here by its
//! `state`/`RelayState`) verifies the answer exactly like a login, then shows the raw claims
//! or attributes, the mapped identity and whether the login rules would admit the user, or the
//! error. It never creates a session, a user record or a ClearML user.

use std::sync::Arc;
use std::time::Duration;

use html_escape::encode_text as text;
use http::Method;
use moka::sync::Cache;
use serde_json::{json, Value};

use super::pages;
use super::registry::Built;
use crate::app::App;
use crate::config::PkceMethod;
use crate::endpoints::{Request, Response};
use crate::error::Error;
use crate::identity::{admit, Admission, Identity};
use crate::providers::saml::verify::MAX_ENCODED_RESPONSE;
use crate::session::pending::PENDING_TTL;
use crate::session::{PendingLogin, PendingStore};

/// Tickets (`t:<ticket>`) and started tests (`s:<state>`), each kept for `PENDING_TTL`.
pub struct Tests {
    cache: Cache<String, Arc<Built>>,
}

impl Tests {
    pub fn new() -> Self {
        Tests {
            cache: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(PENDING_TTL))
                .build(),
        }
    }
}

impl Default for Tests {
    fn default() -> Self {
        Self::new()
    }
}

/// A single-use URL that starts a test login against `target`.
pub fn issue(app: &App, target: Built) -> String {
    let ticket = PendingStore::random_token();
    app.admin
        .tests
        .cache
        .insert(format!("t:{ticket}"), Arc::new(target));
    let mut url = app.config.public_url.clone();
    url.set_path("/_sso/admin/test");
    url.query_pairs_mut().append_pair("ticket", &ticket);
    url.into()
}

/// The state of a callback: `state` (OIDC, GET) or `RelayState` (SAML ACS, POST).
fn callback_state(req: &Request<'_>) -> Option<String> {
    match *req.method {
        Method::POST => req.form_param("RelayState"),
        _ => req.query_param("state"),
    }
}

/// Whether this callback answers a test login started here.
pub fn owns(app: &App, req: &Request<'_>) -> bool {
    callback_state(req).is_some_and(|s| app.admin.tests.cache.contains_key(&format!("s:{s}")))
}

/// `GET /_sso/admin/test?ticket=…`: start the test login (the ticket is the authorisation).
pub async fn start(app: &App, req: &Request<'_>) -> Response {
    let ticket = req.query_param("ticket").unwrap_or_default();
    let Some(target) = app.admin.tests.cache.remove(&format!("t:{ticket}")) else {
        let body = "<h1>Test Provider</h1><p>This test link expired or was already used. Start the test again from the admin page.</p>";
        return pages::standalone(400, "Test Provider", body, None);
    };
    let mut pending = PendingLogin {
        state: PendingStore::random_token(),
        nonce: PendingStore::random_token(),
        pkce_verifier: None,
        provider: target.id().to_owned(),
        return_to: "/_sso/admin/connections".to_owned(),
        created_at: app.now(),
        test: true,
        generation: 0,
    };
    let started = match target.as_ref() {
        Built::Oidc(p) => {
            if p.config.code_challenge_method != PkceMethod::None {
                pending.pkce_verifier = Some(PendingStore::random_token());
            }
            let url = p.authorization_url(&pending).await.map_err(Error::from);
            url.map(|u| (u, app.pending.issue(&pending, req.cookies)))
        }
        Built::Saml(p) => {
            pending.nonce = crate::providers::saml::request::new_id();
            let url = p.login_url(&pending).map_err(Error::from);
            url.map(|u| {
                (
                    u,
                    app.pending.issue_with_same_site_none(&pending, req.cookies),
                )
            })
        }
    };
    match started {
        Ok((url, cookies)) => {
            app.admin
                .tests
                .cache
                .insert(format!("s:{}", pending.state), target);
            Response::redirect(302, url.as_str()).with_cookies(cookies)
        }
        Err(e) => result_page(&target, &Outcome::failed(e.to_string()), None),
    }
}

/// What a test login produced.
struct Outcome {
    claims: Option<Value>,
    identity: Option<Identity>,
    /// `Ok` when the login rules admit the user, else the refusal.
    admitted: Option<Result<(), String>>,
    error: Option<String>,
}

impl Outcome {
    fn failed(error: String) -> Self {
        Outcome {
            claims: None,
            identity: None,
            admitted: None,
            error: Some(error),
        }
    }
}

/// The callback of a test login: verify, map, show. No session.
pub async fn callback(app: &App, id: &str, req: &Request<'_>) -> Result<Response, Error> {
    let state = callback_state(req).unwrap_or_default();
    let Some(target) = app.admin.tests.cache.remove(&format!("s:{state}")) else {
        return Err(Error::BadRequest("unknown Test Provider login".into()));
    };
    let (pending, clear) = match app.pending.take(&state, req.cookies, app.now()).await {
        Ok(taken) => taken,
        Err(e) => {
            let outcome = Outcome::failed(Error::from(e).to_string());
            return Ok(result_page(&target, &outcome, None));
        }
    };
    if !pending.test || pending.provider != id || target.id() != id {
        let outcome = Outcome::failed("the test login was started at another connection".into());
        return Ok(result_page(&target, &outcome, Some(clear)));
    }
    let outcome = match (target.as_ref(), req.method) {
        (Built::Oidc(p), &Method::GET) => oidc(app, p, &pending, req).await,
        (Built::Saml(p), &Method::POST) => saml(app, p, &pending, req).await,
        _ => return Err(Error::MethodNotAllowed),
    };
    tracing::info!(provider = %id, request_id = %req.request_id, ok = outcome.error.is_none(), "Test Provider login finished");
    Ok(result_page(&target, &outcome, Some(clear)))
}

async fn oidc(
    app: &App,
    p: &crate::providers::oidc::OidcProvider,
    pending: &PendingLogin,
    req: &Request<'_>,
) -> Outcome {
    if let Some(error) = req.query_param("error") {
        let description = req.query_param("error_description").unwrap_or_default();
        return Outcome::failed(format!(
            "the identity provider returned `{error}`: {description}"
        ));
    }
    if let Some(iss) = req.query_param("iss") {
        if let Err(e) = p.check_response_issuer(&iss) {
            return Outcome::failed(e.to_string());
        }
    }
    let Some(code) = req.query_param("code").filter(|c| !c.is_empty()) else {
        return Outcome::failed("the callback has no code".into());
    };
    match p.complete(&code, pending, app.now()).await {
        Ok(result) => {
            let c = &p.config;
            let known_groups = app.known_groups();
            let rules = Admission::oidc(c, &known_groups);
            mapped(app, result.identity, result.claims, &rules)
        }
        Err(e) => Outcome::failed(e.to_string()),
    }
}

async fn saml(
    app: &App,
    p: &crate::providers::saml::SamlProvider,
    pending: &PendingLogin,
    req: &Request<'_>,
) -> Outcome {
    let Some(encoded) = req.form_param("SAMLResponse").filter(|s| !s.is_empty()) else {
        return Outcome::failed("the request carries no SAMLResponse".into());
    };
    if encoded.len() > MAX_ENCODED_RESPONSE {
        return Outcome::failed("the SAMLResponse is too large".into());
    }
    match p
        .complete(&encoded, Some(&pending.nonce), app.now(), &app.once)
        .await
    {
        Ok(result) => {
            let c = &p.config;
            let known_groups = app.known_groups();
            let rules = Admission::saml(c, &known_groups);
            mapped(app, result.identity, result.claims, &rules)
        }
        Err(e) => Outcome::failed(e.to_string()),
    }
}

fn mapped(app: &App, identity: Identity, claims: Value, rules: &Admission<'_>) -> Outcome {
    let known = app
        .users
        .get(&identity.provider, &identity.user)
        .ok()
        .flatten()
        .is_some()
        || app.is_known_user(
            &identity.provider,
            &identity.user,
            rules.trusted_email(&identity, &claims),
        );
    let admitted = admit(&identity, &claims, rules, known).map_err(|r| r.to_string());
    Outcome {
        claims: Some(claims),
        identity: Some(identity),
        admitted: Some(admitted),
        error: None,
    }
}

fn row(label: &str, id: &str, value: &str) -> String {
    format!(
        "<tr><th>{}</th><td id=\"{id}\">{}</td></tr>",
        text(label),
        text(value)
    )
}

fn result_page(target: &Built, outcome: &Outcome, clear: Option<String>) -> Response {
    let mut body = format!("<h1>Test Provider: {}</h1>", text(target.display_name()));
    match &outcome.error {
        None => body.push_str("<p class=\"status ok\" id=\"test-status\">Success: the identity provider answered and the claims were mapped.</p>"),
        Some(e) => body.push_str(&format!(
            "<p class=\"status fail\" id=\"test-status\">Failed</p><p class=\"error\" id=\"test-error\">{}</p>",
            text(e)
        )),
    }
    if let Some(i) = &outcome.identity {
        body.push_str("<h2>Mapped identity</h2><table class=\"identity\">");
        body.push_str(&row("User ID", "mapped-user", &i.user));
        body.push_str(&row(
            "Email",
            "mapped-email",
            i.email.as_deref().unwrap_or("—"),
        ));
        body.push_str(&row(
            "Name",
            "mapped-name",
            i.name.as_deref().unwrap_or("—"),
        ));
        let username = i.preferred_username.as_deref().unwrap_or("—");
        body.push_str(&row("Preferred username", "mapped-username", username));
        body.push_str(&row("Groups", "mapped-groups", &i.groups.join(", ")));
        body.push_str(&row(
            "Admin",
            "mapped-admin",
            if i.admin { "yes" } else { "no" },
        ));
        body.push_str("</table>");
    }
    if let Some(admitted) = &outcome.admitted {
        let verdict = match admitted {
            Ok(()) => "<p class=\"status ok\" id=\"admission\">The login rules would admit this user.</p>".to_owned(),
            Err(r) => format!("<p class=\"status fail\" id=\"admission\">The login rules would refuse this user: {}</p>", text(r)),
        };
        body.push_str(&format!("<h2>Login rules</h2>{verdict}"));
    }
    if let Some(claims) = &outcome.claims {
        let pretty = serde_json::to_string_pretty(claims).unwrap_or_default();
        body.push_str(&format!(
            "<h2>Raw claims</h2><pre id=\"raw-claims\">{}</pre>",
            text(&pretty)
        ));
    }
    body.push_str("<p class=\"muted\">No session was created.</p><button type=\"button\" id=\"close-test\">Close</button>");
    let summary = json!({
        "type": "sso-test-result",
        "connection": target.id(),
        "ok": outcome.error.is_none(),
        "error": outcome.error,
        "identity": outcome.identity,
        "admitted": outcome.admitted.as_ref().map(|a| a.is_ok()),
    });
    let status = if outcome.error.is_some() { 400 } else { 200 };
    pages::standalone(status, "Test Provider", &body, Some(&summary)).with_cookies(clear)
}
