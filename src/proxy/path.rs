//! Path normalisation (DESIGN section 4, "Paths"): the one place a request path is decoded,
//! cleaned and either accepted or refused. The result is what routing matches and what goes
//! upstream.

/// Why a path was refused; every variant becomes a 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path must start with '/'")]
    NotAbsolute,
    #[error("path contains a backslash")]
    Backslash,
    #[error("path contains an encoded slash, backslash, NUL or percent sign")]
    ForbiddenEncoding,
    #[error("path contains a malformed percent-encoding")]
    BadEncoding,
    #[error("path contains a control character")]
    ControlCharacter,
    #[error("path climbs above the root")]
    AboveRoot,
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decode percent-encoded unreserved characters and refuse the dangerous ones.
fn decode_unreserved(raw: &str) -> Result<String, PathError> {
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'\\' => return Err(PathError::Backslash),
            0..=0x1f | 0x7f => return Err(PathError::ControlCharacter),
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_value);
                let lo = bytes.get(i + 2).copied().and_then(hex_value);
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(PathError::BadEncoding);
                };
                let decoded = hi * 16 + lo;
                match decoded {
                    b'/' | b'\\' | 0 | b'%' => return Err(PathError::ForbiddenEncoding),
                    0x01..=0x1f | 0x7f => return Err(PathError::ControlCharacter),
                    d if is_unreserved(d) => out.push(char::from(d)),
                    d => {
                        out.push('%');
                        out.push(char::from(b"0123456789ABCDEF"[usize::from(d >> 4)]));
                        out.push(char::from(b"0123456789ABCDEF"[usize::from(d & 0xf)]));
                    }
                }
                i += 3;
                continue;
            }
            _ => out.push(char::from(b)),
        }
        i += 1;
    }
    Ok(out)
}

/// Normalise a request path: decode unreserved escapes, collapse repeated `/`, resolve `.` and
/// `..`. The trailing slash is kept.
pub fn normalize(raw: &str) -> Result<String, PathError> {
    if !raw.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if !raw.is_ascii() {
        // The request line is ASCII on the wire; anything else is refused rather than guessed.
        return Err(PathError::BadEncoding);
    }
    let decoded = decode_unreserved(raw)?;
    let mut segments: Vec<&str> = Vec::new();
    let trailing = decoded.ends_with('/') || decoded.ends_with("/.") || decoded.ends_with("/..");
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                if segments.pop().is_none() {
                    return Err(PathError::AboveRoot);
                }
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() || (trailing && !segments.is_empty()) {
        out.push('/');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapses_and_resolves_dots() {
        assert_eq!(normalize("/a//b/./c/../d").as_deref(), Ok("/a/b/d"));
        assert_eq!(normalize("/a/../b").as_deref(), Ok("/b"));
        assert_eq!(normalize("/").as_deref(), Ok("/"));
        assert_eq!(normalize("/a/b/").as_deref(), Ok("/a/b/"));
        assert_eq!(normalize("/a/..").as_deref(), Ok("/"));
        assert_eq!(normalize("/a/b/..").as_deref(), Ok("/a/"));
    }

    #[test]
    fn decodes_unreserved_only() {
        assert_eq!(normalize("/%61%2D%7e").as_deref(), Ok("/a-~"));
        assert_eq!(normalize("/x%20y").as_deref(), Ok("/x%20y"));
        assert_eq!(normalize("/x%3a").as_deref(), Ok("/x%3A"));
        assert_eq!(normalize("/%2e%2e/x"), Err(PathError::AboveRoot));
        assert_eq!(normalize("/a/%2e%2e/x").as_deref(), Ok("/x"));
    }

    #[test]
    fn refuses_dangerous_paths() {
        assert_eq!(normalize("/a\\b"), Err(PathError::Backslash));
        assert_eq!(normalize("/a%5Cb"), Err(PathError::ForbiddenEncoding));
        assert_eq!(normalize("/a%2fb"), Err(PathError::ForbiddenEncoding));
        assert_eq!(normalize("/a%00"), Err(PathError::ForbiddenEncoding));
        assert_eq!(normalize("/a%252e"), Err(PathError::ForbiddenEncoding));
        assert_eq!(normalize("/a%0a"), Err(PathError::ControlCharacter));
        assert_eq!(normalize("/a\tb"), Err(PathError::ControlCharacter));
        assert_eq!(normalize("/../etc"), Err(PathError::AboveRoot));
        assert_eq!(normalize("/%zz"), Err(PathError::BadEncoding));
        assert_eq!(normalize("/%4"), Err(PathError::BadEncoding));
        assert_eq!(normalize("a"), Err(PathError::NotAbsolute));
    }

    #[test]
    fn semicolon_is_ordinary() {
        assert_eq!(normalize("/a;b/../c").as_deref(), Ok("/c"));
    }
}
