//! Checks that need the whole server: placement of the macro and tool names. (Pricing rules
//! are checked where `#[paid]` is read, in `paid`.)

use crate::{errors::Errors, model::Server};

/// The longest tool name MCP clients accept.
const MAX_TOOL_NAME: usize = 128;

/// Checks that `#[mcp_server]` sits on an inherent, non-generic impl block.
pub(crate) fn placement(item: &syn::ItemImpl, errors: &mut Errors) {
    if let Some((_, path, _)) = &item.trait_ {
        errors.at(path, "`#[mcp_server]` goes on an inherent impl block (`impl MyServer { ... }`), not on a trait impl: it generates the `ServerHandler` impl itself");
    }
    if !item.generics.params.is_empty() {
        errors.at(&item.generics, "`#[mcp_server]` does not support generic impl blocks: implement it for a concrete type");
    }
}

/// Checks tool names and options across all tools.
pub(crate) fn server(server: &Server, errors: &mut Errors) {
    let mut names: Vec<String> = Vec::new();
    for tool in &server.tools {
        let name = tool.name.value();
        if let Some(problem) = name_problem(&name) {
            errors.at(&tool.name, format!("invalid tool name `{name}`: {problem}"));
        }
        if names.contains(&name) {
            errors.at(&tool.name, format!("duplicate tool name `{name}`: each tool of a server needs its own name (set one with `#[tool(name = \"...\")]`)"));
        }
        names.push(name);
    }
}

/// Why `name` is not a valid MCP tool name, if it is not.
fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("a tool name cannot be empty".into());
    }
    if name.len() > MAX_TOOL_NAME {
        return Some(format!(
            "a tool name has at most {MAX_TOOL_NAME} characters"
        ));
    }
    name.chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
        .map(|c| format!("`{c}` is not allowed; use ASCII letters, digits, `_`, `-` or `.`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_names_follow_the_mcp_rules() {
        assert_eq!(name_problem("get_weather.v2-beta"), None);
        assert!(name_problem("").is_some());
        assert!(name_problem("has space").unwrap().contains("` `"));
        assert!(name_problem(&"x".repeat(129)).is_some());
    }
}
