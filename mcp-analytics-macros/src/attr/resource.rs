//! `#[resource(...)]` on a method: reads its options, its `#[paid]` and its signature. A fixed
//! `uri` takes no parameters; a `uri_template`'s variables bind, by name, to the method's
//! parameters (`async fn item(&self, id: u64 [, cx: CallContext]) -> R`), each one exactly
//! once.

use syn::{FnArg, ImplItemFn, LitStr};

use super::{
    boolean,
    method::{Kind, doc_comment, options, signature},
    paid, read_keys, string,
};
use crate::{
    ast::{Param, Resource, Uri, Variable},
    ctxt::Ctxt,
    keys::{did_you_mean_among, keys, listed},
};

keys! {
    /// The options of `#[resource(...)]`.
    pub(crate) enum ResourceKey {
        Uri = "uri",
        UriTemplate = "uri_template",
        Name = "name",
        Title = "title",
        Description = "description",
        MimeType = "mime_type",
        Subscribe = "subscribe",
    }
}

const FORM: &str =
    "#[resource(uri = \"scheme://path\")]` or `#[resource(uri_template = \"scheme://items/{id}\")]";

/// Reads a `#[resource]` method: `attr` is its `#[resource]`, `paid` its `#[paid]`. `None`
/// when it names no usable URI (reported).
pub(crate) fn read(
    method: &ImplItemFn,
    attr: &syn::Attribute,
    paid: Option<&syn::Attribute>,
    cx: &mut Ctxt,
) -> Option<Resource> {
    let method_name = method.sig.ident.clone();
    let paid = paid.and_then(|attr| paid::read(attr, cx));
    let mut uri: Option<Option<Uri>> = None;
    let mut name = LitStr::new(&method_name.to_string(), method_name.span());
    let mut title = None;
    let mut description = doc_comment(&method.attrs);
    let mut mime_type = None;
    let mut subscribe = false;
    if let Some(tokens) = options(attr, Kind::Resource, cx) {
        let fields = super::fields(tokens, cx);
        read_keys("resource", &fields, cx, |key, field, cx| match key {
            // #[resource(uri = "test://static-text")]
            ResourceKey::Uri | ResourceKey::UriTemplate => {
                if uri.is_some() {
                    cx.at(
                        &field.key,
                        "a resource has one `uri` or one `uri_template`, not both",
                    );
                    return;
                }
                let lit = string(field, cx);
                uri = Some(lit.and_then(|lit| match key {
                    ResourceKey::Uri => fixed(lit, cx),
                    _ => template(lit, cx),
                }));
            }
            // #[resource(name = "static-text")]
            ResourceKey::Name => {
                if let Some(lit) = string(field, cx) {
                    name = lit;
                }
            }
            // #[resource(title = "Static text")]
            ResourceKey::Title => title = string(field, cx),
            // #[resource(description = "...")]
            ResourceKey::Description => description = string(field, cx).map(|lit| lit.value()),
            // #[resource(mime_type = "text/plain")]
            ResourceKey::MimeType => {
                mime_type = string(field, cx).and_then(|lit| media_type(lit, cx))
            }
            // #[resource(subscribe)]
            ResourceKey::Subscribe => subscribe = boolean(field, cx).is_some_and(|lit| lit.value),
        });
    }
    if uri.is_none() {
        cx.at(attr, format!("`#[resource]` needs a URI: `{FORM}`"));
    }
    let signature = signature(method, Kind::Resource, cx);
    let uri = uri??;
    let params = bind(&uri, signature.params, cx);
    Some(Resource {
        method: method_name,
        uri,
        name,
        title,
        description,
        mime_type,
        subscribe,
        params,
        takes_context: signature.takes_context,
        returns: signature.returns,
        paid,
    })
}

/// The parameters of a resource method, each bound to the template variable of its name.
fn bind(uri: &Uri, params: Vec<(Param, FnArg)>, cx: &mut Ctxt) -> Vec<Param> {
    let (lit, variables) = match uri {
        Uri::Fixed(_) => {
            for (_, input) in &params {
                cx.at(input, "a `#[resource(uri = ...)]` method takes no parameters besides an optional `CallContext`: to read parts of the URI, write `uri_template = \"scheme://items/{id}\"` and a parameter `id` per variable");
            }
            return Vec::new();
        }
        Uri::Template(lit, variables) => (lit, variables),
    };
    let names: Vec<&str> = variables.iter().map(|v| v.name.as_str()).collect();
    let mut bound = Vec::new();
    for (param, input) in params {
        let name = param.name.to_string();
        if name == "_" {
            cx.at(&input, "a `#[resource]` parameter is a plain name, bound to the URI template variable of that name: `id: String`");
        } else if !names.contains(&name.as_str()) {
            cx.at(
                &param.name,
                format!(
                    "parameter `{name}` is not a variable of the URI template `{}`; {}the template's variables: {}",
                    lit.value(),
                    did_you_mean_among(&name, &names, |close| format!("`{close}`")),
                    shown(&names)
                ),
            );
        } else {
            bound.push(param);
        }
    }
    for variable in variables {
        if !bound.iter().any(|param| param.name == variable.name) {
            cx.at(
                lit,
                format!(
                    "URI template variable `{{{}}}` has no parameter: add `{}: String` (or any type parsed from a string) to the method",
                    variable.name, variable.name
                ),
            );
        }
    }
    bound
}

