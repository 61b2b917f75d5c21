//! The start of a SAML login: a new pending state (its `state` is the `RelayState`, its
//! `nonce` the AuthnRequest ID), sealed into a `SameSite=None` pending cookie (the ACS POST is
//! cross-site), and a redirect to the IdP with the AuthnRequest.

use super::{Request, Response};
use crate::app::App;
use crate::error::Error;
use crate::providers::saml::{request, SamlProvider};
use crate::session::{PendingLogin, PendingStore};

pub fn start(
    app: &App,
    provider: &SamlProvider,
    return_to: String,
    req: &Request<'_>,
) -> Result<Response, Error> {
    let pending = PendingLogin {
        state: PendingStore::random_token(),
        nonce: request::new_id(),
        pkce_verifier: None,
        provider: provider.id().to_owned(),
        return_to,
        created_at: app.now(),
        test: false,
        generation: provider.generation,
    };
    let url = provider.login_url(&pending)?;
    if provider.config.debug {
        tracing::info!(provider = %provider.id(), request_id = %req.request_id, "redirecting to the IdP with an AuthnRequest");
    }
    let cookies = app.pending.issue_with_same_site_none(&pending, req.cookies);
    Ok(Response::redirect(302, url.as_str()).with_cookies(cookies))
}
