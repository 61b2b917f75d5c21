use http::{HeaderMap, HeaderValue, Method};
use regex::Regex;

use super::*;
use crate::config::RouteRule;

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(*k, HeaderValue::from_static(v));
    }
    h
}

fn run(method: Method, path: &str, h: &HeaderMap, session: bool, routes: &Routes) -> Decision {
    let req = RequestView {
        method: &method,
        path,
        headers: h,
    };
    decide(req, session, routes)
}

#[test]
fn browser_navigation_redirects_to_login() {
    let h = headers(&[("accept", "text/html,application/xhtml+xml")]);
    assert_eq!(
        run(Method::GET, "/x", &h, false, &Routes::default()),
        Decision::RedirectToLogin
    );
    let h = headers(&[("sec-fetch-mode", "navigate"), ("accept", "*/*")]);
    assert_eq!(
        run(Method::GET, "/x", &h, false, &Routes::default()),
        Decision::RedirectToLogin
    );
}

#[test]
fn api_clients_get_401() {
    let r = Routes::default();
    let curl = headers(&[("accept", "*/*")]);
    assert_eq!(
        run(Method::GET, "/x", &curl, false, &r),
        Decision::Unauthenticated
    );
    let xhr = headers(&[
        ("accept", "text/html"),
        ("x-requested-with", "XMLHttpRequest"),
    ]);
    assert_eq!(
        run(Method::GET, "/x", &xhr, false, &r),
        Decision::Unauthenticated
    );
    let cors = headers(&[("accept", "text/html"), ("sec-fetch-mode", "cors")]);
    assert_eq!(
        run(Method::GET, "/x", &cors, false, &r),
        Decision::Unauthenticated
    );
    let post = headers(&[("accept", "text/html")]);
    assert_eq!(
        run(Method::POST, "/x", &post, false, &r),
        Decision::Unauthenticated
    );
}

#[test]
fn api_routes_never_redirect() {
    let r = Routes {
        api_routes: vec![Regex::new("^/api/").unwrap()],
        ..Routes::default()
    };
    let h = headers(&[("sec-fetch-mode", "navigate")]);
    assert_eq!(
        run(Method::GET, "/api/x", &h, false, &r),
        Decision::Unauthenticated
    );
    assert_eq!(
        run(Method::GET, "/apix", &h, false, &r),
        Decision::RedirectToLogin
    );
}

#[test]
fn skip_auth_honours_method() {
    let r = Routes {
        skip_auth: vec![RouteRule {
            method: Some(Method::GET),
            path: Regex::new("^/public/").unwrap(),
        }],
        ..Routes::default()
    };
    let h = HeaderMap::new();
    assert_eq!(
        run(Method::GET, "/public/a", &h, false, &r),
        Decision::Forward
    );
    assert_eq!(
        run(Method::POST, "/public/a", &h, false, &r),
        Decision::Unauthenticated
    );
}

#[test]
fn session_forwards() {
    let h = HeaderMap::new();
    assert_eq!(
        run(Method::POST, "/x", &h, true, &Routes::default()),
        Decision::Forward
    );
}

#[test]
fn own_routes_win_with_or_without_session() {
    let h = HeaderMap::new();
    let r = Routes::default();
    for session in [false, true] {
        assert_eq!(
            run(Method::GET, "/_sso/login", &h, session, &r),
            Decision::Own(OwnRoute::Login)
        );
        assert_eq!(
            run(Method::GET, "/callback_kc", &h, session, &r),
            Decision::Own(OwnRoute::Callback("kc".into()))
        );
        assert_eq!(
            run(Method::GET, "/_sso/nope", &h, session, &r),
            Decision::Own(OwnRoute::NotFound)
        );
    }
    assert_eq!(
        run(Method::GET, "/_sso/saml/kc/metadata", &h, false, &r),
        Decision::Own(OwnRoute::SamlMetadata("kc".into()))
    );
    assert_eq!(
        run(Method::GET, "/_sso/auth", &h, false, &r),
        Decision::Own(OwnRoute::ForwardAuth)
    );
    for envoy in ["/_sso/auth/", "/_sso/auth/app/page", "/_sso/auth/_sso/x"] {
        assert_eq!(
            run(Method::GET, envoy, &h, true, &r),
            Decision::Own(OwnRoute::ExtAuthz),
            "{envoy}"
        );
    }
    assert_eq!(
        run(Method::GET, "/_sso/authx", &h, false, &r),
        Decision::Own(OwnRoute::NotFound)
    );
}

#[test]
fn callback_paths_are_ours_only_when_well_formed() {
    let h = HeaderMap::new();
    let r = Routes::default();
    assert_eq!(
        run(Method::GET, "/callback_other", &h, true, &r),
        Decision::Own(OwnRoute::Callback("other".into()))
    );
    assert_eq!(
        run(Method::GET, "/callback_A/b", &h, true, &r),
        Decision::Forward
    );
    assert_eq!(
        run(Method::GET, "/callback_", &h, true, &r),
        Decision::Forward
    );
}
