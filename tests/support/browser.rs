//! A scripted browser: reqwest with a cookie jar and manual redirects, which drives the whole
//! login (proxy → IdP authorize → login form → consent → proxy callback → target).
//!
//! The jar keys cookies by host, not port, so the proxy's and the OPs' cookies on 127.0.0.1 are
//! all sent everywhere, as a real browser would do for `localhost` apps on different ports.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::cookie::{CookieStore as _, Jar};
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, StatusCode};
use url::Url;

use super::html;

pub const NAV_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

/// A response, read whole.
#[derive(Clone, Debug)]
pub struct Page {
    pub method: Method,
    pub url: Url,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    }

    pub fn is_redirect(&self) -> bool {
        self.status.is_redirection() && self.headers.contains_key("location")
    }

    /// The `Location` header resolved against the request URL.
    pub fn location(&self) -> Option<Url> {
        let raw = self.header("location")?;
        self.url.join(raw).ok()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} {} -> {}: body is not JSON ({e}): {}",
                self.method, self.url, self.status, self.body
            )
        })
    }

    /// Cookie names set (or cleared) by this response.
    pub fn set_cookie_names(&self) -> Vec<String> {
        self.header_all("set-cookie")
            .iter()
            .filter_map(|c| c.split_once('=').map(|(n, _)| n.trim().to_owned()))
            .collect()
    }

    pub fn describe(&self) -> String {
        format!("{} {} -> {}", self.method, self.url, self.status)
    }
}

/// How a scripted login ended.
#[derive(Clone, Debug)]
pub struct LoginResult {
    /// The callback URL on the proxy (`/callback_<id>?code=..&state=..`), when the flow got there.
    pub callback_url: Option<Url>,
    /// The `Cookie` header the browser sent with the callback.
    pub callback_cookies: Option<String>,
    /// The callback's response, or the page where the flow stopped before the callback.
    pub response: Page,
    /// Every step, `METHOD url -> status`.
    pub trail: Vec<String>,
}

impl LoginResult {
    /// The callback was reached and answered with a redirect (login accepted).
    pub fn succeeded(&self) -> bool {
        self.callback_url.is_some() && self.response.is_redirect()
    }

    /// Panic with the whole trail unless the login succeeded; returns the post-login target.
    pub fn expect_success(&self) -> Url {
        assert!(
            self.succeeded(),
            "login did not succeed; trail:\n  {}\nlast body:\n{}",
            self.trail.join("\n  "),
            self.response.body
        );
        self.response.location().expect("callback Location")
    }

    pub fn status(&self) -> StatusCode {
        self.response.status
    }

    pub fn trail_text(&self) -> String {
        self.trail.join("\n  ")
    }
}

/// Where `drive` stopped.
pub struct Driven {
    /// The URL matched by the stop predicate (not requested), if any.
    pub stopped_at: Option<Url>,
    /// The last response fetched.
    pub last: Option<Page>,
    pub trail: Vec<String>,
}

pub struct Browser {
    pub client: reqwest::Client,
    pub jar: Arc<Jar>,
    set_cookies: Mutex<Vec<(Url, String)>>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Self {
        Self::build(reqwest::Client::builder())
    }

    /// A browser that also trusts the CA certificate `pem` (an HTTPS test proxy).
    pub fn trusting(pem: &str) -> Self {
        let cert = reqwest::Certificate::from_pem(pem.as_bytes()).expect("PEM certificate");
        Self::build(reqwest::Client::builder().add_root_certificate(cert))
    }

    fn build(builder: reqwest::ClientBuilder) -> Self {
        let jar = Arc::new(Jar::default());
        let client = builder
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .user_agent("sso-proxy-tests/1.0")
            .build()
            .expect("reqwest client");
        Self {
            client,
            jar,
            set_cookies: Mutex::new(Vec::new()),
        }
    }

    /// Send a request built from `self.client` and read the whole response.
    pub async fn send(&self, builder: RequestBuilder) -> Page {
        let request = builder.build().expect("valid request");
        let method = request.method().clone();
        let url = request.url().clone();
        let response = self
            .client
            .execute(request)
            .await
            .unwrap_or_else(|e| panic!("{method} {url} failed: {e}"));
        let status = response.status();
        let headers = response.headers().clone();
        {
            let mut log = self.set_cookies.lock().expect("lock");
            for value in headers.get_all("set-cookie") {
                log.push((
                    url.clone(),
                    String::from_utf8_lossy(value.as_bytes()).into(),
                ));
            }
        }
        let body = response.text().await.unwrap_or_default();
        Page {
            method,
            url,
            status,
            headers,
            body,
        }
    }

    /// A request builder with the headers of a top-level browser navigation.
    pub fn nav(&self, method: Method, url: &str) -> RequestBuilder {
        self.client
            .request(method, url)
            .header("accept", NAV_ACCEPT)
            .header("sec-fetch-mode", "navigate")
            .header("sec-fetch-dest", "document")
    }

    /// GET as a browser navigation (`Accept: text/html`, `Sec-Fetch-Mode: navigate`).
    pub async fn navigate(&self, url: &str) -> Page {
        self.send(self.nav(Method::GET, url)).await
    }

    /// GET as curl does (`Accept: */*`, no fetch metadata).
    pub async fn api_get(&self, url: &str) -> Page {
        self.send(self.client.get(url).header("accept", "*/*"))
            .await
    }

    /// Follow redirects from `page` as navigations until a non-redirect (at most 20 hops).
    pub async fn follow(&self, mut page: Page) -> Page {
        for _ in 0..20 {
            let Some(next) = page.location().filter(|_| page.is_redirect()) else {
                return page;
            };
            page = self.navigate(next.as_str()).await;
        }
        panic!("too many redirects, last: {}", page.describe());
    }

