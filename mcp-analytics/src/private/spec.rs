//! Static descriptions the macro emits: [`ServerInfo`], one [`ToolSpec`] per tool, and the
//! [`Server`] trait that ties them to the user's type.

use std::{future::Future, sync::Arc, sync::OnceLock};

use rmcp::model::{JsonObject, MetaObject, Tool, ToolAnnotations};
use schemars::JsonSchema;

use super::call::ToolCall;
use crate::outcome::Outcome;
use crate::{
    Analytics, Payments,
    payments::pricing::{PaidTool, Pricing},
};

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

/// Implemented by `#[mcp_server]` for the user's type.
pub trait Server: Send + Sync + Sized + 'static {
    /// Server name, version and instructions.
    const INFO: ServerInfo;
    /// Every tool, in declaration order.
    const TOOLS: &'static [ToolSpec];

    /// Whether calls go to [`Analytics::global`] (no `#[mcp_server(analytics = ...)]`); the serve
    /// helpers then set it up from the environment before serving, failing on bad settings.
    const GLOBAL_ANALYTICS: bool = true;

    /// The cache of rmcp `Tool`s built from [`Server::TOOLS`].
    fn tool_list() -> &'static ToolList;

    /// Where this server's calls are recorded (`#[mcp_server(analytics = ...)]`).
    fn analytics(&self) -> &Analytics {
        Analytics::global()
    }

    /// Whether paid tools use [`Payments::global`] (no `#[mcp_server(payments = ...)]`); the
    /// serve helpers then set it up from the environment before serving.
    const GLOBAL_PAYMENTS: bool = true;

    /// Who takes payments for this server's `#[paid]` tools.
    fn payments(&self) -> &Payments {
        Payments::global()
    }

    /// Runs the tool named by `call` (a `match` on the tool name).
    fn dispatch(&self, call: ToolCall<'_>) -> impl Future<Output = Outcome> + Send;
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
