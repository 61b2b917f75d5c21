//! The admin pages under `/_sso/admin/`: server-rendered HTML with one inline script and one
//! inline style sheet (a per-response CSP nonce; no external assets, no build step). The
//! script calls the JSON API with the page's CSRF token.

use base64::Engine as _;
use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
use http::header::{HeaderName, HeaderValue};
use http::Method;
use serde_json::{json, Value};

use super::auth::{self, Actor, Denied};
use super::{connections, directory, form, presets, test_login};
use crate::app::App;
use crate::endpoints::{Request, Response};

const CSS: &str = include_str!("assets/admin.css");
const JS: &str = include_str!("assets/admin.js");

const NAV: &[(&str, &str)] = &[
    ("connections", "Identity Providers"),
    ("users", "Users"),
    ("groups", "Groups"),
    ("invites", "Invites"),
    ("audit", "Audit log"),
];

/// Answer `/_sso/admin<rest>`.
pub async fn handle(app: &App, rest: &str, req: &Request<'_>) -> Response {
    if rest == "/test" {
        return test_login::start(app, req).await;
    }
    if *req.method != Method::GET && *req.method != Method::HEAD {
        return standalone(
            405,
            "Method not allowed",
            "<h1>Method not allowed</h1>",
            None,
        );
    }
    let actor = match auth::page_actor(req) {
        Ok(actor) => actor,
        Err(Denied::NoSession) => {
            let mut login = app.config.public_url.clone();
            login.set_path("/_sso/login");
            login
                .query_pairs_mut()
                .append_pair("rd", &format!("/_sso/admin{rest}"));
            return Response::redirect(302, login.as_str());
        }
        Err(Denied::Forbidden(reason)) => {
            let body = format!(
                "<h1>Access denied</h1><p>{}.</p><p><a href=\"/\">Back</a></p>",
                text(reason)
            );
            return standalone(403, "Access denied", &body, None);
        }
    };
    let page = Page {
        app,
        req,
        actor: &actor,
    };
    match rest.trim_end_matches('/') {
        "" => Response::redirect(302, "/_sso/admin/connections"),
        "/connections" => page.connections(),
        "/users" => page.users(),
        "/groups" => page.groups(),
        "/invites" => page.invites(),
        "/audit" => page.audit(),
        _ => standalone(404, "Not found", "<h1>Not found</h1>", None),
    }
}

fn nonce() -> String {
    let bytes: [u8; 18] = rand::random();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn with_csp(mut response: Response, nonce: &str) -> Response {
    let csp = format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; connect-src 'self'; \
img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    if let Ok(value) = HeaderValue::from_str(&csp) {
        response
            .headers
            .push((HeaderName::from_static("content-security-policy"), value));
    }
    response.headers.push((
        HeaderName::from_static("x-frame-options"),
        HeaderValue::from_static("DENY"),
    ));
    response.headers.push((
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("same-origin"),
    ));
    response
}

/// JSON for a `<script type="application/json">` block (`<` escaped).
fn script_json(value: &Value) -> String {
    value.to_string().replace('<', "\\u003c")
}

/// A page without the admin navigation (errors, the Test Provider result in its popup).
/// `summary` is posted to the opener window (the admin page) as a message.
pub fn standalone(status: u16, title: &str, body: &str, summary: Option<&Value>) -> Response {
    let nonce = nonce();
    let script = summary
        .map(|s| {
            format!(
                "<script type=\"application/json\" id=\"test-summary\">{}</script><script nonce=\"{nonce}\">{}</script>",
                script_json(s),
                JS
            )
        })
        .unwrap_or_default();
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{}</title><style nonce=\"{nonce}\">{CSS}</style></head><body class=\"standalone\" data-page=\"test-result\"><main class=\"card\">{body}</main>{script}</body></html>",
        text(title)
    );
    with_csp(
        Response::new(status, "text/html; charset=utf-8", html),
        &nonce,
    )
}

struct Page<'a> {
    app: &'a App,
    req: &'a Request<'a>,
    actor: &'a Actor,
}

