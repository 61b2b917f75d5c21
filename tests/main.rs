//! Every integration test, linked into one test binary (`integration`): one link of the
//! library and its dependencies instead of one per file keeps a fresh build small and fast.
//! Each module is one theme (see `tests/README.md`); run one with
//! `cargo nextest run -j 2 -E 'test(/^login_flow::/)'`.

// Tests and their harness fail by panicking: unwrap/expect are the assertion here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod admin_api;
mod admin_browser;
mod admin_persistence;
mod admin_test_provider;
mod callback_security;
mod clearml_bridge;
mod config_errors;
mod envoy_ext_authz;
mod forward_auth;
mod identity_token;
mod idp_selftest;
mod listener;
mod login_flow;
mod logout;
mod metrics;
mod multiple_connections;
mod nginx_auth_request;
mod oidc_backchannel;
mod oidc_clearml_env;
mod oidc_options;
mod oidc_presets;
mod oidc_session;
mod open_redirect;
mod path_normalisation;
mod pkce;
mod readme_reference;
mod reload;
mod replicas;
mod saml_browser;
mod saml_config;
mod saml_login;
mod saml_security;
mod session_cookies;
mod session_stores;
mod support_selftest;
mod traefik_forward_auth;
mod unauthenticated;
