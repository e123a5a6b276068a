//! [`CompletionSpec`]: one `#[complete]`, naming the prompt argument or resource template
//! variable it completes.

/// What a completion request refers to (MCP's `ref/prompt` and `ref/resource`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CompletionRef<'a> {
    /// A prompt, by name.
    Prompt(&'a str),
    /// A resource template, by its URI template.
    Resource(&'a str),
}

/// One completion as declared by `#[complete(...)]`.
#[derive(Debug)]
pub struct CompletionSpec {
    /// The prompt or resource template.
    pub target: CompletionRef<'static>,
    /// The prompt argument or template variable.
    pub argument: &'static str,
}
