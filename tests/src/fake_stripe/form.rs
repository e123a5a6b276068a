//! Stripe's bracket form encoding (`line_items[0][price]=p&metadata[k]=v&expand[]=x`),
//! decoded into a nested JSON value: objects for named keys, arrays for numeric or empty
//! (`[]`) indices, strings for every leaf.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// One node of the decoded tree before arrays are recognised.
#[derive(Debug)]
enum Node {
    Leaf(String),
    Branch(BTreeMap<String, Node>, usize),
}

impl Node {
    fn branch() -> Self {
        Node::Branch(BTreeMap::new(), 0)
    }
}

/// Splits `a[b][0][]` into `["a", "b", "0", ""]`; a key without brackets is one segment.
fn segments(key: &str) -> Vec<String> {
    let Some(open) = key.find('[') else {
        return vec![key.to_owned()];
    };
    let mut out = vec![key[..open].to_owned()];
    let mut rest = &key[open..];
    while let Some(stripped) = rest.strip_prefix('[') {
        match stripped.find(']') {
            Some(close) => {
                out.push(stripped[..close].to_owned());
                rest = &stripped[close + 1..];
            }
            None => {
                out.push(stripped.to_owned());
                rest = "";
            }
        }
    }
    out
}

fn insert(node: &mut Node, path: &[String], value: String) {
    if !matches!(node, Node::Branch(..)) {
        *node = Node::branch();
    }
    let Node::Branch(children, pushed) = node else {
        unreachable!()
    };
    let (first, rest) = path.split_first().expect("non-empty path");
    // `[]` appends: give it the next free numeric index.
    let key = if first.is_empty() {
        let key = format!("{:08}", *pushed);
        *pushed += 1;
        key
    } else {
        first.clone()
    };
    if rest.is_empty() {
        children.insert(key, Node::Leaf(value));
    } else {
        let child = children.entry(key).or_insert_with(Node::branch);
        insert(child, rest, value);
    }
}

fn to_value(node: Node) -> Value {
    match node {
        Node::Leaf(s) => Value::String(s),
        Node::Branch(children, _) => {
            let numeric = !children.is_empty()
                && children
                    .keys()
                    .all(|k| k.bytes().all(|b| b.is_ascii_digit()));
            if numeric {
                let mut items: Vec<(u64, Node)> = children
                    .into_iter()
                    .map(|(k, v)| (k.parse().unwrap_or(u64::MAX), v))
                    .collect();
                items.sort_by_key(|(i, _)| *i);
                Value::Array(items.into_iter().map(|(_, v)| to_value(v)).collect())
            } else {
                Value::Object(
                    children
                        .into_iter()
                        .map(|(k, v)| (k, to_value(v)))
                        .collect::<Map<String, Value>>(),
                )
            }
        }
    }
}

/// Decodes an `application/x-www-form-urlencoded` body (or query string) in Stripe's bracket
/// notation into a JSON object. Later duplicates of the same key win.
pub fn decode(input: &[u8]) -> Value {
    let mut root = Node::branch();
    for (key, value) in form_urlencoded::parse(input) {
        if key.is_empty() {
            continue;
        }
        insert(&mut root, &segments(&key), value.into_owned());
    }
    match to_value(root) {
        Value::Object(map) => Value::Object(map),
        // A top level made only of numeric keys: keep it an object.
        Value::Array(items) => Value::Object(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v))
                .collect(),
        ),
        _ => Value::Object(Map::new()),
    }
}

/// Typed accessors over a decoded form.
pub trait FormExt {
    /// The string at `key`, if present and a string.
    fn str_at(&self, key: &str) -> Option<&str>;
    /// The string map at `key` (`metadata[k]=v`); empty when absent.
    fn string_map(&self, key: &str) -> BTreeMap<String, String>;
}

impl FormExt for Value {
    fn str_at(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    fn string_map(&self, key: &str) -> BTreeMap<String, String> {
        self.get(key)
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::decode;

    #[test]
    fn brackets_nest_and_index() {
        let v = decode(
            b"mode=payment&line_items%5B0%5D%5Bprice%5D=p1&line_items[1][price]=p2&line_items[0][quantity]=2\
              &metadata[a]=1&subscription_data[metadata][b]=x%20y&expand[]=e1&expand[]=e2",
        );
        assert_eq!(
            v,
            json!({
                "mode": "payment",
                "line_items": [{"price": "p1", "quantity": "2"}, {"price": "p2"}],
                "metadata": {"a": "1"},
                "subscription_data": {"metadata": {"b": "x y"}},
                "expand": ["e1", "e2"],
            })
        );
    }

    #[test]
    fn index_order_is_numeric() {
        let mut body = String::new();
        for i in (0..12).rev() {
            body.push_str(&format!("l[{i}]=v{i}&"));
        }
        let v = decode(body.as_bytes());
        let items: Vec<_> = v["l"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect();
        assert_eq!(items[10], "v10");
        assert_eq!(items.len(), 12);
    }
}