impl Page<'_> {
    fn render(&self, current: &str, title: &str, body: &str, data: Value) -> Response {
        let nonce = nonce();
        let nav: String = NAV
            .iter()
            .map(|(slug, label)| {
                let class = if *slug == current {
                    " class=\"current\""
                } else {
                    ""
                };
                format!("<a href=\"/_sso/admin/{slug}\"{class}>{}</a>", text(label))
            })
            .collect();
        let csrf = auth::csrf_token(self.app, self.req);
        let html = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta name=\"csrf-token\" content=\"{}\"><title>{} · sso-proxy admin</title><style nonce=\"{nonce}\">{CSS}</style></head>\
<body data-page=\"{current}\"><div class=\"shell\"><aside class=\"sidebar\"><div class=\"brand\">sso-proxy</div><div class=\"brand-sub\">Settings</div><nav>{nav}</nav></aside>\
<div class=\"content\"><header class=\"topbar\"><span class=\"who\">Signed in as <b>{}</b></span><a href=\"/_sso/logout\">Sign out</a></header>\
<main>{body}</main></div></div><script type=\"application/json\" id=\"admin-data\">{}</script><script nonce=\"{nonce}\">{JS}</script></body></html>",
            attr(&csrf),
            text(title),
            text(self.actor.label()),
            script_json(&data),
        );
        with_csp(Response::new(200, "text/html; charset=utf-8", html), &nonce)
    }

    fn error(&self, e: super::api::ApiError) -> Response {
        tracing::warn!(error = ?e, "admin page data unavailable");
        standalone(
            500,
            "Error",
            "<h1>The admin data could not be read</h1>",
            None,
        )
    }

    fn connections(&self) -> Response {
        let list = match connections::list(self.app) {
            Ok(list) => list,
            Err(e) => return self.error(e),
        };
        let rows: String = list.iter().map(connection_row).collect();
        let rows = if rows.is_empty() {
            "<tr class=\"empty\"><td colspan=\"7\">No connections yet. Click <b>+ New Connection</b> to add one.</td></tr>".to_owned()
        } else {
            rows
        };
        let body = format!(
            "<div class=\"page-head\"><div><h1>Identity Providers</h1><p class=\"muted\">Connections to identity providers. Active ones appear on the login page.</p></div>\
<button type=\"button\" class=\"primary\" id=\"new-connection\">+ New Connection</button></div>\
<div class=\"card flush\"><table class=\"grid\" id=\"connections\"><thead><tr><th>Active</th><th>Name</th><th>Provider</th><th>Protocol</th><th>ID</th><th>Last Update</th><th class=\"actions-col\"><span class=\"sr\">Actions</span></th></tr></thead>\
<tbody>{rows}</tbody></table></div>{}",
            form::dialog()
        );
        let public = self
            .app
            .config
            .public_url
            .as_str()
            .trim_end_matches('/')
            .to_owned();
        let data = json!({"public_url": public, "presets": presets::all()});
        self.render("connections", "Identity Providers", &body, data)
    }

    fn users(&self) -> Response {
        let value = match directory::users(self.app) {
            Ok(v) => v,
            Err(e) => return self.error(e),
        };
        let cell = |v: &Value| text(v.as_str().unwrap_or("—")).into_owned();
        let rows: String = value["users"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|u| {
                format!(
                    "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    cell(&u["provider"]), cell(&u["user"]), cell(&u["email"]), cell(&u["name"]),
                    cell(&u["clearml_id"]), cell(&u["first_login"]), cell(&u["last_login"])
                )
            })
            .collect();
        let rows = or_empty(rows, 7, "Nobody has signed in yet.");
        let known: Vec<String> = self
            .app
            .config
            .directory
            .known_users
            .iter()
            .map(|k| text(k).into_owned())
            .collect();
        let known = if known.is_empty() {
            String::new()
        } else {
            format!("<p class=\"muted\">Also known from the configuration (<code>directory.known_users</code>): {}</p>", known.join(", "))
        };
        let body = format!(
            "<div class=\"page-head\"><div><h1>Users</h1><p class=\"muted\">Everyone who signed in through a connection. Invite people on the <a href=\"/_sso/admin/invites\">Invites</a> page.</p></div></div>\
<div class=\"card flush\"><table class=\"grid\" id=\"users\"><thead><tr><th>Connection</th><th>User ID</th><th>Email</th><th>Name</th><th>ClearML user</th><th>First sign-in</th><th>Last sign-in</th></tr></thead><tbody>{rows}</tbody></table></div>{known}"
        );
        self.render("users", "Users", &body, json!({}))
    }

    fn groups(&self) -> Response {
        let value = match directory::groups(self.app) {
            Ok(v) => v,
            Err(e) => return self.error(e),
        };
        let rows: String = value["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|g| {
                let name = g["name"].as_str().unwrap_or_default();
                let action = if g["editable"] == true {
                    format!("<button type=\"button\" class=\"danger small delete-group\" data-name=\"{}\">Delete</button>", attr(name))
                } else {
                    "<span class=\"badge\" title=\"directory.groups in the configuration\">file</span>".to_owned()
                };
                format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"right\">{action}</td></tr>",
                    text(name),
                    text(g["description"].as_str().unwrap_or("")),
                    text(g["created_by"].as_str().unwrap_or("—")),
                    text(g["created_at"].as_str().unwrap_or("—")),
                )
            })
            .collect();
        let rows = or_empty(rows, 5, "No local groups.");
        let body = format!(
            "<div class=\"page-head\"><div><h1>Groups</h1><p class=\"muted\">Local groups. With <i>Only allow members of a local group to log in</i>, users must be in one of these IdP groups at every login.</p></div></div>\
<form class=\"card inline-form\" id=\"group-form\"><label>Name<input name=\"name\" required maxlength=\"128\"></label><label>Description<input name=\"description\"></label><button type=\"submit\" class=\"primary\">Add group</button><p class=\"form-error\" hidden></p></form>\
<div class=\"card flush\"><table class=\"grid\" id=\"groups\"><thead><tr><th>Name</th><th>Description</th><th>Created by</th><th>Created</th><th></th></tr></thead><tbody>{rows}</tbody></table></div>"
        );
        self.render("groups", "Groups", &body, json!({}))
    }

    fn invites(&self) -> Response {
        let value = match directory::invites(self.app) {
            Ok(v) => v,
            Err(e) => return self.error(e),
        };
        let rows: String = value["invites"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| {
                let email = i["email"].as_str().unwrap_or_default();
                let status = if i["accepted"] == true { "signed in" } else { "pending" };
                format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{status}</td><td class=\"right\"><button type=\"button\" class=\"danger small delete-invite\" data-email=\"{}\">Delete</button></td></tr>",
                    text(email),
                    text(i["invited_by"].as_str().unwrap_or("")),
                    text(i["created_at"].as_str().unwrap_or("")),
                    attr(email),
                )
            })
            .collect();
        let rows = or_empty(rows, 5, "No invites.");
        let body = format!(
            "<div class=\"page-head\"><div><h1>Invites</h1><p class=\"muted\">Invited e-mail addresses may sign in through connections that do not create new users.</p></div></div>\
<form class=\"card inline-form\" id=\"invite-form\"><label>E-mail<input name=\"email\" type=\"email\" required></label><button type=\"submit\" class=\"primary\">Invite</button><p class=\"form-error\" hidden></p></form>\
<div class=\"card flush\"><table class=\"grid\" id=\"invites\"><thead><tr><th>E-mail</th><th>Invited by</th><th>Invited</th><th>Status</th><th></th></tr></thead><tbody>{rows}</tbody></table></div>"
        );
        self.render("invites", "Invites", &body, json!({}))
    }

    fn audit(&self) -> Response {
        let value = match directory::audit(self.app, 500) {
            Ok(v) => v,
            Err(e) => return self.error(e),
        };
        let rows: String =
            value["entries"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| {
                    let cell = |k: &str| text(e[k].as_str().unwrap_or("")).into_owned();
                    format!(
                    "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                    cell("at"), cell("actor"), cell("action"), cell("target"), cell("detail")
                )
                })
                .collect();
        let rows = or_empty(rows, 5, "No changes yet.");
        let body = format!(
            "<div class=\"page-head\"><div><h1>Audit log</h1><p class=\"muted\">Admin changes, newest first. Secrets are never recorded.</p></div></div>\
<div class=\"card flush\"><table class=\"grid\" id=\"audit\"><thead><tr><th>When</th><th>Who</th><th>Action</th><th>Target</th><th>Detail</th></tr></thead><tbody>{rows}</tbody></table></div>"
        );
        self.render("audit", "Audit log", &body, json!({}))
    }
}

