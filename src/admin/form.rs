//! The New / Edit Connection modal: step one picks the protocol and the provider preset, step
//! two is the configuration form with the fields of ClearML's Identity Providers guide, grouped
//! the same way. Inputs carry `data-key` = the connection key (`claims.email`), which the
//! script turns into the JSON the API takes.

use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};

enum Kind {
    Text,
    Secret,
    Check,
    Select(&'static [(&'static str, &'static str)]),
    Area,
    SecretArea,
    /// Read-only, with a copy button; filled by the script (`data-derived`).
    Derived(&'static str),
    /// The IdP metadata: a file upload feeding a text area.
    Metadata,
}

struct Field {
    key: &'static str,
    label: &'static str,
    kind: Kind,
    help: &'static str,
}

const fn f(key: &'static str, label: &'static str, kind: Kind, help: &'static str) -> Field {
    Field {
        key,
        label,
        kind,
        help,
    }
}

use Kind::{Area, Check, Derived, Metadata, Secret, SecretArea, Select, Text};

const PKCE: &[(&str, &str)] = &[("none", "None"), ("plain", "Plain"), ("S256", "S256")];

const CONNECTION: &[Field] = &[
    f(
        "id",
        "Connection ID",
        Text,
        "Part of the callback URL: a-z, 0-9, _ and -. Cannot change later.",
    ),
    f(
        "webapp_url",
        "ClearML WebApp URL",
        Derived("webapp"),
        "The external URL of the web app (public_url).",
    ),
];

const OIDC_MAIN: &[Field] = &[
    f("callback_url", "Callback URL", Derived("callback"), "Copy into the Callback (Redirect) URL of your provider's app."),
    f("display_name", "Display name", Text, "Shown on the login page; unique across connections."),
    f("client_id", "Client ID", Text, "From your provider's app settings."),
    f("client_secret", "Client Secret", Secret, "Write-only: never shown again."),
    f("issuer", "Issuer (discovery URL)", Text, "Endpoints are discovered from <issuer>/.well-known/openid-configuration. Leave empty to give them below."),
    f("base_url", "Keycloak realm URL", Text, "Keycloak only: https://keycloak.example.com/realms/<realm>."),
    f("authorize_url", "Authorization Endpoint", Text, "Overrides discovery."),
    f("access_token_url", "Access Token Endpoint", Text, "Overrides discovery."),
    f("revocation_url", "Revocation Endpoint", Text, "Used to revoke tokens at logout."),
    f("user_info_from_id_token", "Obtain user information from Identity Token", Check, "Off: call the User Info Endpoint."),
    f("userinfo_url", "User Info Endpoint", Text, "Overrides discovery."),
    f("jwks_uri", "JWKS URI", Text, "Keys for the signature check; discovered when empty."),
    f("email_verification", "Email verification", Check, "Only users whose email_verified claim is true."),
    f("create_new_users", "Create new users on first login", Check, "Off: only known or invited users may sign in."),
    f("verify_token_signature", "Verify token signature", Check, "Needs the JWKS URI (or discovery)."),
];

const OIDC_ADDITIONAL: &[Field] = &[
    f(
        "code_challenge_method",
        "Code challenge method",
        Select(PKCE),
        "Must match your provider's app.",
    ),
    f(
        "scopes",
        "Standard Userinfo scopes",
        Text,
        "Comma-separated.",
    ),
    f(
        "additional_scopes",
        "Additional scopes",
        Text,
        "Comma-separated.",
    ),
];

const CLAIMS: &[Field] = &[
    f("claims.user_id", "user id", Text, "The user's unique ID."),
    f("claims.email", "email", Text, ""),
    f("claims.name", "name", Text, ""),
    f(
        "claims.given_name",
        "given name",
        Text,
        "Optional if name is given.",
    ),
    f(
        "claims.family_name",
        "family name",
        Text,
        "Optional if name is given.",
    ),
    f("claims.picture", "picture", Text, ""),
];

const GROUPS: &[Field] = &[
    f(
        "groups.enabled",
        "Synchronize user groups",
        Check,
        "Read groups from the claim below and apply the rules.",
    ),
    f("groups.claim", "Groups claim", Text, ""),
    f(
        "groups.admins",
        "Admin groups",
        Text,
        "Comma-separated: members are administrators.",
    ),
    f(
        "groups.prohibit_user_signup_if_not_in_group",
        "Only allow members of a local group to log in",
        Check,
        "See the Groups page.",
    ),
    f(
        "groups.case_sensitive",
        "Case-sensitive group names",
        Check,
        "",
    ),
];

const OIDC_ROLE: &[Field] = &[f(
    "admin_role",
    "Admin role (Keycloak)",
    Text,
    "A realm or client role that makes the user an administrator.",
)];

/// Fields shown for the Keycloak preset only (or when they hold a value).
const KEYCLOAK_ONLY: &[&str] = &["base_url", "admin_role"];

const SAML_MAIN: &[Field] = &[
    f(
        "acs_url",
        "Reply/ACS URL",
        Derived("callback"),
        "Copy into the Assertion Consumer Service URL of your provider's app.",
    ),
    f(
        "sp_metadata_url",
        "SP metadata URL",
        Derived("sp-metadata"),
        "Our service-provider metadata, for IdPs that import it.",
    ),
    f(
        "display_name",
        "Display name",
        Text,
        "Shown on the login page; unique across connections.",
    ),
    f(
        "entity_id",
        "Entity ID",
        Text,
        "Our SP entity ID as registered at the IdP; default: the SP metadata URL.",
    ),
    f(
        "idp_metadata",
        "IDP metadata file",
        Metadata,
        "Upload the file from your provider, paste the XML, or give its https:// URL.",
    ),
];

const SAML_SECURITY: &[Field] = &[
    f(
        "require_signed_assertions",
        "Require signed assertions",
        Check,
        "The IdP must sign assertions (recommended).",
    ),
    f(
        "sign_requests",
        "Sign client requests",
        Check,
        "Sign AuthnRequests with the key pair below.",
    ),
    f(
        "sp_certificate",
        "Public Key",
        Area,
        "PEM certificate (openssl x509 … -out server.cer).",
    ),
    f(
        "sp_private_key",
        "Private Key",
        SecretArea,
        "PEM private key (openssl genrsa -out server.key 2048). Write-only.",
    ),
    f(
        "create_new_users",
        "Create new users on first login",
        Check,
        "Off: only known or invited users may sign in.",
    ),
];

fn input_id(protocol: &str, key: &str) -> String {
    format!("{protocol}-{}", key.replace('.', "-"))
}

fn field(protocol: &str, field: &Field) -> String {
    let id = input_id(protocol, field.key);
    let only = if KEYCLOAK_ONLY.contains(&field.key) {
        " data-only=\"keycloak\""
    } else {
        ""
    };
    let key = attr(field.key);
    let label = text(field.label);
    let help = if field.help.is_empty() {
        String::new()
    } else {
        format!("<small class=\"help\">{}</small>", text(field.help))
    };
    let problem = format!("<div class=\"problem\" data-problem=\"{key}\"></div>");
    let control = match &field.kind {
        Text => format!("<input id=\"{id}\" data-key=\"{key}\" type=\"text\" autocomplete=\"off\" spellcheck=\"false\">"),
        Secret => format!("<input id=\"{id}\" data-key=\"{key}\" data-secret=\"true\" type=\"password\" autocomplete=\"new-password\">"),
        Area => format!("<textarea id=\"{id}\" data-key=\"{key}\" rows=\"3\" spellcheck=\"false\"></textarea>"),
        SecretArea => format!("<textarea id=\"{id}\" data-key=\"{key}\" data-secret=\"true\" rows=\"3\" spellcheck=\"false\"></textarea>"),
        Select(options) => {
            let opts: String = options
                .iter()
                .map(|(v, l)| format!("<option value=\"{}\">{}</option>", attr(v), text(l)))
                .collect();
            format!("<select id=\"{id}\" data-key=\"{key}\">{opts}</select>")
        }
        Derived(what) => format!(
            "<div class=\"copy-field\"><input id=\"{id}\" data-derived=\"{what}\" type=\"text\" readonly><button type=\"button\" class=\"small copy-derived\" data-target=\"{id}\">Copy</button></div>"
        ),
        Metadata => format!(
            "<input type=\"file\" class=\"metadata-file\" data-target=\"{id}\" accept=\".xml,application/xml,text/xml\"><textarea id=\"{id}\" data-key=\"{key}\" rows=\"4\" spellcheck=\"false\" placeholder=\"&lt;EntityDescriptor …&gt; or https://…\"></textarea>"
        ),
        Check => {
            return format!(
                "<div class=\"field check\" data-field=\"{key}\"{only}><label><input id=\"{id}\" data-key=\"{key}\" type=\"checkbox\"> {label}</label>{help}{problem}</div>"
            )
        }
    };
    format!("<div class=\"field\" data-field=\"{key}\"{only}><label for=\"{id}\">{label}</label>{control}{help}{problem}</div>")
}

fn group(protocol: &str, title: &str, fields: &[&[Field]]) -> String {
    let inner: String = fields
        .iter()
        .flat_map(|list| list.iter())
        .map(|f| field(protocol, f))
        .collect();
    if title.is_empty() {
        format!("<div class=\"group\">{inner}</div>")
    } else {
        format!(
            "<fieldset class=\"group\"><legend>{}</legend>{inner}</fieldset>",
            text(title)
        )
    }
}

fn oidc_fields() -> String {
    let mut out = String::from("<div class=\"fields\" data-protocol=\"oidc\" hidden>");
    out.push_str(&group("oidc", "", &[CONNECTION, OIDC_MAIN]));
    out.push_str(&group("oidc", "Additional Settings", &[OIDC_ADDITIONAL]));
    out.push_str(&group("oidc", "Claims mappings", &[CLAIMS]));
    out.push_str(&group(
        "oidc",
        "User Groups Synchronization",
        &[GROUPS, OIDC_ROLE],
    ));
    out.push_str("</div>");
    out
}

fn saml_fields() -> String {
    let mut out = String::from("<div class=\"fields\" data-protocol=\"saml\" hidden>");
    out.push_str(&group("saml", "", &[CONNECTION, SAML_MAIN]));
    out.push_str(&group("saml", "Security Settings", &[SAML_SECURITY]));
    out.push_str(&group("saml", "Claims mappings", &[CLAIMS]));
    out.push_str(&group("saml", "User Groups Synchronization", &[GROUPS]));
    out.push_str("</div>");
    out
}

/// The modal dialog.
pub fn dialog() -> String {
    format!(
        "<dialog id=\"connection-dialog\" class=\"modal\"><form id=\"connection-form\" novalidate>\
<div class=\"modal-head\"><h2 id=\"dialog-title\">New Provider Connection</h2><button type=\"button\" class=\"icon close-dialog\" aria-label=\"Close\">×</button></div>\
<section id=\"step-choose\"><fieldset class=\"group\"><legend>Protocol</legend>\
<label class=\"choice\"><input type=\"radio\" name=\"protocol\" value=\"oidc\" checked> OIDC</label>\
<label class=\"choice\"><input type=\"radio\" name=\"protocol\" value=\"saml\"> SAML</label></fieldset>\
<fieldset class=\"group\"><legend>Provider</legend><div id=\"preset-choices\" class=\"preset-grid\"></div></fieldset>\
<div class=\"modal-foot\"><span class=\"spacer\"></span><button type=\"button\" class=\"close-dialog\">Cancel</button><button type=\"button\" class=\"primary\" id=\"next-step\">Next</button></div></section>\
<section id=\"step-configure\" hidden><h3 class=\"subtitle\">Provider Connection Configuration <span id=\"preset-name\" class=\"badge\"></span></h3>\
<p class=\"form-error\" id=\"form-error\" hidden></p>{}{}\
<div id=\"test-result\" class=\"test-result\" hidden></div>\
<div class=\"modal-foot\"><button type=\"button\" id=\"back-step\">Back</button><span class=\"spacer\"></span><button type=\"button\" class=\"close-dialog\">Cancel</button>\
<button type=\"button\" id=\"test-provider\">Test Provider</button><button type=\"button\" class=\"primary\" id=\"save-connection\">Save</button></div></section>\
</form></dialog>",
        oidc_fields(),
        saml_fields()
    )
}
