//! Cookie plumbing shared by the stores: parsing `Cookie` request headers, the names of our
//! cookies, stripping them from the upstream request, and formatting `Set-Cookie` values.

use crate::config::SessionConfig;

const HOST_PREFIX: &str = "__Host-";
/// Marks pending-login cookies: `<session cookie>_st_<hash>`.
const PENDING_INFIX: &str = "_st_";
/// Chunk indexes have at most this many digits (`_0` … `_99`).
const MAX_CHUNK_DIGITS: usize = 2;

/// Parsed `Cookie` request headers (all of them). Bad pairs are skipped. `Debug` shows names only.
#[derive(Clone, Default)]
pub struct RequestCookies {
    pairs: Vec<(String, String)>,
}

/// The names of the cookies this proxy sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieNames {
    /// `__Host-<cookie_name>` when secure, else `<cookie_name>`.
    session: String,
    /// `<session>_st_`.
    pending_prefix: String,
    /// The configured name without prefix, to also recognise the unprefixed form.
    base: String,
}

/// `SameSite` values we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SameSite {
    Lax,
    /// Only honoured when secure; falls back to `Lax` on plain http.
    None,
}

impl RequestCookies {
    pub fn parse<'a>(cookie_headers: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let pairs = cookie_headers
            .into_iter()
            .flat_map(|header| header.split(|b| *b == b';'))
            .filter_map(parse_pair)
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        RequestCookies { pairs }
    }

    /// The first value of the cookie `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value sent for `name`, in header order (a cookie may be sent twice, e.g. set for
    /// two paths or domains).
    pub fn get_all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.pairs
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

impl std::fmt::Debug for RequestCookies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.pairs.iter().map(|(n, _)| n))
            .finish()
    }
}

/// One `name=value` piece of a `Cookie` header, trimmed; `None` for garbage.
fn parse_pair(piece: &[u8]) -> Option<(&str, &str)> {
    let piece = std::str::from_utf8(piece).ok()?.trim_matches([' ', '\t']);
    let (name, value) = piece.split_once('=')?;
    let name = name.trim_matches([' ', '\t']);
    let value = value.trim_matches([' ', '\t']);
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    let bad_name = name.is_empty()
        || name
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ' || b == b'"' || b == b',');
    let bad_value = value.bytes().any(|b| b.is_ascii_control());
    (!bad_name && !bad_value).then_some((name, value))
}

impl CookieNames {
    pub fn new(cookie_name: &str, secure: bool) -> Self {
        let base = cookie_name
            .strip_prefix(HOST_PREFIX)
            .unwrap_or(cookie_name)
            .to_owned();
        let session = if secure {
            format!("{HOST_PREFIX}{base}")
        } else {
            base.clone()
        };
        let pending_prefix = format!("{session}{PENDING_INFIX}");
        CookieNames {
            session,
            pending_prefix,
            base,
        }
    }

    /// The session cookie's name.
    pub fn session(&self) -> &str {
        &self.session
    }

    /// Name of chunk `index` of a chunked session cookie: `<session>_<index>`.
    pub fn chunk(&self, index: usize) -> String {
        format!("{}_{index}", self.session)
    }

    /// Prefix of every pending-login cookie name: `<session>_st_`.
    pub fn pending_prefix(&self) -> &str {
        &self.pending_prefix
    }

    /// The chunk index when `name` is a chunk of our session cookie.
    pub fn chunk_index(&self, name: &str) -> Option<usize> {
        let digits = name.strip_prefix(&self.session)?.strip_prefix('_')?;
        let all_digits = !digits.is_empty()
            && digits.len() <= MAX_CHUNK_DIGITS
            && digits.bytes().all(|b| b.is_ascii_digit());
        all_digits.then(|| digits.parse().ok()).flatten()
    }

    pub fn is_pending(&self, name: &str) -> bool {
        name.starts_with(&self.pending_prefix)
    }

    /// True for the session cookie, its chunks and pending-login cookies, with or without the
    /// `__Host-` prefix (so a cookie left from an http set-up never reaches the upstream either).
    pub fn is_ours(&self, name: &str) -> bool {
        let unprefixed = name.strip_prefix(HOST_PREFIX).unwrap_or(name);
        let Some(rest) = unprefixed.strip_prefix(&self.base) else {
            return false;
        };
        if rest.is_empty() || rest.starts_with(PENDING_INFIX) {
            return true;
        }
        rest.strip_prefix('_').is_some_and(|digits| {
            !digits.is_empty()
                && digits.len() <= MAX_CHUNK_DIGITS
                && digits.bytes().all(|b| b.is_ascii_digit())
        })
    }
}

/// Our cookie names for this configuration; `secure` is true when `public_url` is https.
pub fn cookie_names(config: &SessionConfig, secure: bool) -> CookieNames {
    CookieNames::new(&config.cookie_name, secure)
}

/// Rebuilds a `Cookie` header without our cookies; `None` when nothing is left. Pieces that are
/// not ours are kept as sent (trimmed); pieces that are not UTF-8 are dropped.
pub fn strip_own_cookies(header: &[u8], names: &CookieNames) -> Option<String> {
    let mut out = String::with_capacity(header.len());
    for piece in header.split(|b| *b == b';') {
        let Ok(piece) = std::str::from_utf8(piece) else {
            continue;
        };
        let piece = piece.trim_matches([' ', '\t']);
        if piece.is_empty() {
            continue;
        }
        let name = piece
            .split_once('=')
            .map_or(piece, |(n, _)| n)
            .trim_matches([' ', '\t']);
        if names.is_ours(name) {
            continue;
        }
        if !out.is_empty() {
            out.push_str("; ");
        }
        out.push_str(piece);
    }
    (!out.is_empty()).then_some(out)
}

/// A `Set-Cookie` value: `HttpOnly; Path=/`, `Secure` when secure, the given `SameSite`.
pub(crate) fn set_cookie(
    name: &str,
    value: &str,
    max_age: u64,
    secure: bool,
    same_site: SameSite,
) -> String {
    let secure = secure || name.starts_with(HOST_PREFIX);
    let same_site = match same_site {
        SameSite::None if secure => "None",
        _ => "Lax",
    };
    let secure_attr = if secure { "; Secure" } else { "" };
    format!(
        "{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite={same_site}{secure_attr}"
    )
}

/// A `Set-Cookie` value that deletes `name`.
pub(crate) fn clear_cookie(name: &str, secure: bool) -> String {
    let secure = secure || name.starts_with(HOST_PREFIX);
    let secure_attr = if secure { "; Secure" } else { "" };
    format!(
        "{name}=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; \
         SameSite=Lax{secure_attr}"
    )
}
