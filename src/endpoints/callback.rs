//! `GET /callback_<id>`: the OIDC authorization response. Every failure gets an error page and
//! creates no session; success creates a new session and redirects to the saved target.

use http::Method;

use super::{Request, Response};
use crate::app::App;
use crate::endpoints::login_finish::finish;
use crate::error::Error;
use crate::identity::Admission;
use crate::providers::oidc::{LoginResult, OidcError, OidcProvider};
use crate::session::{Session, StoredToken};

pub async fn handle(app: &App, id: &str, req: &Request<'_>) -> Result<Response, Error> {
    if req.method != Method::GET {
        return Err(Error::MethodNotAllowed);
    }
    let registry = app.registry.load_full();
    let provider = registry
        .get(id)
        .filter(|p| p.config.active)
        .ok_or_else(|| Error::UnknownConnection(id.to_owned()))?;
    let state = req.query_param("state");
    if let Some(error) = req.query_param("error") {
        // Consume the pending login so the same state can never be used again.
        if let Some(state) = &state {
            let _ = app.pending.take(state, req.cookies, app.now()).await;
        }
        let description = req.query_param("error_description");
        tracing::info!(provider = %id, %error, "the identity provider returned an error");
        return Err(OidcError::IdpError { error, description }.into());
    }
    let state = state.ok_or_else(|| Error::BadRequest("the callback has no state".into()))?;
    let (pending, clear_pending) = app.pending.take(&state, req.cookies, app.now()).await?;
    if pending.test {
        // A Test Provider login this process no longer knows: it never creates a session.
        return Err(Error::BadRequest(
            "this Test Provider login expired; start the test again".into(),
        ));
    }
    if pending.provider != id {
        return Err(Error::BadRequest(
            "the login was started at another connection".into(),
        ));
    }
    // Finish on the build of the connection the login started on, even if an edit replaced it.
    let provider = &app.retired.oidc_for(provider, pending.generation);
    let clear = vec![clear_pending];
    if let Some(iss) = req.query_param("iss") {
        provider.check_response_issuer(&iss)?;
    }
    let code = req
        .query_param("code")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Error::BadRequest("the callback has no code".into()))?;
    let c = &provider.config;
    let debug_refusal = |e: &Error| {
        if c.debug {
            tracing::info!(provider = %id, request_id = %req.request_id, reason = %e, "login refused");
        }
    };
    let result = provider
        .complete(&code, &pending, app.now())
        .await
        .map_err(Error::from)
        .inspect_err(debug_refusal)?;
    let known_groups = app.known_groups();
    let admission = Admission::oidc(c, &known_groups);
    let claims = result.claims.clone();
    let session = new_session(app, provider, result);
    let cookies = finish(
        app,
        &admission,
        c.default_company.as_deref(),
        &claims,
        session,
    )
    .await
    .inspect_err(debug_refusal)?;
    tracing::info!(provider = %id, request_id = %req.request_id, "login complete");
    Ok(Response::redirect(302, &pending.return_to).with_cookies(clear.into_iter().chain(cookies)))
}

/// The new session. Tokens are kept only when something uses them (IdP logout, the
/// `Authorization`/access-token headers, refresh), which keeps sessions small.
fn new_session(app: &App, provider: &OidcProvider, result: LoginResult) -> Session {
    let now = app.now();
    let headers = &app.config.headers;
    let mut session = Session::new(result.identity, now, app.config.session.max_lifetime);
    if provider.config.idp_logout || headers.pass_authorization {
        session.id_token = result.id_token.map(StoredToken::new);
    }
    if headers.pass_access_token {
        session.access_token = result.access_token.map(StoredToken::new);
    }
    // Kept for refresh (which also notices a user disabled at the IdP) and revocation.
    session.refresh_token = result.refresh_token.map(StoredToken::new);
    session.access_expires_at = result.access_expires_at;
    let claim = |name: &str| {
        result
            .claims
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    session.sub = claim("sub");
    session.sid = claim("sid");
    session
}