    /// The cookies the jar would send to `url`, as `(name, value)`.
    pub fn cookies_for(&self, url: &str) -> Vec<(String, String)> {
        let url = Url::parse(url).expect("url");
        let Some(header) = self.jar.cookies(&url) else {
            return Vec::new();
        };
        header
            .to_str()
            .unwrap_or_default()
            .split(';')
            .filter_map(|kv| {
                let kv = kv.trim();
                let (n, v) = kv.split_once('=')?;
                Some((n.to_owned(), v.to_owned()))
            })
            .collect()
    }

    pub fn cookie(&self, url: &str, name: &str) -> Option<String> {
        self.cookies_for(url)
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// The `Cookie` header the jar would send to `url`.
    pub fn cookie_header(&self, url: &str) -> Option<String> {
        let url = Url::parse(url).expect("url");
        self.jar
            .cookies(&url)
            .map(|h| h.to_str().unwrap_or_default().to_owned())
    }

    /// Every `Set-Cookie` value received from the origin of `base` (scheme, host, port).
    pub fn set_cookies_from(&self, base: &str) -> Vec<String> {
        let base = Url::parse(base).expect("url");
        self.set_cookies
            .lock()
            .expect("lock")
            .iter()
            .filter(|(u, _)| u.origin() == base.origin())
            .map(|(_, c)| c.clone())
            .collect()
    }

    /// Names of every cookie the origin of `base` ever set.
    pub fn cookie_names_set_by(&self, base: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .set_cookies_from(base)
            .iter()
            .filter_map(|c| c.split_once('=').map(|(n, _)| n.trim().to_owned()))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Navigate from `start`, following redirects, submitting the first login form seen with
    /// `user`/`password` and any other auto-submittable page, until `stop` matches the next URL
    /// (which is then not requested) or a page needs something else.
    pub async fn drive(
        &self,
        start: &str,
        user: &str,
        password: &str,
        stop: impl Fn(&Url) -> bool,
    ) -> Driven {
        let mut next = Url::parse(start).expect("start url");
        let mut trail = Vec::new();
        let mut posted_password = false;
        let mut last = None;
        for _ in 0..30 {
            if stop(&next) {
                return Driven {
                    stopped_at: Some(next),
                    last,
                    trail,
                };
            }
            let page = self.navigate(next.as_str()).await;
            trail.push(page.describe());
            if page.is_redirect() {
                next = page.location().expect("location");
                last = Some(page);
                continue;
            }
            let form = html::login_form(&page.body).filter(|_| page.status == StatusCode::OK);
            let Some(form) = form.filter(|_| !posted_password) else {
                return Driven {
                    stopped_at: None,
                    last: Some(page),
                    trail,
                };
            };
            posted_password = true;
            let action = page
                .url
                .join(form.action.as_deref().unwrap_or(""))
                .expect("form action");
            let mut fields: Vec<(String, String)> = form
                .inputs
                .iter()
                .filter(|(n, _)| n != "login" && n != "password")
                .cloned()
                .collect();
            fields.push(("login".into(), user.into()));
            fields.push(("password".into(), password.into()));
            let origin = page.url.origin().ascii_serialization();
            let posted = self
                .send(
                    self.nav(Method::POST, action.as_str())
                        .header("origin", origin)
                        .form(&fields),
                )
                .await;
            trail.push(posted.describe());
            if !posted.is_redirect() {
                return Driven {
                    stopped_at: None,
                    last: Some(posted),
                    trail,
                };
            }
            next = posted.location().expect("location");
            last = Some(posted);
        }
        panic!(
            "login flow did not finish in 30 steps:\n  {}",
            trail.join("\n  ")
        );
    }

    /// Log in through the proxy at `base` (`http://127.0.0.1:<port>`): starts at
    /// `/_sso/login[?provider=<id>][&rd=<rd>]`, scripts the IdP, and requests the callback on `base`.
    pub async fn login(
        &self,
        base: &str,
        provider: Option<&str>,
        user: &str,
        password: &str,
        rd: Option<&str>,
    ) -> LoginResult {
        let mut start = Url::parse(&format!("{base}/_sso/login")).expect("base url");
        {
            let mut q = start.query_pairs_mut();
            if let Some(p) = provider {
                q.append_pair("provider", p);
            }
            if let Some(rd) = rd {
                q.append_pair("rd", rd);
            }
        }
        let start = start.as_str().trim_end_matches('?').to_owned();
        self.login_from(base, &start, user, password).await
    }

    /// Like [`login`](Self::login) but starting from any URL (e.g. a protected page).
    pub async fn login_from(
        &self,
        base: &str,
        start: &str,
        user: &str,
        password: &str,
    ) -> LoginResult {
        let base_url = Url::parse(base).expect("base url");
        let is_callback =
            |u: &Url| u.origin() == base_url.origin() && u.path().starts_with("/callback_");
        let driven = self.drive(start, user, password, is_callback).await;
        let mut trail = driven.trail;
        let Some(callback) = driven.stopped_at else {
            let response = driven.last.expect("at least one response");
            return LoginResult {
                callback_url: None,
                callback_cookies: None,
                response,
                trail,
            };
        };
        let cookies = self.cookie_header(callback.as_str());
        let response = self.navigate(callback.as_str()).await;
        trail.push(response.describe());
        LoginResult {
            callback_url: Some(callback),
            callback_cookies: cookies,
            response,
            trail,
        }
    }
}
