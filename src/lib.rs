//! sso-proxy: single sign-on in front of a web application.
//!
//! A request arrives at the pingora listener ([`proxy`]). Client copies of identity headers are
//! stripped, the path is normalised and the session cookie is looked up ([`session`]). The pure
//! function [`proxy::decide`] then picks one outcome: one of our own endpoints ([`endpoints`]),
//! forwarding upstream with identity headers, a 302 to the login, or a 401/403. Logins run the
//! connection's OIDC flow ([`providers`]), map claims into an [`identity::Identity`] and create a
//! session. Errors from any module become one [`error::Error`], which maps to a short page.

pub mod admin;
pub mod app;
pub mod clearml;
pub mod config;
pub mod endpoints;
pub mod error;
pub mod identity;
pub mod providers;
pub mod proxy;
pub mod redis;
pub mod reload;
pub mod session;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod tls;
