//! The pingora `ProxyHttp` implementation: thin dispatch only. Each request is stripped of
//! client identity headers, its path normalised, its session looked up; [`decide::decide`]
//! picks the outcome and this file carries it out.

pub mod bridge;
pub mod decide;
pub mod headers;
pub mod identity_token;
pub mod path;
pub mod upstream;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, COOKIE};
use pingora::http::ResponseHeader;
use pingora::prelude::HttpPeer;
use pingora::proxy::{ProxyHttp, Session};
use tracing::Instrument;

use crate::app::App;
use crate::config::SessionStoreKind;
use crate::endpoints::{self, userinfo, Request, Response};
use crate::providers::refresh;
use crate::session::{LoadedSession, RequestCookies};
use crate::telemetry::metrics::Outcome;
use decide::{decide, Decision, RequestView};

/// Largest ClearML answer (`login.supported_modes`, `login.logout`) that is rewritten.
const MAX_REWRITE_BODY: usize = 1024 * 1024;

/// Largest request body our own endpoints read (413 above): room for a SAML ACS POST with a
/// `SAMLResponse` at its 256 KiB cap plus form encoding and `RelayState`.
const MAX_OWN_BODY: usize = 320 * 1024;

/// Per-request state.
pub struct Ctx {
    request_id: String,
    started: Instant,
    span: tracing::Span,
    /// Set when the request is forwarded.
    forward: Option<Forward>,
    /// For the metrics: the decision, and when the upstream was chosen.
    outcome: Option<Outcome>,
    upstream_started: Option<Instant>,
    /// Counts this request as in flight until it is dropped.
    _in_flight: crate::shutdown::InFlightGuard,
}

struct Forward {
    path_and_query: String,
    session: Option<Arc<crate::session::Session>>,
    set_cookies: Vec<String>,
    /// A fresh ClearML token that replaces the one in the upstream `Cookie` header.
    clearml_token: Option<String>,
    /// A ClearML answer to rewrite, and its body as it arrives.
    rewrite: Option<crate::clearml::rewrite::Rewrite>,
    body: Vec<u8>,
}

/// The proxy service.
pub struct SsoProxy {
    pub app: Arc<App>,
    ids: RequestIds,
}

impl SsoProxy {
    pub fn new(app: Arc<App>) -> Self {
        SsoProxy {
            app,
            ids: RequestIds::new(),
        }
    }

    /// Everything before forwarding. `Ok(true)`: a response was written.
    async fn filter(&self, session: &mut Session, ctx: &mut Ctx) -> pingora::Result<bool> {
        let app = &self.app;
        let req = session.req_header_mut();
        headers::strip_reserved(req, &app.strip);
        // ClearML bridge: a request with its own Authorization is an API client (SDK, agent).
        let api_client =
            app.bridge.is_some() && req.headers.contains_key(http::header::AUTHORIZATION);
        if app.bridge.is_some() && !api_client {
            bridge::strip_impersonation(req);
        }
        let path = match path::normalize(req.uri.path()) {
            Ok(p) => p,
            Err(e) => {
                ctx.outcome = Some(Outcome::BadPath);
                tracing::debug!(error = %e, "path refused");
                let body = format!(
                    "{{\"error\":\"bad_request\",\"message\":\"{e}\",\"request_id\":\"{}\"}}",
                    ctx.request_id
                );
                write(session, Response::new(400, "application/json", body)).await?;
                return Ok(true);
            }
        };
        let query = req.uri.query().map(str::to_owned);
        let path_and_query = match &query {
            Some(q) => format!("{path}?{q}"),
            None => path.clone(),
        };
        let cookies =
            RequestCookies::parse(req.headers.get_all(COOKIE).iter().map(|v| v.as_bytes()));
        let loaded = if api_client {
            None
        } else {
            app.sessions.load(&cookies, app.now()).await
        };
        let (loaded, mut session_cookies) = revalidate(app, loaded, &cookies).await;
        let view = RequestView {
            method: &req.method,
            path: &path,
            headers: &req.headers,
        };
        let mut decision = decide(view, loaded.is_some() || api_client, &app.routes);
        let rewrite = match (&app.bridge, &decision) {
            (Some(_), Decision::Own(_)) => None,
            (Some(bridge), _) if !api_client => {
                bridge::plan(
                    app,
                    bridge,
                    &path,
                    &cookies,
                    loaded.as_ref(),
                    &mut decision,
                    &mut session_cookies,
                )
                .await
            }
            _ => None,
        };
        tracing::debug!(?decision, path = %path, api_client, "decided");
        ctx.outcome = Some(match decision {
            Decision::Forward => Outcome::Forwarded,
            Decision::RedirectToLogin => Outcome::RedirectedToLogin,
            Decision::Unauthenticated => Outcome::Unauthenticated,
            Decision::Own(_) => Outcome::OwnEndpoint,
        });
        match decision {
            Decision::Forward => {
                let session_ref = loaded.map(|l| l.session);
                let clearml_token = match (&app.bridge, &session_ref) {
                    (Some(bridge), Some(s)) if rewrite.is_none() => {
                        bridge::reissue_if_due(app, bridge, s, &cookies, &mut session_cookies).await
                    }
                    _ => None,
                };
                ctx.forward = Some(Forward {
                    path_and_query,
                    set_cookies: session_cookies,
                    session: session_ref,
                    clearml_token,
                    rewrite,
                    body: Vec::new(),
                });
                Ok(false)
            }
            Decision::RedirectToLogin => {
                let mut login = app.config.public_url.clone();
                login.set_path("/_sso/login");
                login.query_pairs_mut().append_pair("rd", &path_and_query);
                let response =
                    Response::redirect(302, login.as_str()).with_cookies(session_cookies);
                write(session, response).await?;
                Ok(true)
            }
            Decision::Unauthenticated => {
                let response = match &app.bridge {
                    Some(_) if path.starts_with("/api/") => Response::json(
                        401,
                        &crate::clearml::unauthorized_envelope(
                            crate::clearml::action(&path),
                            &ctx.request_id,
                        ),
                    ),
                    _ => userinfo::unauthenticated_with(app, Some(&path_and_query)),
                };
                write(session, response.with_cookies(session_cookies)).await?;
                Ok(true)
            }
            Decision::Own(route) => {
                let body = read_body(session).await?;
                let req = session.req_header();
                let request = Request {
                    method: &req.method,
                    path: &path,
                    query: query.as_deref(),
                    headers: &req.headers,
                    cookies: &cookies,
                    session: loaded.as_ref(),
                    body,
                    request_id: &ctx.request_id,
                };
                let response = endpoints::handle(app, route, &request).await;
                write(session, with_session_cookies(response, session_cookies)).await?;
                Ok(true)
            }
        }
    }
}

