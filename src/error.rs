//! The crate's one error type and the one function that turns it into a response: a short
//! page (or JSON for API clients) with the request id, never a token or a stack trace.

use crate::app::App;
use crate::clearml::ClearmlError;
use crate::endpoints::{pages, Request, Response};
use crate::identity::Refusal;
use crate::providers::id_token::TokenError;
use crate::providers::jwks::JwksError;
use crate::providers::oidc::OidcError;
use crate::providers::saml::verify::ResponseError;
use crate::providers::saml::SamlError;
use crate::session::{PendingError, SessionError};
use crate::telemetry::metrics::LoginFailure;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("no connection named {0:?} is active")]
    UnknownConnection(String),
    #[error("no identity provider connection is active")]
    NoConnections,
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("login state: {0}")]
    Pending(#[from] PendingError),
    #[error(transparent)]
    Oidc(#[from] OidcError),
    #[error("session: {0}")]
    Session(#[from] SessionError),
    #[error("{0}")]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Clearml(#[from] ClearmlError),
    #[error(transparent)]
    Saml(#[from] SamlError),
}

impl Error {
    pub fn status(&self) -> u16 {
        match self {
            Error::Pending(PendingError::Unavailable) => 503,
            Error::BadRequest(_) | Error::Pending(_) | Error::UnknownConnection(_) => 400,
            Error::NotFound => 404,
            Error::MethodNotAllowed => 405,
            Error::Forbidden(_) => 403,
            Error::NoConnections => 503,
            Error::Session(SessionError::Unavailable(_)) => 503,
            // The identity the IdP sent does not fit the cookie store: this login is refused
            // as it is (retrying cannot help, nothing is down), not a server fault (DESIGN 4).
            Error::Session(SessionError::TooLarge { .. }) => 400,
            Error::Session(_) => 500,
            Error::Refused(_) => 403,
            Error::Clearml(_) => 502,
            Error::Oidc(e) => oidc_status(e),
            Error::Saml(e) => e.status(),
        }
    }

    /// A short title for the page.
    fn title(&self) -> &'static str {
        match self {
            Error::BadRequest(_) => "Bad request",
            Error::NotFound => "Not found",
            Error::MethodNotAllowed => "Method not allowed",
            Error::UnknownConnection(_) | Error::NoConnections => "Sign-in is not available",
            Error::Forbidden(_) => "Access denied",
            Error::Pending(_) => "Sign-in could not be completed",
            Error::Session(SessionError::Unavailable(_)) => "Sign-in is not available",
            Error::Session(_) => "Sign-in could not be completed",
            Error::Refused(_) => "Access denied",
            Error::Clearml(_) => "ClearML is unavailable",
            Error::Oidc(e) if oidc_status(e) == 502 => "The identity provider is unavailable",
            Error::Oidc(OidcError::Refused(_)) => "Access denied",
            Error::Oidc(_) => "Sign-in failed",
            Error::Saml(e) if e.status() >= 500 => "The identity provider is unavailable",
            Error::Saml(SamlError::Refused(_)) => "Access denied",
            Error::Saml(_) => "Sign-in failed",
        }
    }
}

impl Error {
    /// The `reason` of a failed login in the metrics: a small fixed set.
    pub fn login_failure(&self) -> LoginFailure {
        match self {
            Error::Pending(_) => LoginFailure::State,
            Error::BadRequest(_) => LoginFailure::BadRequest,
            Error::Refused(_) | Error::Forbidden(_) => LoginFailure::Admission,
            Error::Clearml(_) => LoginFailure::UpstreamProvisioning,
            Error::Oidc(e) => oidc_failure(e),
            Error::Saml(SamlError::Response(ResponseError::Status { .. })) => {
                LoginFailure::IdpError
            }
            Error::Saml(SamlError::Response(_)) => LoginFailure::SamlResponse,
            Error::Saml(SamlError::Refused(_)) => LoginFailure::Admission,
            Error::Saml(
                SamlError::Unreachable(_) | SamlError::NotReady | SamlError::Metadata(_),
            ) => LoginFailure::IdpUnavailable,
            Error::Saml(SamlError::Message(_) | SamlError::Key(_))
            | Error::NotFound
            | Error::MethodNotAllowed
            | Error::UnknownConnection(_)
            | Error::NoConnections
            | Error::Session(_) => LoginFailure::Other,
        }
    }
}

fn oidc_failure(e: &OidcError) -> LoginFailure {
    match e {
        OidcError::IdpError { .. } => LoginFailure::IdpError,
        OidcError::Unreachable(_)
        | OidcError::Discovery(_)
        | OidcError::NotReady(_)
        | OidcError::Jwks(JwksError::Fetch { .. } | JwksError::Status { .. })
        | OidcError::Jwks(JwksError::Malformed { .. }) => LoginFailure::IdpUnavailable,
        OidcError::TokenRejected(_) => LoginFailure::Token,
        OidcError::Token(_) | OidcError::AccessToken(_) | OidcError::Jwks(_) => {
            LoginFailure::IdToken
        }
        OidcError::Userinfo(_) => LoginFailure::Userinfo,
        OidcError::Refused(_) => LoginFailure::Admission,
    }
}

fn oidc_status(e: &OidcError) -> u16 {
    match e {
        OidcError::Unreachable(_) | OidcError::Discovery(_) | OidcError::NotReady(_) => 502,
        OidcError::Jwks(JwksError::UnknownKey { .. }) => 401,
        OidcError::Jwks(_) => 502,
        OidcError::Token(TokenError::BadSignature)
        | OidcError::AccessToken(TokenError::BadSignature) => 403,
        OidcError::Refused(_) => 403,
        OidcError::IdpError { .. }
        | OidcError::TokenRejected(_)
        | OidcError::Token(_)
        | OidcError::AccessToken(_)
        | OidcError::Userinfo(_) => 401,
    }
}

/// The response for an error: HTML for browsers, JSON when the client asked for JSON.
pub fn to_response(err: &Error, req: &Request<'_>, app: &App) -> Response {
    let status = err.status();
    if status >= 500 {
        tracing::warn!(request_id = %req.request_id, status, error = %err, "request failed");
    } else {
        tracing::info!(request_id = %req.request_id, status, error = %err, "request refused");
    }
    let wants_json = req
        .header("accept")
        .is_some_and(|a| a.contains("application/json") && !a.contains("text/html"));
    if wants_json {
        return Response::json(
            status,
            &serde_json::json!({"error": err.title(), "message": err.to_string(), "request_id": req.request_id}),
        );
    }
    let login = matches!(err, Error::Oidc(_) | Error::Pending(_) | Error::Saml(_))
        .then(|| pages::login_link(app));
    Response::html(
        status,
        pages::error_page(
            err.title(),
            &err.to_string(),
            req.request_id,
            login.as_deref(),
        ),
    )
}