fn shown(names: &[&str]) -> String {
    listed(names, |name| format!("`{{{name}}}`"))
}

/// A fixed URI: a scheme, and no template variables.
fn fixed(lit: LitStr, cx: &mut Ctxt) -> Option<Uri> {
    let text = lit.value();
    if let Err(problem) = uri_problem(&text) {
        cx.at(&lit, format!("invalid resource URI `{text}`: {problem}"));
        return None;
    }
    if text.contains(['{', '}']) {
        cx.at(&lit, format!("`{text}` has `{{variables}}`: a URI with variables is a template, write `uri_template = \"{text}\"`"));
        return None;
    }
    Some(Uri::Fixed(lit))
}

/// A URI template of `{name}` and `{+name}` variables (RFC 6570 levels 1 and 2, simple and
/// reserved expansion).
fn template(lit: LitStr, cx: &mut Ctxt) -> Option<Uri> {
    let text = lit.value();
    let problem = uri_problem(&text).map_err(|problem| problem.to_owned());
    let variables = problem.and_then(|()| variables(&text));
    match variables {
        Ok(variables) if variables.is_empty() => {
            cx.at(&lit, format!("`{text}` has no `{{variables}}`: a URI without variables is one resource, write `uri = \"{text}\"`"));
            None
        }
        Ok(variables) => Some(Uri::Template(lit, variables)),
        Err(problem) => {
            cx.at(&lit, format!("invalid URI template `{text}`: {problem}"));
            None
        }
    }
}

/// Why `uri` is not an absolute URI (`scheme:...`), if it is not.
fn uri_problem(uri: &str) -> Result<(), &'static str> {
    let Some((scheme, _)) = uri.split_once(':') else {
        return Err(
            "a resource URI starts with a scheme, e.g. `file:///...`, `https://...` or `myapp://...`",
        );
    };
    let mut chars = scheme.chars();
    let valid_scheme = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !valid_scheme {
        return Err(
            "a resource URI starts with a scheme of ASCII letters, digits, `+`, `-` or `.`, e.g. `myapp://...`",
        );
    }
    if uri.contains(char::is_whitespace) {
        return Err("a URI has no spaces");
    }
    Ok(())
}

/// The variables of a URI template, in order.
pub(crate) fn variables(template: &str) -> Result<Vec<Variable>, String> {
    let mut variables: Vec<Variable> = Vec::new();
    let mut rest = template;
    let mut after_variable = false;
    loop {
        let Some(open) = rest.find(['{', '}']) else {
            return Ok(variables);
        };
        if rest[open..].starts_with('}') {
            return Err("`}` without `{`".into());
        }
        if open == 0 && after_variable {
            return Err(
                "two variables need text between them (`{a}/{b}`), or the URI cannot be split"
                    .into(),
            );
        }
        let inside = &rest[open + 1..];
        let Some(close) = inside.find('}') else {
            return Err("`{` without `}`".into());
        };
        let expression = &inside[..close];
        let name = expression.strip_prefix('+').unwrap_or(expression);
        if let Some(operator) = name.chars().next().filter(|c| "#./;?&=,!@|".contains(*c)) {
            return Err(format!(
                "`{{{operator}...}}` is not supported: write `{{name}}` (one path segment) or `{{+name}}` (may contain `/`)"
            ));
        }
        let mut chars = name.chars();
        let valid = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "`{{{expression}}}` is not a variable: a variable is a name of ASCII letters, digits and `_` (it binds to the parameter of that name)"
            ));
        }
        if variables.iter().any(|variable| variable.name == name) {
            return Err(format!("`{{{name}}}` appears twice"));
        }
        variables.push(Variable {
            name: name.to_owned(),
        });
        rest = &inside[close + 1..];
        after_variable = true;
    }
}