/// Attach the session's own cookie updates unless the endpoint set cookies itself (a new
/// session at the callback, cleared cookies at logout).
fn with_session_cookies(response: Response, cookies: Vec<String>) -> Response {
    let sets_own = response
        .headers
        .iter()
        .any(|(n, _)| n == http::header::SET_COOKIE);
    if sets_own {
        response
    } else {
        response.with_cookies(cookies)
    }
}

/// Apply back-channel revocations and refresh a session whose access token nears expiry.
/// Returns the session to use and the `Set-Cookie` values the response must carry.
async fn revalidate(
    app: &Arc<App>,
    loaded: Option<LoadedSession>,
    cookies: &RequestCookies,
) -> (Option<LoadedSession>, Vec<String>) {
    let Some(mut loaded) = loaded else {
        return (None, Vec::new());
    };
    if app.revocations.is_revoked(&loaded.session) {
        tracing::debug!(user = %loaded.session.identity.user, "session ended by back-channel logout");
        return (None, app.sessions.destroy(cookies).await);
    }
    let now = app.now();
    if !refresh::due(&loaded.session, now) {
        let set = std::mem::take(&mut loaded.set_cookies);
        return (Some(loaded), set);
    }
    let server_side = app.config.session.store != SessionStoreKind::Cookie;
    if refresh::in_background(&loaded.session, now, server_side) {
        let (app, behind, cookies) = (Arc::clone(app), loaded.clone(), cookies.clone());
        tokio::spawn(async move {
            app.refresher.run(&app, &behind, &cookies).await;
        });
        let set = std::mem::take(&mut loaded.set_cookies);
        return (Some(loaded), set);
    }
    match app.refresher.run(app, &loaded, cookies).await {
        refresh::Outcome::Unchanged => {
            let set = std::mem::take(&mut loaded.set_cookies);
            (Some(loaded), set)
        }
        refresh::Outcome::Updated {
            session,
            set_cookies,
        } => {
            let set = if set_cookies.is_empty() {
                std::mem::take(&mut loaded.set_cookies)
            } else {
                set_cookies
            };
            (
                Some(LoadedSession {
                    session,
                    set_cookies: Vec::new(),
                }),
                set,
            )
        }
        refresh::Outcome::Ended { set_cookies } => (None, set_cookies),
    }
}

