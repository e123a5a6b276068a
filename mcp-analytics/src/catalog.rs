//! What a server's tool catalogue costs an agent: every tool's definition as `tools/list` serves
//! it (name, description, schemas, annotations), in bytes of compact JSON and estimated tokens,
//! and the whole answer's size. Every connection that lists the tools puts all of it into the
//! model's context.
//!
//! Tokens are estimated as `ceil(bytes / 4)`, the usual rule of thumb for English text and JSON
//! with today's BPE tokenizers; a model's own tokenizer may count 20–30 % either way, so compare
//! tools with it rather than bill by it.
//!
//! The server records its catalogue once per start and version (see
//! [`crate::Analytics`]), so a dashboard or report in another process reads it from the database.

use serde::{Deserialize, Serialize};

/// Bytes per token of the estimate.
pub const BYTES_PER_TOKEN: u64 = 4;

/// Estimated tokens of `bytes` of JSON or text: `ceil(bytes / 4)`.
pub fn estimate_tokens(bytes: u64) -> u64 {
    bytes.div_ceil(BYTES_PER_TOKEN)
}

/// A server version's `tools/list` answer, measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCatalog {
    /// The server's name.
    pub server_name: String,
    /// The server's version.
    pub server_version: String,
    /// When a server of this version last started (unix ms).
    pub recorded_ms: i64,
    /// Bytes of the whole `tools/list` result (`{"tools":[…]}`, compact JSON).
    pub list_bytes: u64,
    /// Estimated tokens of the whole result.
    pub list_tokens: u64,
    /// Every tool, in the order served.
    pub tools: Vec<ToolCost>,
}

/// One tool's definition, measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCost {
    /// The tool's name.
    pub tool: String,
    /// Bytes of its definition (compact JSON, as served).
    pub bytes: u64,
    /// Estimated tokens of its definition.
    pub tokens: u64,
}

impl ToolCatalog {
    /// Measures `tools` as server `name` `version` serves them, now.
    pub fn measure(name: &str, version: &str, tools: &[rmcp::model::Tool]) -> Self {
        let list_bytes = json_len(&rmcp::model::ListToolsResult::with_all_items(
            tools.to_vec(),
        ));
        Self {
            server_name: name.to_owned(),
            server_version: version.to_owned(),
            recorded_ms: crate::clock::now_ms(),
            list_bytes,
            list_tokens: estimate_tokens(list_bytes),
            tools: tools
                .iter()
                .map(|tool| {
                    let bytes = json_len(tool);
                    ToolCost {
                        tool: tool.name.to_string(),
                        bytes,
                        tokens: estimate_tokens(bytes),
                    }
                })
                .collect(),
        }
    }

    /// Only `tool`'s entry (the list's totals stay those of the whole catalogue).
    pub(crate) fn only(mut self, tool: &str) -> Self {
        self.tools.retain(|entry| entry.tool == tool);
        self
    }
}

/// The length of `value` as compact JSON.
fn json_len(value: &impl Serialize) -> u64 {
    serde_json::to_vec(value).map_or(0, |json| json.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_a_quarter_of_the_bytes_rounded_up() {
        assert_eq!([0, 1, 4, 5, 400].map(estimate_tokens), [0, 1, 1, 2, 100]);
    }

    #[test]
    fn the_whole_list_is_its_definitions_in_one_array() {
        let tools: Vec<rmcp::model::Tool> = ["a", "bb", "ccc"]
            .into_iter()
            .map(|name| {
                serde_json::from_value(serde_json::json!({
                    "name": name,
                    "description": format!("The {name} tool."),
                    "inputSchema": {"type": "object", "properties": {"x": {"type": "string"}}},
                }))
                .unwrap()
            })
            .collect();
        let catalog = ToolCatalog::measure("s", "1", &tools);
        let definitions: u64 = catalog.tools.iter().map(|tool| tool.bytes).sum();
        // The result's envelope around the definitions and the commas between them.
        let envelope = r#"{"resultType":"complete","tools":[]}"#.len() as u64;
        assert_eq!(catalog.list_bytes, envelope + definitions + 2);
        assert_eq!(
            catalog
                .tools
                .iter()
                .map(|tool| tool.tool.as_str())
                .collect::<Vec<_>>(),
            ["a", "bb", "ccc"]
        );
        assert!(catalog.tools[2].bytes > catalog.tools[0].bytes);
    }
}
