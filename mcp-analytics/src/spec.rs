//! What `#[mcp_server]` declares about a server, as compile-time constants: its [`ServerInfo`],
//! one [`ToolSpec`] per tool (with its [`Annotations`] and, for `#[paid]` tools, its
//! [`Pricing`]), one [`PromptSpec`], [`ResourceSpec`], [`ResourceTemplateSpec`] or
//! [`CompletionSpec`] per prompt, resource, template and completion, the [`ToolList`] advertised
//! to clients, and the schema helpers the specs name. The `Server` trait of the `server` module
//! ties them to the user's type.

mod completion;
mod prompt;
mod resource;

use std::sync::{Arc, OnceLock};

pub use completion::{CompletionRef, CompletionSpec};
pub use prompt::{PromptSpec, prompt_arguments};
pub use resource::{ResourceSpec, ResourceTemplateSpec};

use rmcp::model::{JsonObject, MetaObject, Tool, ToolAnnotations};
use schemars::JsonSchema;

use crate::payments::pricing::{PaidKind, PaidTool, Pricing};

/// Name, version and instructions of a server, fixed at compile time.
#[derive(Debug)]
pub struct ServerInfo {
    /// `#[mcp_server(name)]`, else the crate's package name.
    pub name: &'static str,
    /// `#[mcp_server(version)]`, else the crate's package version.
    pub version: &'static str,
    /// `#[mcp_server(instructions)]`.
    pub instructions: Option<&'static str>,
}

/// rmcp tool annotations as compile-time constants.
#[derive(Debug, Clone, Copy)]
pub struct Annotations {
    /// A human-readable title.
    pub title: Option<&'static str>,
    /// The tool does not modify its environment.
    pub read_only_hint: Option<bool>,
    /// The tool may perform destructive updates.
    pub destructive_hint: Option<bool>,
    /// Calling the tool twice with the same arguments has no further effect.
    pub idempotent_hint: Option<bool>,
    /// The tool talks to an open world of external entities.
    pub open_world_hint: Option<bool>,
}

impl Annotations {
    /// No annotations.
    pub const NONE: Annotations = Annotations {
        title: None,
        read_only_hint: None,
        destructive_hint: None,
        idempotent_hint: None,
        open_world_hint: None,
    };

    fn to_rmcp(self) -> Option<ToolAnnotations> {
        let Annotations {
            title,
            read_only_hint,
            destructive_hint,
            idempotent_hint,
            open_world_hint,
        } = self;
        let any = title.is_some()
            || read_only_hint.is_some()
            || destructive_hint.is_some()
            || idempotent_hint.is_some()
            || open_world_hint.is_some();
        any.then(|| {
            ToolAnnotations::from_raw(
                title.map(str::to_owned),
                read_only_hint,
                destructive_hint,
                idempotent_hint,
                open_world_hint,
            )
        })
    }
}

/// One tool as declared by `#[tool(...)]`.
#[derive(Debug)]
pub struct ToolSpec {
    /// The MCP tool name.
    pub name: &'static str,
    /// `title = "..."`.
    pub title: Option<&'static str>,
    /// `description = "..."` or the doc comment.
    pub description: Option<&'static str>,
    /// The JSON schema of the argument type.
    pub input_schema: fn() -> Arc<JsonObject>,
    /// The JSON schema of a `Json<T>` result.
    pub output_schema: Option<fn() -> Arc<JsonObject>>,
    /// `annotations(...)`.
    pub annotations: Annotations,
    /// `meta = ...`.
    pub meta: Option<fn() -> MetaObject>,
    /// `track_results = false` stores no result.
    pub track_results: bool,
    /// `redact = [...]`: extra sensitive keys for this tool.
    pub redact: &'static [&'static str],
    /// `#[paid(...)]`: the payment gate's pricing.
    pub paid: Option<&'static Pricing>,
}

impl ToolSpec {
    /// The tool as payments sees it, when it is paid.
    pub fn paid_tool(&self) -> Option<PaidTool> {
        Some(PaidTool {
            kind: PaidKind::Tool,
            name: self.name,
            description: self.description,
            pricing: self.paid?,
        })
    }

    /// The values of every option not written in `#[tool(...)]`.
    pub const DEFAULT: ToolSpec = ToolSpec {
        name: "",
        title: None,
        description: None,
        input_schema: empty_schema,
        output_schema: None,
        annotations: Annotations::NONE,
        meta: None,
        track_results: true,
        redact: &[],
        paid: None,
    };

    fn to_tool(&self) -> Tool {
        let mut tool = Tool::new_with_raw(
            self.name,
            self.description.map(Into::into),
            (self.input_schema)(),
        );
        if let Some(title) = self.title {
            tool = tool.with_title(title);
        }
        if let Some(output_schema) = self.output_schema {
            tool = tool.with_raw_output_schema(output_schema());
        }
        if let Some(annotations) = self.annotations.to_rmcp() {
            tool = tool.with_annotations(annotations);
        }
        if let Some(meta) = self.meta {
            tool = tool.with_meta(meta());
        }
        tool
    }
}

/// The rmcp `Tool` list of a server, built on first use and then shared.
pub struct ToolList(OnceLock<Vec<Tool>>);

impl ToolList {
    /// An empty, not yet built list (for a `static`).
    pub const fn new() -> Self {
        Self(OnceLock::new())
    }

    /// The tools described by `specs`, built once.
    pub fn get(&self, specs: &[ToolSpec]) -> &[Tool] {
        self.0
            .get_or_init(|| specs.iter().map(ToolSpec::to_tool).collect())
    }
}

impl Default for ToolList {
    fn default() -> Self {
        Self::new()
    }
}

/// The input schema of a tool taking `T`.
pub fn input_schema<T: JsonSchema + 'static>() -> Arc<JsonObject> {
    rmcp::handler::server::common::schema_for_input::<T>().unwrap_or_else(|error| {
        tracing::error!(
            "input schema of `{}` is not an object ({error}); advertising an open object",
            std::any::type_name::<T>()
        );
        empty_schema()
    })
}

/// The output schema of a tool returning `Json<T>`.
pub fn output_schema<T: JsonSchema + 'static>() -> Arc<JsonObject> {
    rmcp::handler::server::common::schema_for_output::<T>()
}

/// The input schema of a tool without arguments: any object.
pub fn empty_schema() -> Arc<JsonObject> {
    static EMPTY: OnceLock<Arc<JsonObject>> = OnceLock::new();
    EMPTY
        .get_or_init(|| {
            let mut schema = JsonObject::new();
            schema.insert("type".into(), "object".into());
            schema.insert("properties".into(), JsonObject::new().into());
            Arc::new(schema)
        })
        .clone()
}

/// `#[tool(meta = json)]`: the tool's `_meta`, from a JSON object.
pub fn tool_meta(meta: serde_json::Value) -> MetaObject {
    match meta {
        serde_json::Value::Object(object) => MetaObject(object),
        other => {
            tracing::error!(
                "`#[tool(meta = ...)]` must be a JSON object, got {other}; ignoring it"
            );
            MetaObject(JsonObject::new())
        }
    }
}
