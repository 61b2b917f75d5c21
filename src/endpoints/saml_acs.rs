//! `POST /callback_<id>` for a SAML connection: the Assertion Consumer Service (HTTP-POST
//! binding). `RelayState` names this browser's pending login (sealed cookie), whose AuthnRequest
//! ID the response must answer; the response is verified by the strict wrapper, then the shared
//! `login_finish` admits (and provisions) the user and starts a session (303 to the saved target). Any failure
//! gets an error page (400, 403 for signature failures, 413 when oversized) and no session.
//! `GET /callback_<id>` with a `SAMLResponse` is the return from SP-initiated Single Logout.

use std::sync::Arc;

use http::Method;

use super::redirect::safe_target;
use super::{Request, Response};
use crate::app::App;
use crate::endpoints::login_finish::finish;
use crate::error::Error;
use crate::identity::Admission;
use crate::providers::saml::verify::{ResponseError, MAX_ENCODED_RESPONSE};
use crate::providers::saml::{pack_sid, SamlError, SamlLogin, SamlProvider};
use crate::session::Session;

pub async fn handle(app: &App, id: &str, req: &Request<'_>) -> Result<Response, Error> {
    let registry = app.registry.load_full();
    let provider = registry
        .get_saml(id)
        .filter(|p| p.config.active)
        .ok_or_else(|| Error::UnknownConnection(id.to_owned()))?;
    match *req.method {
        Method::POST => acs(app, provider, req).await,
        Method::GET | Method::HEAD => logout_return(app, req),
        _ => Err(Error::MethodNotAllowed),
    }
}

fn refused(e: ResponseError) -> Error {
    Error::Saml(SamlError::Response(e))
}

async fn acs(
    app: &App,
    provider: &Arc<SamlProvider>,
    req: &Request<'_>,
) -> Result<Response, Error> {
    let encoded = req
        .form_param("SAMLResponse")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::BadRequest("the request carries no SAMLResponse".into()))?;
    if encoded.len() > MAX_ENCODED_RESPONSE {
        return Err(refused(ResponseError::TooLarge));
    }
    let now = app.now();
    let idp_initiated = provider.config.allow_idp_initiated;
    let relay_state = req.form_param("RelayState").filter(|s| !s.is_empty());
    let taken = match relay_state.as_deref() {
        Some(state) => Some(app.pending.take(state, req.cookies, now).await),
        None => None,
    };
    let (pending, clear) = match taken {
        Some(Ok((pending, clear))) => (Some(pending), Some(clear)),
        Some(Err(e)) if !idp_initiated => return Err(e.into()),
        None if !idp_initiated => return Err(refused(ResponseError::Unsolicited)),
        // Unsolicited, and allowed: a RelayState that names no login of ours is ignored.
        _ => (None, None),
    };
    if pending.as_ref().is_some_and(|p| p.test) {
        // A Test Provider login this process no longer knows: it never creates a session.
        return Err(Error::BadRequest(
            "this Test Provider login expired; start the test again".into(),
        ));
    }
    if pending
        .as_ref()
        .is_some_and(|p| p.provider != provider.id())
    {
        return Err(Error::BadRequest(
            "the login was started at another connection".into(),
        ));
    }
    // Finish on the build of the connection the login started on, even if an edit replaced it.
    let provider = &*match &pending {
        Some(p) => app.retired.saml_for(provider, p.generation),
        None => provider.clone(),
    };
    let request_id = pending.as_ref().map(|p| p.nonce.as_str());
    let result = provider.complete(&encoded, request_id, now, &app.once).await.inspect_err(|e| {
        tracing::info!(provider = %provider.id(), request_id = %req.request_id, error = %e, "SAML response refused");
    })?;
    let c = &provider.config;
    let known_groups = app.known_groups();
    let admission = Admission::saml(c, &known_groups);
    let claims = result.claims.clone();
    let session = new_session(app, result);
    let company = c.default_company.as_deref();
    let cookies = finish(app, &admission, company, &claims, session).await?;
    tracing::info!(provider = %provider.id(), request_id = %req.request_id, unsolicited = pending.is_none(), "login complete");
    let target = pending.map_or_else(|| "/".to_owned(), |p| p.return_to);
    Ok(Response::redirect(303, &target).with_cookies(clear.into_iter().chain(cookies)))
}

/// A new session; `sub`/`sid` keep what a LogoutRequest must repeat (NameID, SessionIndex
/// and NameID Format).
fn new_session(app: &App, result: SamlLogin) -> Session {
    let now = app.now();
    let a = &result.assertion;
    let mut session = Session::new(result.identity, now, app.config.session.max_lifetime);
    session.sub = Some(a.name_id.clone());
    session.sid = pack_sid(a.session_index.as_deref(), a.name_id_format.as_deref());
    session
}

/// The IdP's LogoutResponse after SP-initiated logout (the session already ended here): back
/// to the `RelayState` target, checked again like any redirect target.
fn logout_return(app: &App, req: &Request<'_>) -> Result<Response, Error> {
    if req.query_param("SAMLResponse").is_none() {
        return Err(Error::BadRequest(
            "expected a SAML LogoutResponse (IdP-initiated logout is not supported)".into(),
        ));
    }
    let config = &app.config;
    let rd = req.query_param("RelayState");
    let target = safe_target(
        rd.as_deref(),
        &config.public_url,
        &config.allowed_redirect_hosts,
    );
    Ok(Response::redirect(303, &target))
}
