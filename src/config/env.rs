//! `SSO_PROXY__<PATH>` environment variables and CLI flags, and the layered [`Tree`] that the
//! file, the environment (ClearML variables included) and the CLI all write into, in that order.

use std::collections::BTreeMap;

use serde_yaml::{Mapping, Value};

use super::ConfigProblem;

const PREFIX: &str = "SSO_PROXY__";

/// Which source set a value; a later layer overrides an earlier one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Layer {
    File,
    Trains,
    Clearml,
    Env,
    Cli,
}

#[derive(Debug, Clone)]
struct Origin {
    label: String,
    layer: Layer,
}

/// The merged, still loosely typed configuration, plus where each value came from.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    pub(crate) root: Mapping,
    /// Dotted path → the variable or flag that set it (paths set by the file are absent).
    origins: BTreeMap<String, Origin>,
    /// Connection id → `file` or the first variable that defined it.
    provider_sources: BTreeMap<String, String>,
}

/// Secret keys that also come as `<key>_file`; a higher layer setting one form drops the other.
const SECRET_KEYS: &[&str] = &["secret", "token", "client_secret"];

impl Tree {
    /// Starts the tree with the YAML file's top-level mapping.
    pub(crate) fn set_file(&mut self, root: Mapping) {
        if let Some(Value::Mapping(providers)) = root.get("providers") {
            for id in providers.keys().filter_map(Value::as_str) {
                self.provider_sources
                    .insert(id.to_owned(), "file".to_owned());
            }
        }
        self.root = root;
    }

    /// Sets `path` (already lower-cased segments) to `value`, recording `label` as its origin.
    pub(crate) fn set(&mut self, path: &[String], value: Value, label: &str, layer: Layer) {
        if let [first, id, _, ..] = path {
            if first == "providers" && !self.provider_sources.contains_key(id) {
                self.provider_sources.insert(id.clone(), label.to_owned());
            }
        }
        if let Some((last, parent)) = path.split_last() {
            if let Some(twin) = secret_twin(last) {
                let mut twin_path = parent.to_vec();
                twin_path.push(twin);
                if self.layer_of(&twin_path.join(".")) < layer {
                    remove_in(&mut self.root, &twin_path);
                }
            }
        }
        set_in(&mut self.root, path, value);
        let origin = Origin {
            label: label.to_owned(),
            layer,
        };
        self.origins.insert(path.join("."), origin);
    }

    fn layer_of(&self, dotted: &str) -> Layer {
        self.origins.get(dotted).map_or(Layer::File, |o| o.layer)
    }

    /// The name to show for a dotted key: the variable or flag that set it, else the key itself.
    pub(crate) fn label(&self, dotted: &str) -> String {
        match self.origins.get(dotted) {
            Some(origin) => origin.label.clone(),
            None => dotted.to_owned(),
        }
    }

    /// `file`, or the first environment variable that defined connection `id`.
    pub(crate) fn provider_source(&self, id: &str) -> String {
        self.provider_sources
            .get(id)
            .cloned()
            .unwrap_or_else(|| "file".to_owned())
    }
}

fn secret_twin(name: &str) -> Option<String> {
    match name.strip_suffix("_file") {
        Some(base) if SECRET_KEYS.contains(&base) => Some(base.to_owned()),
        None if SECRET_KEYS.contains(&name) => Some(format!("{name}_file")),
        _ => None,
    }
}

fn set_in(map: &mut Mapping, path: &[String], value: Value) {
    match path {
        [] => {}
        [last] => {
            map.insert(Value::String(last.clone()), value);
        }
        [first, rest @ ..] => {
            let entry = map
                .entry(Value::String(first.clone()))
                .or_insert_with(|| Value::Mapping(Mapping::new()));
            if !entry.is_mapping() {
                *entry = Value::Mapping(Mapping::new());
            }
            if let Value::Mapping(next) = entry {
                set_in(next, rest, value);
            }
        }
    }
}

fn remove_in(map: &mut Mapping, path: &[String]) {
    match path {
        [] => {}
        [last] => {
            map.shift_remove(last.as_str());
        }
        [first, rest @ ..] => {
            if let Some(Value::Mapping(next)) = map.get_mut(first.as_str()) {
                remove_in(next, rest);
            }
        }
    }
}

/// Applies every `SSO_PROXY__<PATH>` variable (path case-insensitive, `__` between levels).
pub(crate) fn apply_env(
    tree: &mut Tree,
    env: &BTreeMap<String, String>,
    problems: &mut Vec<ConfigProblem>,
) {
    for (name, value) in env {
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        if path.iter().any(String::is_empty) {
            problems.push(ConfigProblem {
                key: name.clone(),
                message: "empty level in the variable name (levels are separated by `__`)"
                    .to_owned(),
            });
            continue;
        }
        tree.set(&path, Value::String(value.clone()), name, Layer::Env);
    }
}

/// Applies CLI overrides given as `(dotted.key, value)`; errors name the flag (`--public-url`).
pub(crate) fn apply_cli(tree: &mut Tree, cli: &[(String, String)]) {
    for (key, value) in cli {
        let path: Vec<String> = key.split('.').map(str::to_owned).collect();
        let flag = format!("--{}", key.replace(['.', '_'], "-"));
        tree.set(&path, Value::String(value.clone()), &flag, Layer::Cli);
    }
}
