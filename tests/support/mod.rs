//! Shared harness for the integration tests: a real OpenID Provider (`op`), a misbehaving one
//! (`bad_op`), an echo upstream (`echo`), the proxy binary (`proxy`), a scripted browser
//! (`browser`), a raw HTTP/1.1 client for byte-exact requests (`raw`) and a few helpers.
//!
//! Every spawned process and server is stopped on `Drop`. Test secrets are generated at run time.
#![allow(dead_code)]

pub mod admin;
pub mod bad_op;
pub mod browser;
pub mod clearml_api;
pub mod echo;
pub mod front;
pub mod graph;
pub mod html;
pub mod http_server;
pub mod oidc_stack;
pub mod op;
pub mod proxy;
pub mod raw;
pub mod redis;
pub mod saml_bad_idp;
pub mod saml_idp;
pub mod saml_stack;
pub mod stack;
pub mod util;
