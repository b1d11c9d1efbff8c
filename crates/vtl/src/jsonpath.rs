//! The JSONPath subset `$input.json` and `$input.path` take: `$`, `.key`, `['key']`,
//! `[n]` (negative counts from the end), `[*]`/`.*`, and `..` (recursive descent).
//! Filters, unions and slices are refused with an error.

use crate::value::Value;

#[derive(Debug, Clone, PartialEq)]
enum Select {
    Key(String),
    Index(i64),
    Wild,
}

#[derive(Debug, Clone, PartialEq)]
struct Step {
    descend: bool,
    select: Select,
}

/// What a path picked: one value (or nothing) for a definite path, a list otherwise.
pub(crate) enum Found {
    One(Option<Value>),
    Many(Vec<Value>),
}

/// Evaluation ran past its step budget.
pub(crate) struct OutOfSteps;

fn parse(path: &str) -> Result<Vec<Step>, String> {
    let path = path.trim();
    // Like Jayway JsonPath, a path without the root `$` is taken relative to it.
    let rest = match path.strip_prefix('$') {
        Some(r) => r.to_owned(),
        None if path.starts_with('[') => path.to_owned(),
        None => format!(".{path}"),
    };
    let b = rest.as_bytes();
    let mut steps = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let mut descend = false;
        match b[i] {
            b'.' => {
                i += 1;
                if b.get(i) == Some(&b'.') {
                    descend = true;
                    i += 1;
                }
                if b.get(i) == Some(&b'[') {
                    let (select, next) = bracket(&rest, i)?;
                    steps.push(Step { descend, select });
                    i = next;
                    continue;
                }
                let start = i;
                while i < b.len() && b[i] != b'.' && b[i] != b'[' {
                    i += 1;
                }
                let name = &rest[start..i];
                let select = match name {
                    "" => return Err(format!("empty property name in JSONPath `{path}`")),
                    "*" => Select::Wild,
                    _ => Select::Key(name.to_owned()),
                };
                steps.push(Step { descend, select });
            }
            b'[' => {
                let (select, next) = bracket(&rest, i)?;
                steps.push(Step { descend, select });
                i = next;
            }
            _ => return Err(format!("unexpected character in JSONPath `{path}`")),
        }
    }
    Ok(steps)
}

/// `[...]` at `i`; returns the selection and the offset after `]`.
fn bracket(s: &str, i: usize) -> Result<(Select, usize), String> {
    let close = s[i..]
        .find(']')
        .map(|n| i + n)
        .ok_or_else(|| format!("unclosed `[` in JSONPath `{s}`"))?;
    let inner = s[i + 1..close].trim();
    let select = if inner == "*" {
        Select::Wild
    } else if let Some(q) = inner
        .strip_prefix('\'')
        .and_then(|r| r.strip_suffix('\''))
        .or_else(|| inner.strip_prefix('"').and_then(|r| r.strip_suffix('"')))
    {
        Select::Key(q.to_owned())
    } else if let Ok(n) = inner.parse::<i64>() {
        Select::Index(n)
    } else {
        return Err(format!("unsupported JSONPath selector `[{inner}]`"));
    };
    Ok((select, close + 1))
}

fn pick(v: &Value, select: &Select, out: &mut Vec<Value>) {
    match (v, select) {
        (Value::Map(m), Select::Key(k)) => {
            if let Some(x) = m.get(k) {
                out.push(x.clone());
            }
        }
        (Value::List(l), Select::Index(n)) => {
            let len = l.items().len() as i64;
            let at = if *n < 0 { len + n } else { *n };
            if (0..len).contains(&at) {
                out.push(l.items()[at as usize].clone());
            }
        }
        (Value::Map(m), Select::Wild) => out.extend(m.entries().iter().map(|(_, x)| x.clone())),
        (Value::List(l), Select::Wild) => out.extend(l.items().iter().cloned()),
        _ => {}
    }
}

/// Applies `path` to `root`, charging one step per node visited.
pub(crate) fn select(
    root: &Value,
    path: &str,
    steps: &mut u64,
    max_steps: u64,
) -> Result<Result<Found, OutOfSteps>, String> {
    let parsed = parse(path)?;
    let definite = parsed
        .iter()
        .all(|s| !s.descend && !matches!(s.select, Select::Wild));
    let mut current = vec![root.clone()];
    for step in &parsed {
        let mut next = Vec::new();
        for v in &current {
            if step.descend {
                // Document order: the node itself, then its descendants depth-first.
                let mut stack = vec![v.clone()];
                while let Some(node) = stack.pop() {
                    *steps += 1;
                    if *steps > max_steps {
                        return Ok(Err(OutOfSteps));
                    }
                    pick(&node, &step.select, &mut next);
                    match &node {
                        Value::Map(m) => {
                            stack.extend(m.entries().iter().rev().map(|(_, x)| x.clone()))
                        }
                        Value::List(l) => stack.extend(l.items().iter().rev().cloned()),
                        _ => {}
                    }
                }
            } else {
                *steps += 1;
                if *steps > max_steps {
                    return Ok(Err(OutOfSteps));
                }
                pick(v, &step.select, &mut next);
            }
        }
        current = next;
    }
    Ok(Ok(if definite {
        Found::One(current.into_iter().next())
    } else {
        Found::Many(current)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(doc: &str, path: &str) -> Found {
        let v = Value::from_json(&serde_json::from_str(doc).expect("json"));
        let mut steps = 0;
        match select(&v, path, &mut steps, 1_000_000) {
            Ok(Ok(f)) => f,
            _ => panic!("select failed"),
        }
    }

    #[test]
    fn definite_and_wildcard_paths() {
        let doc = r#"{"a":{"b":[10,20,30]},"c":[{"id":1},{"id":2}]}"#;
        assert!(matches!(
            run(doc, "$.a.b[1]"),
            Found::One(Some(Value::Int(20)))
        ));
        assert!(matches!(
            run(doc, "$['a']['b'][-1]"),
            Found::One(Some(Value::Int(30)))
        ));
        assert!(matches!(
            run(doc, "a.b[0]"),
            Found::One(Some(Value::Int(10)))
        ));
        assert!(matches!(run(doc, "$.nope"), Found::One(None)));
        match run(doc, "$.c[*].id") {
            Found::Many(v) => assert_eq!(v, vec![Value::Int(1), Value::Int(2)]),
            Found::One(_) => panic!("expected many"),
        }
        match run(doc, "$..id") {
            Found::Many(v) => assert_eq!(v, vec![Value::Int(1), Value::Int(2)]),
            Found::One(_) => panic!("expected many"),
        }
    }

    #[test]
    fn filters_are_refused() {
        assert!(parse("$.a[?(@.x)]").is_err());
        assert!(parse("$.a[").is_err());
    }
}
