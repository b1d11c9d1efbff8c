//! Which resource of a deployment answers a request path: at each level a literal path
//! part first, then a `{param}`, then a greedy `{proxy+}` (one or more segments), with
//! backtracking, as API Gateway prefers the most specific resource.

use std::collections::BTreeMap;

use super::model::Resource;

/// The resource a path reached, and the path parameters it bound.
#[derive(Debug, Clone, PartialEq)]
pub struct Matched<'a> {
    pub resource: &'a Resource,
    pub path_params: Vec<(String, String)>,
}

/// The resource of `resources` that `path` (starting with `/`) addresses.
pub fn match_path<'a>(
    resources: &'a BTreeMap<String, Resource>,
    path: &str,
) -> Option<Matched<'a>> {
    let root = resources.values().find(|r| r.parent_id.is_none())?;
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut children: BTreeMap<&str, Vec<&Resource>> = BTreeMap::new();
    for r in resources.values() {
        if let Some(p) = &r.parent_id {
            children.entry(p.as_str()).or_default().push(r);
        }
    }
    let mut params = Vec::new();
    let found = walk(&children, root, &segments, &mut params)?;
    Some(Matched {
        resource: found,
        path_params: params,
    })
}

/// A path part's variable: `{id}` is `("id", false)`, `{proxy+}` is `("proxy", true)`.
pub fn variable(part: &str) -> Option<(&str, bool)> {
    let inner = part.strip_prefix('{')?.strip_suffix('}')?;
    Some(match inner.strip_suffix('+') {
        Some(name) => (name, true),
        None => (inner, false),
    })
}

fn walk<'a>(
    children: &BTreeMap<&str, Vec<&'a Resource>>,
    node: &'a Resource,
    segments: &[&str],
    params: &mut Vec<(String, String)>,
) -> Option<&'a Resource> {
    let Some((first, rest)) = segments.split_first() else {
        return Some(node);
    };
    let kids = children.get(node.id.as_str())?;
    let part = |r: &Resource| r.path_part.clone().unwrap_or_default();
    for kid in kids.iter().filter(|k| part(k) == *first) {
        if let Some(found) = walk(children, kid, rest, params) {
            return Some(found);
        }
    }
    for kid in kids {
        let p = part(kid);
        if let Some((name, false)) = variable(&p) {
            params.push((name.to_owned(), (*first).to_owned()));
            if let Some(found) = walk(children, kid, rest, params) {
                return Some(found);
            }
            params.pop();
        }
    }
    for kid in kids {
        let p = part(kid);
        if let Some((name, true)) = variable(&p) {
            params.push((name.to_owned(), segments.join("/")));
            return Some(kid);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(parts: &[(&str, Option<&str>, &str)]) -> BTreeMap<String, Resource> {
        parts
            .iter()
            .map(|(id, parent, part)| {
                (
                    id.to_string(),
                    Resource {
                        id: id.to_string(),
                        parent_id: parent.map(Into::into),
                        path_part: parent.map(|_| part.to_string()),
                        path: String::new(),
                        resource_methods: BTreeMap::new(),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn literal_then_parameter_then_proxy() {
        let t = tree(&[
            ("root", None, ""),
            ("items", Some("root"), "items"),
            ("item", Some("items"), "{id}"),
            ("special", Some("items"), "special"),
            ("detail", Some("item"), "detail"),
            ("proxy", Some("root"), "{proxy+}"),
        ]);
        let id = |p: &str| match_path(&t, p).map(|m| (m.resource.id.clone(), m.path_params));
        assert_eq!(id("/"), Some(("root".into(), vec![])));
        assert_eq!(id("/items"), Some(("items".into(), vec![])));
        assert_eq!(id("/items/"), Some(("items".into(), vec![])));
        assert_eq!(id("/items/special"), Some(("special".into(), vec![])));
        assert_eq!(
            id("/items/42"),
            Some(("item".into(), vec![("id".into(), "42".into())]))
        );
        assert_eq!(
            id("/items/42/detail"),
            Some(("detail".into(), vec![("id".into(), "42".into())]))
        );
        // Nothing below {id} matches "other": back up to the proxy at the root.
        assert_eq!(
            id("/items/42/other"),
            Some((
                "proxy".into(),
                vec![("proxy".into(), "items/42/other".into())]
            ))
        );
        assert_eq!(
            id("/a/b"),
            Some(("proxy".into(), vec![("proxy".into(), "a/b".into())]))
        );
    }

    #[test]
    fn nothing_matches_without_a_proxy() {
        let t = tree(&[("root", None, ""), ("items", Some("root"), "items")]);
        assert!(match_path(&t, "/other").is_none());
        assert!(match_path(&t, "/items/1").is_none());
        assert!(match_path(&BTreeMap::new(), "/").is_none());
    }

    #[test]
    fn variables_are_recognised() {
        assert_eq!(variable("{id}"), Some(("id", false)));
        assert_eq!(variable("{proxy+}"), Some(("proxy", true)));
        assert_eq!(variable("items"), None);
    }
}