fn or_empty(rows: String, columns: usize, message: &str) -> String {
    if rows.is_empty() {
        format!(
            "<tr class=\"empty\"><td colspan=\"{columns}\">{}</td></tr>",
            text(message)
        )
    } else {
        rows
    }
}

fn connection_row(c: &Value) -> String {
    let s = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
    let id = s("id");
    let editable = c["editable"] == true;
    let mut badges = String::new();
    if !editable {
        let source = s("source");
        badges.push_str(&format!(
            " <span class=\"badge\" title=\"Read-only: set in the configuration ({})\">{}</span>",
            attr(&source),
            text(if source == "file" { "file" } else { "env" })
        ));
    }
    if c["active"] == true && c["ready"] != true {
        badges.push_str(" <span class=\"badge warn\" title=\"Discovery or metadata not loaded yet\">not ready</span>");
    }
    if let Some(error) = c["error"].as_str() {
        badges.push_str(&format!(
            " <span class=\"badge error\" title=\"{}\">error</span>",
            attr(error)
        ));
    }
    let checked = if c["active"] == true { " checked" } else { "" };
    let disabled = if editable { "" } else { " disabled" };
    let protocol = s("protocol").to_ascii_uppercase();
    let updated = c["updated_at"].as_str().map_or("—".to_owned(), |u| {
        u.replace('T', " ").replace('Z', " UTC")
    });
    let edit_label = if editable { "Edit" } else { "View" };
    format!(
        "<tr data-id=\"{}\" data-editable=\"{editable}\"><td><label class=\"switch\"><input type=\"checkbox\" class=\"active-toggle\" aria-label=\"Active\"{checked}{disabled}><span class=\"slider\"></span></label></td>\
<td class=\"name\">{}{badges}</td><td>{}</td><td>{}</td>\
<td><button type=\"button\" class=\"copy-id\" data-copy=\"{}\" title=\"Click to copy\">{}</button></td><td class=\"muted\">{}</td>\
<td class=\"row-actions\"><button type=\"button\" class=\"small edit\">{edit_label}</button><button type=\"button\" class=\"small test\">Test</button><button type=\"button\" class=\"small danger delete\"{disabled}>Delete</button></td></tr>",
        attr(&id),
        text(&s("display_name")),
        text(&s("provider_label")),
        text(&protocol),
        attr(&id),
        text(&id),
        text(&updated),
    )
}
