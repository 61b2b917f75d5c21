//! Just enough HTML reading to script forms: `<form>` elements with their `<input>`s.

use regex::Regex;

#[derive(Clone, Debug)]
pub struct Form {
    pub id: Option<String>,
    pub action: Option<String>,
    pub method: String,
    /// `(name, value)` of every named `<input>` (and `<button name=..>`), in order.
    pub inputs: Vec<(String, String)>,
}

impl Form {
    pub fn has_input(&self, name: &str) -> bool {
        self.inputs.iter().any(|(n, _)| n == name)
    }
}

/// The value of attribute `name` in a start tag's attribute text.
pub fn attr(tag: &str, name: &str) -> Option<String> {
    let re = Regex::new(&format!(
        r#"(?is)(?:^|\s){}\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))"#,
        regex::escape(name)
    ))
    .expect("attribute regex");
    re.captures(tag).map(|c| {
        let raw = c
            .get(1)
            .or_else(|| c.get(2))
            .or_else(|| c.get(3))
            .map_or("", |m| m.as_str());
        html_escape::decode_html_entities(raw).into_owned()
    })
}

/// Every `<form>` in `html`, with the named inputs inside it.
pub fn forms(html: &str) -> Vec<Form> {
    let form_re = Regex::new(r"(?is)<form\b([^>]*)>(.*?)</form\s*>").expect("form regex");
    let input_re = Regex::new(r"(?is)<(?:input|button)\b([^>]*)>").expect("input regex");
    form_re
        .captures_iter(html)
        .map(|c| {
            let attrs = c.get(1).map_or("", |m| m.as_str());
            let inner = c.get(2).map_or("", |m| m.as_str());
            let inputs = input_re
                .captures_iter(inner)
                .filter_map(|ic| {
                    let a = ic.get(1).map_or("", |m| m.as_str());
                    let name = attr(a, "name")?;
                    Some((name, attr(a, "value").unwrap_or_default()))
                })
                .collect();
            Form {
                id: attr(attrs, "id"),
                action: attr(attrs, "action"),
                method: attr(attrs, "method")
                    .unwrap_or_else(|| "get".to_owned())
                    .to_ascii_lowercase(),
                inputs,
            }
        })
        .collect()
}

/// The first form that has a `password` input (a login form).
pub fn login_form(html: &str) -> Option<Form> {
    forms(html).into_iter().find(|f| f.has_input("password"))
}
