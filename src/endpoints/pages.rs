//! The HTML pages we serve: a shared layout without external assets, the login chooser, the
//! logout form and error pages. Every dynamic value is HTML-escaped here.

use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};

use crate::app::App;

const STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f4f5f7;color:#1d2430;margin:0}\
main{max-width:26rem;margin:12vh auto;background:#fff;border-radius:12px;box-shadow:0 2px 12px rgba(0,0,0,.08);padding:2rem 2.25rem}\
h1{font-size:1.35rem;margin:0 0 1rem}p{line-height:1.5}.muted{color:#6b7280;font-size:.85rem}\
a.btn,button{display:block;width:100%;box-sizing:border-box;text-align:center;padding:.7rem 1rem;margin:.6rem 0;border-radius:8px;border:1px solid #d0d5dd;background:#fff;color:#1d2430;text-decoration:none;font-size:1rem;cursor:pointer}\
a.btn:hover,button:hover{background:#eef2ff;border-color:#6366f1}button.primary{background:#4f46e5;color:#fff;border-color:#4f46e5}";

/// The shared layout.
pub fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        text(title)
    )
}

/// The login chooser: one button per active connection.
pub fn chooser(entries: &[(String, String)]) -> String {
    let mut buttons = String::new();
    for (name, href) in entries {
        buttons.push_str(&format!(
            "<a class=\"btn\" href=\"{}\">{}</a>",
            attr(href),
            text(name)
        ));
    }
    layout(
        "Sign in",
        &format!("<h1>Sign in</h1><p>Choose how to sign in:</p>{buttons}"),
    )
}

/// The logout confirmation form (GET never logs out by itself).
pub fn logout_form(csrf: &str, rd: Option<&str>) -> String {
    let rd_field = rd
        .map(|r| format!("<input type=\"hidden\" name=\"rd\" value=\"{}\">", attr(r)))
        .unwrap_or_default();
    layout(
        "Sign out",
        &format!(
            "<h1>Sign out</h1><p>Do you want to sign out?</p><form method=\"post\" action=\"/_sso/logout\">\
<input type=\"hidden\" name=\"csrf\" value=\"{}\">{rd_field}<button class=\"primary\" type=\"submit\">Sign out</button></form>",
            attr(csrf)
        ),
    )
}

/// An error page: title, a one-line reason, the request id, and optionally a way back.
pub fn error_page(title: &str, reason: &str, request_id: &str, retry: Option<&str>) -> String {
    let retry = retry
        .map(|href| {
            format!(
                "<a class=\"btn\" href=\"{}\">Try signing in again</a>",
                attr(href)
            )
        })
        .unwrap_or_default();
    layout(
        title,
        &format!(
            "<h1>{}</h1><p>{}</p>{retry}<p class=\"muted\">Request id: <code>{}</code></p>",
            text(title),
            text(reason),
            text(request_id)
        ),
    )
}

/// A plain message page.
pub fn message(title: &str, message: &str) -> String {
    layout(
        title,
        &format!("<h1>{}</h1><p>{}</p>", text(title), text(message)),
    )
}

/// Where the "try again" link points.
pub fn login_link(_app: &App) -> String {
    "/_sso/login".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_dynamic() {
        let page = error_page("<t>", "<script>x</script>", "id\"1", Some("/a\"b"));
        assert!(!page.contains("<script>x"));
        assert!(page.contains("&lt;script&gt;"));
        assert!(!page.contains("<t>") && page.contains("&lt;t&gt;"));
        assert!(!page.contains("href=\"/a\"b\""));
        let page = chooser(&[("<b>".into(), "/x?a=1&b=\"2\"".into())]);
        assert!(page.contains("&lt;b&gt;"));
        assert!(!page.contains("b=\"2\""));
    }
}
