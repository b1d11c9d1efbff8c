//! A user's config file laid over the built-in default, and the help its errors give.
//!
//! Why: a config that must repeat every key of `default.toml` fails one missing key at
//! a time. Merged over the default, a file holds only what it changes.

use toml::{Table, Value};

/// Keys that name or wire an entry of a list: an entry that omits them does not take
/// the default entry's value (a route without `stream` is not a route to
/// `example-stream`). Every other key of an entry defaults to the default entry's.
pub const IDENTITY_KEYS: &[(&str, &[&str])] = &[
    ("streams", &["name"]),
    ("routes", &["path", "stream", "function"]),
    ("tables", &["name", "hash_key", "range_key"]),
    ("functions", &["name", "command"]),
    ("mappings", &["EventSourceArn", "FunctionName"]),
];

/// `user` over `default`: tables merge key by key, any other value (a list included)
/// replaces the default's. An entry of a list named in [`IDENTITY_KEYS`] is itself laid
/// over the default's first entry, identity keys removed.
pub fn over_default(mut default: Table, user: Table) -> Table {
    for (key, value) in user {
        let merged = match (default.remove(&key), value) {
            (Some(Value::Table(d)), Value::Table(u)) => Value::Table(over_default(d, u)),
            (Some(Value::Array(d)), Value::Array(entries)) => {
                match IDENTITY_KEYS.iter().find(|(list, _)| *list == key) {
                    Some((_, identity)) => {
                        let template = match d.into_iter().next() {
                            Some(Value::Table(mut t)) => {
                                for k in *identity {
                                    t.remove(*k);
                                }
                                t
                            }
                            _ => Table::new(),
                        };
                        Value::Array(
                            entries
                                .into_iter()
                                .map(|e| match e {
                                    Value::Table(u) => {
                                        Value::Table(over_default(template.clone(), u))
                                    }
                                    other => other,
                                })
                                .collect(),
                        )
                    }
                    None => Value::Array(entries),
                }
            }
            (_, value) => value,
        };
        default.insert(key, merged);
    }
    default
}

/// Levenshtein distance, in characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// `; did you mean `x`?` for the closest of `candidates` (within a third of the name's
/// length, at least 2 edits), or a list of what is declared, or nothing.
pub fn did_you_mean<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    let mut all: Vec<&str> = candidates.collect();
    all.sort_unstable();
    let best = all
        .iter()
        .map(|c| (distance(name, c), *c))
        .min_by_key(|(d, _)| *d);
    match best {
        Some((d, c)) if d <= (name.chars().count() / 3).max(2) => {
            format!("; did you mean `{c}`?")
        }
        _ if all.is_empty() => " (none is declared)".into(),
        _ => format!(" (declared: {})", all.join(", ")),
    }
}

/// Prefixes a reference error with the line of `text` where the missing name is
/// written (`line N: ...`), when the message names one (``x` is not declared`) and the
/// file writes it.
pub fn locate(text: &str, message: &str) -> String {
    let Some(end) = message.find("` is not declared") else {
        return message.to_owned();
    };
    let Some(start) = message[..end].rfind('`') else {
        return message.to_owned();
    };
    let quoted = format!("\"{}\"", &message[start + 1..end]);
    let line = text.lines().position(|l| {
        let code = l.split('#').next().unwrap_or("");
        code.contains(&quoted)
    });
    match line {
        Some(n) => format!("line {}: {message}", n + 1),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_suggested_only_when_close() {
        let declared = ["example-stream", "orders"];
        assert_eq!(
            did_you_mean("exmaple-stream", declared.into_iter()),
            "; did you mean `example-stream`?"
        );
        assert_eq!(
            did_you_mean("payments", declared.into_iter()),
            " (declared: example-stream, orders)"
        );
        assert_eq!(did_you_mean("x", std::iter::empty()), " (none is declared)");
    }

    #[test]
    fn errors_name_the_line_of_the_missing_reference() {
        let text = "# a comment naming \"nope\"\n[[routes]]\npath = \"/in\"\nstream = \"nope\"\n";
        assert_eq!(
            locate(text, "route POST /in: stream `nope` is not declared"),
            "line 4: route POST /in: stream `nope` is not declared"
        );
    }

    #[test]
    fn entries_take_omitted_keys_from_the_default_entry_but_not_its_names() {
        let default: Table = toml::from_str(
            "[[routes]]\nmethod = \"POST\"\npath = \"/dev\"\nstream = \"s\"\n[server]\nlisten = \"a\"\ndata_dir = \"d\"\n",
        )
        .unwrap();
        let user: Table = toml::from_str(
            "[[routes]]\npath = \"/x\"\nfunction = \"f\"\n[server]\nlisten = \"b\"\n",
        )
        .unwrap();
        let merged = over_default(default, user);
        let route = merged["routes"].as_array().unwrap()[0].as_table().unwrap();
        assert_eq!(route["method"].as_str(), Some("POST"));
        assert_eq!(route["path"].as_str(), Some("/x"));
        assert!(!route.contains_key("stream"));
        assert_eq!(merged["server"]["listen"].as_str(), Some("b"));
        assert_eq!(merged["server"]["data_dir"].as_str(), Some("d"));
    }
}
