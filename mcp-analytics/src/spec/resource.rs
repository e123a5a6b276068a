//! [`ResourceSpec`] and [`ResourceTemplateSpec`]: one `#[resource(uri = ...)]` or
//! `#[resource(uri_template = ...)]`.

use rmcp::model::{Resource, ResourceTemplate};

use crate::payments::pricing::{PaidKind, PaidTool, Pricing};

/// One resource at a fixed URI, as declared by `#[resource(uri = "...")]`.
#[derive(Debug)]
pub struct ResourceSpec {
    /// `uri = "..."`.
    pub uri: &'static str,
    /// `name = "..."`, else the method name.
    pub name: &'static str,
    /// `title = "..."`.
    pub title: Option<&'static str>,
    /// `description = "..."` or the doc comment.
    pub description: Option<&'static str>,
    /// `mime_type = "..."`.
    pub mime_type: Option<&'static str>,
    /// `subscribe`: clients may subscribe to its updates.
    pub subscribe: bool,
    /// `#[paid(...)]`: the pricing of reading it.
    pub paid: Option<&'static Pricing>,
}

impl ResourceSpec {
    /// The values of every option not written in `#[resource(...)]`.
    pub const DEFAULT: ResourceSpec = ResourceSpec {
        uri: "",
        name: "",
        title: None,
        description: None,
        mime_type: None,
        subscribe: false,
        paid: None,
    };

    /// The resource as payments sees it, when it is paid.
    pub fn paid_tool(&self) -> Option<PaidTool> {
        paid(self.uri, self.description, self.paid)
    }

    pub(crate) fn to_resource(&self) -> Resource {
        let mut resource = Resource::new(self.uri, self.name);
        resource.title = self.title.map(str::to_owned);
        resource.description = self.description.map(str::to_owned);
        resource.mime_type = self.mime_type.map(str::to_owned);
        resource
    }
}

/// A family of resources, as declared by `#[resource(uri_template = "...")]`.
#[derive(Debug)]
pub struct ResourceTemplateSpec {
    /// `uri_template = "..."` (RFC 6570 `{name}` and `{+name}` variables).
    pub uri_template: &'static str,
    /// `name = "..."`, else the method name.
    pub name: &'static str,
    /// `title = "..."`.
    pub title: Option<&'static str>,
    /// `description = "..."` or the doc comment.
    pub description: Option<&'static str>,
    /// `mime_type = "..."`.
    pub mime_type: Option<&'static str>,
    /// `subscribe`: clients may subscribe to updates of its resources.
    pub subscribe: bool,
    /// `#[paid(...)]`: the pricing of reading one of its resources.
    pub paid: Option<&'static Pricing>,
}

impl ResourceTemplateSpec {
    /// The values of every option not written in `#[resource(...)]`.
    pub const DEFAULT: ResourceTemplateSpec = ResourceTemplateSpec {
        uri_template: "",
        name: "",
        title: None,
        description: None,
        mime_type: None,
        subscribe: false,
        paid: None,
    };

    /// The template as payments sees it, when reading its resources is paid (one pricing for
    /// all of them, labelled by the template).
    pub fn paid_tool(&self) -> Option<PaidTool> {
        paid(self.uri_template, self.description, self.paid)
    }

    pub(crate) fn to_template(&self) -> ResourceTemplate {
        let mut template = ResourceTemplate::new(self.uri_template, self.name);
        template.title = self.title.map(str::to_owned);
        template.description = self.description.map(str::to_owned);
        template.mime_type = self.mime_type.map(str::to_owned);
        template
    }
}

fn paid(
    uri: &'static str,
    description: Option<&'static str>,
    pricing: Option<&'static Pricing>,
) -> Option<PaidTool> {
    Some(PaidTool {
        kind: PaidKind::Resource,
        name: uri,
        description,
        pricing: pricing?,
    })
}
