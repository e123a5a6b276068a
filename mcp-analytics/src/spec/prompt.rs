//! [`PromptSpec`]: one `#[prompt]`, and its MCP argument list derived from the JSON schema of
//! its arguments type.

use rmcp::model::{Prompt, PromptArgument};
use schemars::JsonSchema;

use super::input_schema;
use crate::payments::pricing::{PaidKind, PaidTool, Pricing};

/// One prompt as declared by `#[prompt(...)]`.
#[derive(Debug)]
pub struct PromptSpec {
    /// The MCP prompt name.
    pub name: &'static str,
    /// `title = "..."`.
    pub title: Option<&'static str>,
    /// `description = "..."` or the doc comment.
    pub description: Option<&'static str>,
    /// The arguments clients are asked for: the fields of the arguments type.
    pub arguments: fn() -> Vec<PromptArgument>,
    /// `#[paid(...)]`: the payment gate's pricing.
    pub paid: Option<&'static Pricing>,
}

impl PromptSpec {
    /// The values of every option not written in `#[prompt(...)]`.
    pub const DEFAULT: PromptSpec = PromptSpec {
        name: "",
        title: None,
        description: None,
        arguments: Vec::new,
        paid: None,
    };

    /// The prompt as payments sees it, when it is paid.
    pub fn paid_tool(&self) -> Option<PaidTool> {
        Some(PaidTool {
            kind: PaidKind::Prompt,
            name: self.name,
            description: self.description,
            pricing: self.paid?,
        })
    }

    pub(crate) fn to_prompt(&self) -> Prompt {
        let arguments = (self.arguments)();
        let prompt = Prompt::new(
            self.name,
            self.description,
            (!arguments.is_empty()).then_some(arguments),
        );
        match self.title {
            Some(title) => prompt.with_title(title),
            None => prompt,
        }
    }
}

/// The MCP arguments of a prompt taking `T`: one per property of `T`'s schema, with its
/// description (the field's doc comment), title, and whether it is required. (Properties come in
/// name order: the schema is a JSON object.)
pub fn prompt_arguments<T: JsonSchema + 'static>() -> Vec<PromptArgument> {
    let schema = input_schema::<T>();
    let required: Vec<&str> = schema
        .get("required")
        .and_then(|required| required.as_array())
        .map(|names| names.iter().filter_map(|name| name.as_str()).collect())
        .unwrap_or_default();
    let Some(properties) = schema.get("properties").and_then(|p| p.as_object()) else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(name, property)| {
            let text = |key: &str| property.get(key).and_then(|value| value.as_str());
            let mut argument =
                PromptArgument::new(name.as_str()).with_required(required.contains(&name.as_str()));
            if let Some(title) = text("title") {
                argument = argument.with_title(title);
            }
            if let Some(description) = text("description") {
                argument = argument.with_description(description);
            }
            argument
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Review some code.
    #[derive(serde::Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct ReviewArgs {
        /// The code to review.
        code: String,
        /// The language it is written in.
        language: Option<String>,
        #[serde(default, rename = "maxComments")]
        max_comments: String,
    }

    #[test]
    fn arguments_come_from_the_schema() {
        let arguments = prompt_arguments::<ReviewArgs>();
        let shown: Vec<(&str, Option<&str>, Option<bool>)> = arguments
            .iter()
            .map(|a| (a.name.as_str(), a.description.as_deref(), a.required))
            .collect();
        assert_eq!(
            shown,
            [
                ("code", Some("The code to review."), Some(true)),
                (
                    "language",
                    Some("The language it is written in."),
                    Some(false)
                ),
                ("maxComments", None, Some(false)),
            ]
        );
    }

    #[test]
    fn a_prompt_without_arguments_lists_none() {
        let prompt = PromptSpec {
            name: "hello",
            ..PromptSpec::DEFAULT
        }
        .to_prompt();
        assert_eq!(prompt.arguments, None);
        assert_eq!(prompt.name, "hello");
    }
}
