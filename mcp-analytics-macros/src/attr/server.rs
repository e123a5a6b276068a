//! `#[mcp_server(...)]`: reads the server options, then every `#[tool]`, `#[prompt]`,
//! `#[resource]` and `#[complete]` method of the impl.

use proc_macro2::TokenStream;
use syn::ImplItem;

use super::{
    Field, boolean, complete, expr,
    method::{Attrs, Kind},
    parse_fields, prompt, read_keys, resource, string, tool,
};
use crate::{ast::Server, ctxt::Ctxt, keys::keys};

keys! {
    /// The options of `#[mcp_server(...)]`.
    pub(crate) enum ServerKey {
        Name = "name",
        Version = "version",
        Instructions = "instructions",
        Analytics = "analytics",
        Payments = "payments",
        ServerHandler = "server_handler",
    }
}

/// Reads the server options and every tool; mistakes go to `cx`, and the model keeps whatever
/// could be read.
pub(crate) fn read(args: TokenStream, mut item: syn::ItemImpl, cx: &mut Ctxt) -> Server {
    let mut server = Server {
        item: syn::ItemImpl {
            items: Vec::new(),
            ..item.clone()
        },
        name: None,
        version: None,
        instructions: None,
        analytics: None,
        payments: None,
        server_handler: true,
        tools: Vec::new(),
        prompts: Vec::new(),
        resources: Vec::new(),
        completions: Vec::new(),
    };
    let fields = parse_fields(args).unwrap_or_else(|error| {
        cx.push(error);
        // The options are unknown: `server_handler = false` may be among them.
        server.server_handler = false;
        Vec::new()
    });
    read_keys("mcp_server", &fields, cx, |key, field, cx| {
        option(&mut server, key, field, cx);
    });
    for impl_item in &mut item.items {
        let ImplItem::Fn(method) = impl_item else {
            continue;
        };
        let attrs = Attrs::take(method);
        let Some((kind, attr)) = attrs.kind(cx) else {
            continue;
        };
        let paid = attrs.paid(kind, cx);
        match kind {
            Kind::Tool => server.tools.push(tool::read(method, attr, paid, cx)),
            Kind::Prompt => server.prompts.push(prompt::read(method, attr, paid, cx)),
            Kind::Resource => server
                .resources
                .extend(resource::read(method, attr, paid, cx)),
            Kind::Complete => server.completions.extend(complete::read(method, attr, cx)),
        }
    }
    server.item.items = item.items;
    server
}

fn option(server: &mut Server, key: ServerKey, field: &Field, cx: &mut Ctxt) {
    match key {
        // #[mcp_server(name = "My MCP")]
        ServerKey::Name => server.name = string(field, cx),
        // #[mcp_server(version = "1.2.3")]
        ServerKey::Version => server.version = string(field, cx),
        // #[mcp_server(instructions = "...")]
        ServerKey::Instructions => server.instructions = string(field, cx),
        // #[mcp_server(analytics = self.analytics)]
        ServerKey::Analytics => server.analytics = expr(field, "analytics = self.analytics", cx),
        // #[mcp_server(payments = self.payments)]
        ServerKey::Payments => server.payments = expr(field, "payments = self.payments", cx),
        // #[mcp_server(server_handler = false)]
        ServerKey::ServerHandler => {
            // A value that is not a boolean is reported, and reads as "no handler": the user
            // may have written their own, and a second one would only add E0119.
            server.server_handler = boolean(field, cx).is_some_and(|lit| lit.value);
        }
    }
}