/// Read a bounded request body for our own endpoints.
async fn read_body(session: &mut Session) -> pingora::Result<Bytes> {
    let mut body = Vec::new();
    while let Some(chunk) = session.read_request_body().await? {
        if body.len() + chunk.len() > MAX_OWN_BODY {
            return Err(pingora::Error::explain(
                pingora::ErrorType::HTTPStatus(413),
                "request body too large",
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

/// Write one of our responses.
async fn write(session: &mut Session, response: Response) -> pingora::Result<()> {
    let mut header = ResponseHeader::build(response.status, Some(response.headers.len() + 2))?;
    for (name, value) in response.headers {
        header.append_header(name, value)?;
    }
    header.insert_header(CONTENT_LENGTH, response.body.len())?;
    let head_only = session.req_header().method == http::Method::HEAD || response.body.is_empty();
    session
        .write_response_header(Box::new(header), head_only)
        .await?;
    if !head_only {
        session
            .write_response_body(Some(response.body), true)
            .await?;
    }
    Ok(())
}

#[async_trait]
impl ProxyHttp for SsoProxy {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        let request_id = self.ids.next();
        Ctx {
            span: tracing::info_span!("request", request_id = %request_id),
            request_id,
            started: Instant::now(),
            forward: None,
            outcome: None,
            upstream_started: None,
            _in_flight: self.app.in_flight.enter(),
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> pingora::Result<bool> {
        let span = ctx.span.clone();
        self.filter(session, ctx).instrument(span).await
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut Ctx,
    ) -> pingora::Result<Box<HttpPeer>> {
        ctx.upstream_started.get_or_insert_with(Instant::now);
        Ok(Box::new(upstream::peer(&self.app)))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut pingora::http::RequestHeader,
        ctx: &mut Ctx,
    ) -> pingora::Result<()> {
        let Some(forward) = ctx.forward.as_ref() else {
            return Err(pingora::Error::explain(
                pingora::ErrorType::InternalError,
                "forward without decision",
            ));
        };
        upstream::prepare(
            &self.app,
            session,
            upstream_request,
            forward.session.as_deref(),
            &forward.path_and_query,
            &ctx.request_id,
        )?;
        if let (Some(bridge), Some(token)) = (&self.app.bridge, &forward.clearml_token) {
            upstream::replace_cookie(upstream_request, &bridge.config.cookie_name, token)?;
        }
        if forward.rewrite.is_some() {
            // The answer is rewritten as JSON: ask for it uncompressed.
            upstream_request.remove_header(&http::header::ACCEPT_ENCODING);
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> pingora::Result<()> {
        if let Some(started) = ctx.upstream_started.take() {
            self.app.metrics.upstream(started.elapsed());
        }
        if let Some(forward) = ctx.forward.as_mut() {
            for cookie in forward.set_cookies.drain(..) {
                upstream_response.append_header(http::header::SET_COOKIE, cookie)?;
            }
            let is_json = upstream_response
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.contains("json"));
            if forward.rewrite.is_some() && is_json {
                upstream_response.remove_header(&CONTENT_LENGTH);
                upstream_response.insert_header(http::header::TRANSFER_ENCODING, "chunked")?;
            } else {
                forward.rewrite = None;
            }
        }
        Ok(())
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> pingora::Result<Option<std::time::Duration>> {
        let Some(forward) = ctx.forward.as_mut() else {
            return Ok(None);
        };
        let Some(rewrite) = &forward.rewrite else {
            return Ok(None);
        };
        if let Some(chunk) = body.take() {
            if forward.body.len() + chunk.len() > MAX_REWRITE_BODY {
                return Err(pingora::Error::explain(
                    pingora::ErrorType::InternalError,
                    "ClearML answer too large to rewrite",
                ));
            }
            forward.body.extend_from_slice(&chunk);
        }
        if end_of_stream {
            let original = std::mem::take(&mut forward.body);
            let out = crate::clearml::rewrite::apply(rewrite, &original).unwrap_or(original);
            *body = Some(Bytes::from(out));
        }
        Ok(None)
    }

    async fn logging(&self, session: &mut Session, e: Option<&pingora::Error>, ctx: &mut Ctx) {
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        self.app.metrics.request(ctx.outcome, status);
        if let Some(started) = ctx.upstream_started.take() {
            self.app.metrics.upstream(started.elapsed());
        }
        let req = session.req_header();
        let _g = ctx.span.enter();
        let elapsed_us = u64::try_from(ctx.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        match e {
            Some(err) => {
                tracing::warn!(method = %req.method, path = %req.uri.path(), status, elapsed_us, error = %err, "request failed")
            }
            None => {
                tracing::debug!(method = %req.method, path = %req.uri.path(), status, elapsed_us, "request done")
            }
        }
    }
}

/// Request ids: a random per-process prefix and a counter; cheap and unique enough to find a
/// request in the logs.
struct RequestIds {
    prefix: u32,
    counter: AtomicU64,
}

impl RequestIds {
    fn new() -> Self {
        RequestIds {
            prefix: rand::random(),
            counter: AtomicU64::new(0),
        }
    }

    fn next(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!("{:08x}{:010x}", self.prefix, n)
    }
}
