//! The README's configuration reference lists exactly the keys the loader accepts.

use std::collections::BTreeSet;

#[test]
fn readme_reference_table_matches_the_loader() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("<!-- config-reference:start -->")
        .expect("start marker");
    let end = readme
        .find("<!-- config-reference:end -->")
        .expect("end marker");
    let documented: BTreeSet<String> = readme[start..end]
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`').map(|(k, _)| k.to_owned()))
        .collect();
    let accepted: BTreeSet<String> = sso_proxy::config::reference_keys().into_iter().collect();
    let missing: Vec<_> = accepted.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&accepted).collect();
    assert!(
        missing.is_empty(),
        "keys accepted but not documented in README: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "keys documented in README but not accepted: {extra:?}"
    );
}
