//! URI templates of resources (RFC 6570 levels 1 and 2: `{name}` and `{+name}` variables) and
//! the matcher that finds which template a requested URI belongs to, with the values of its
//! variables. A `{name}` value is one path segment (no `/`, `?` or `#`, as RFC 6570 encodes
//! them); a `{+name}` value may contain them. Values are percent-decoded and never empty.

use std::fmt;

/// A parsed URI template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriTemplate {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Variable { name: String, reserved: bool },
}

/// Why a string is not a URI template this matcher supports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError(String);

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TemplateError {}

/// The values of a template's variables in one URI, in template order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Variables(Vec<(String, String)>);

impl Variables {
    /// The value of the variable `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(variable, _)| variable == name)
            .map(|(_, value)| value.as_str())
    }
}

impl UriTemplate {
    /// Parses `template`; `{` and `}` only delimit variables.
    pub fn parse(template: &str) -> Result<Self, TemplateError> {
        let error = |problem: &str| TemplateError(format!("`{template}`: {problem}"));
        let mut parts = Vec::new();
        let mut rest = template;
        while !rest.is_empty() {
            let Some(open) = rest.find(['{', '}']) else {
                parts.push(Part::Literal(rest.to_owned()));
                break;
            };
            if rest[open..].starts_with('}') {
                return Err(error("`}` without `{`"));
            }
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_owned()));
            }
            let Some(close) = rest[open..].find('}') else {
                return Err(error("`{` without `}`"));
            };
            let expression = &rest[open + 1..open + close];
            let (reserved, name) = match expression.strip_prefix('+') {
                Some(name) => (true, name),
                None => (false, expression),
            };
            let valid =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(error(&format!(
                    "`{{{expression}}}` is not a `{{name}}` or `{{+name}}` variable"
                )));
            }
            parts.push(Part::Variable {
                name: name.to_owned(),
                reserved,
            });
            rest = &rest[open + close + 1..];
        }
        Ok(UriTemplate { parts })
    }

    /// The names of the variables, in order.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|part| match part {
            Part::Variable { name, .. } => Some(name.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// The values of the variables when `uri` is one of the template's URIs. Where a URI could
    /// be split in more than one way, earlier variables take the shortest values.
    pub fn matches(&self, uri: &str) -> Option<Variables> {
        let mut values = Vec::new();
        match_parts(&self.parts, uri, &mut values).then_some(Variables(values))
    }
}

fn match_parts(parts: &[Part], uri: &str, values: &mut Vec<(String, String)>) -> bool {
    let Some((part, rest)) = parts.split_first() else {
        return uri.is_empty();
    };
    match part {
        Part::Literal(literal) => uri
            .strip_prefix(literal.as_str())
            .is_some_and(|uri| match_parts(rest, uri, values)),
        Part::Variable { name, reserved } => {
            let longest = if *reserved {
                uri.len()
            } else {
                uri.find(['/', '?', '#']).unwrap_or(uri.len())
            };
            for end in (1..=longest).filter(|end| uri.is_char_boundary(*end)) {
                let Some(value) = percent_decode(&uri[..end]) else {
                    continue;
                };
                values.push((name.clone(), value));
                if match_parts(rest, &uri[end..], values) {
                    return true;
                }
                values.pop();
            }
            false
        }
    }
}

/// `%XX` sequences decoded; `None` when one is malformed or the result is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    if !text.contains('%') {
        return Some(text.to_owned());
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = text.get(index + 1..index + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(template: &str, uri: &str) -> Option<Vec<(String, String)>> {
        UriTemplate::parse(template)
            .unwrap()
            .matches(uri)
            .map(|v| v.0)
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn a_simple_variable_is_one_segment() {
        let template = "test://template/{id}/data";
        assert_eq!(
            values(template, "test://template/42/data"),
            Some(pairs(&[("id", "42")]))
        );
        assert_eq!(values(template, "test://template/4/2/data"), None);
        assert_eq!(
            values(template, "test://template//data"),
            None,
            "never empty"
        );
        assert_eq!(values(template, "test://template/42/data/more"), None);
        assert_eq!(values(template, "test://other/42/data"), None);
        assert_eq!(values("a://{x}", "a://1?q=2"), None);
    }

    #[test]
    fn a_reserved_variable_may_hold_slashes() {
        assert_eq!(
            values("file:///{+path}", "file:///etc/hosts"),
            Some(pairs(&[("path", "etc/hosts")]))
        );
        assert_eq!(
            values("repo://{owner}/{+path}.md", "repo://me/docs/a.b.md"),
            Some(pairs(&[("owner", "me"), ("path", "docs/a.b")]))
        );
    }

    #[test]
    fn earlier_variables_take_the_shortest_values() {
        assert_eq!(
            values("a://{x}.{y}", "a://1.2.3"),
            Some(pairs(&[("x", "1"), ("y", "2.3")]))
        );
        assert_eq!(
            values("a://{x}-{y}-end", "a://a-b-c-end"),
            Some(pairs(&[("x", "a"), ("y", "b-c")]))
        );
    }

    #[test]
    fn values_are_percent_decoded() {
        assert_eq!(
            values("a://items/{name}", "a://items/caf%C3%A9%2Fbar"),
            Some(pairs(&[("name", "café/bar")]))
        );
        assert_eq!(values("a://items/{name}", "a://items/bad%zz"), None);
        assert_eq!(
            values("a://items/{name}", "a://items/%FF"),
            None,
            "not UTF-8"
        );
        assert_eq!(
            values("a://items/{name}", "a://items/čaj"),
            Some(pairs(&[("name", "čaj")]))
        );
    }

    #[test]
    fn a_template_without_variables_matches_itself_only() {
        assert_eq!(values("a://x", "a://x"), Some(Vec::new()));
        assert_eq!(values("a://x", "a://xy"), None);
    }

    #[test]
    fn malformed_templates_are_errors() {
        for bad in ["a://{x", "a://x}", "a://{}", "a://{?q}", "a://{a b}"] {
            assert!(UriTemplate::parse(bad).is_err(), "{bad}");
        }
        let template = UriTemplate::parse("a://{x}/{+y}").unwrap();
        assert_eq!(template.variables().collect::<Vec<_>>(), ["x", "y"]);
        let variables = template.matches("a://1/2/3").unwrap();
        assert_eq!(
            (variables.get("x"), variables.get("y"), variables.get("z")),
            (Some("1"), Some("2/3"), None)
        );
    }
}