/// A media type `type/subtype`.
fn media_type(lit: LitStr, cx: &mut Ctxt) -> Option<LitStr> {
    let text = lit.value();
    let valid = text.split_once('/').is_some_and(|(kind, subtype)| {
        !kind.is_empty()
            && !subtype.is_empty()
            && !subtype.contains('/')
            && !text.contains(char::is_whitespace)
    });
    if valid {
        Some(lit)
    } else {
        cx.at(&lit, format!("`{text}` is not a media type: write `type/subtype`, e.g. `mime_type = \"text/plain\"` or `\"application/json\"`"));
        None
    }
}

#[cfg(test)]
mod tests {
    use proc_macro2::TokenStream;
    use quote::quote;

    use super::*;
    use crate::{ast::Server, attr::server};

    fn read(item: TokenStream) -> (Server, Vec<String>) {
        let mut cx = Ctxt::new();
        let server = server::read(TokenStream::new(), syn::parse2(item).unwrap(), &mut cx);
        (server, cx.messages())
    }

    #[test]
    fn reads_fixed_and_templated_resources() {
        let (server, messages) = read(quote! {
            impl S {
                /// Plain text.
                #[resource(uri = "test://static-text", name = "static-text", mime_type = "text/plain", subscribe)]
                async fn text(&self) -> String { todo!() }
                #[resource(uri_template = "test://template/{id}/data/{+path}", mime_type = "application/json")]
                async fn data(&self, path: String, id: u64, cx: CallContext) -> String { todo!() }
            }
        });
        assert!(messages.is_empty(), "{messages:?}");
        let [text, data] = &server.resources[..] else {
            panic!("two resources")
        };
        assert!(matches!(&text.uri, Uri::Fixed(lit) if lit.value() == "test://static-text"));
        assert!(text.subscribe && text.params.is_empty());
        assert_eq!(text.description.as_deref(), Some("Plain text."));
        let Uri::Template(_, variables) = &data.uri else {
            panic!("a template")
        };
        assert_eq!(variables.len(), 2);
        let params: Vec<String> = data.params.iter().map(|p| p.name.to_string()).collect();
        assert_eq!(params, ["path", "id"], "in declaration order");
        assert!(data.takes_context && !data.subscribe);
        assert_eq!(data.name.value(), "data");
    }

    #[test]
    fn template_variables_must_match_the_parameters() {
        let (_, messages) = read(quote! {
            impl S {
                #[resource(uri_template = "test://items/{id}/{kind}")]
                async fn item(&self, idd: String) -> String { todo!() }
            }
        });
        let all = messages.join("\n");
        assert!(
            all.contains("parameter `idd` is not a variable of the URI template `test://items/{id}/{kind}`; did you mean `id`?"),
            "{all}"
        );
        assert!(all.contains("`{id}` has no parameter"), "{all}");
        assert!(all.contains("`{kind}` has no parameter"), "{all}");
        assert_eq!(messages.len(), 3, "{all}");
    }

    #[test]
    fn reports_uri_mistakes() {
        let (_, messages) = read(quote! {
            impl S {
                #[resource(uri = "no-scheme")]
                async fn a(&self) -> String { todo!() }
                #[resource(uri = "test://{id}")]
                async fn b(&self) -> String { todo!() }
                #[resource(uri_template = "test://fixed")]
                async fn c(&self) -> String { todo!() }
                #[resource(uri = "test://x", uri_template = "test://{x}")]
                async fn d(&self) -> String { todo!() }
                #[resource(mime_type = "text")]
                async fn e(&self) -> String { todo!() }
                #[resource(uri = "test://f")]
                async fn f(&self, id: String) -> String { todo!() }
            }
        });
        let all = messages.join("\n");
        for expected in [
            "invalid resource URI `no-scheme`",
            "a URI with variables is a template",
            "a URI without variables is one resource",
            "not both",
            "is not a media type",
            "`#[resource]` needs a URI",
            "takes no parameters besides an optional `CallContext`",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
        assert_eq!(messages.len(), 7, "{all}");
    }

    #[test]
    fn template_syntax() {
        let names = |template: &str| {
            variables(template).map(|vars| vars.into_iter().map(|v| v.name).collect::<Vec<_>>())
        };
        assert_eq!(names("a://{x}/b/{+y}.json").unwrap(), ["x", "y"]);
        assert_eq!(names("a://plain").unwrap(), Vec::<String>::new());
        for (bad, problem) in [
            ("a://{x", "without `}`"),
            ("a://x}", "without `{`"),
            ("a://{x}{y}", "need text between them"),
            ("a://{?q}", "not supported"),
            ("a://{}", "is not a variable"),
            ("a://{1x}", "is not a variable"),
            ("a://{x}/{x}", "appears twice"),
        ] {
            let Err(error) = variables(bad) else {
                panic!("{bad} is accepted")
            };
            assert!(error.contains(problem), "{bad}: {error}");
        }
    }
}
