//! What a server serves besides tools, built once per server type from its specs: the rmcp
//! lists of prompts, resources and resource templates, the parsed URI templates that resolve a
//! requested URI, and the server's resource subscriptions. One [`Catalog`] per type, for the
//! life of the process (a handful of small values, built on first use).

use std::{
    any::TypeId,
    collections::HashMap,
    sync::{OnceLock, RwLock},
};

use rmcp::model::{Prompt, Resource, ResourceTemplate};

use super::{Server, subscriptions::Subscriptions};
use crate::{
    Error,
    spec::{CompletionRef, ResourceSpec, ResourceTemplateSpec},
    uri_template::{UriTemplate, Variables},
};

/// The prompts, resources and subscriptions of one server type.
pub(crate) struct Catalog {
    pub prompts: Vec<Prompt>,
    pub resources: Vec<Resource>,
    pub templates: Vec<ResourceTemplate>,
    fixed: &'static [ResourceSpec],
    /// The templates that parsed (the others are logged once and never match).
    parsed: Vec<(&'static ResourceTemplateSpec, UriTemplate)>,
    pub subscriptions: Subscriptions,
}

/// A requested URI, resolved.
pub(crate) enum Found {
    /// One of the fixed resources.
    Fixed(&'static ResourceSpec),
    /// A resource of a template, with the values of its variables.
    Template(&'static ResourceTemplateSpec, Variables),
}

impl Catalog {
    /// The catalog of `S`, built on first use.
    pub(crate) fn of<S: Server>() -> &'static Catalog {
        static CATALOGS: OnceLock<RwLock<HashMap<TypeId, &'static Catalog>>> = OnceLock::new();
        let catalogs = CATALOGS.get_or_init(RwLock::default);
        let id = TypeId::of::<S>();
        if let Some(catalog) = catalogs
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&id)
        {
            return catalog;
        }
        let mut catalogs = catalogs
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        catalogs
            .entry(id)
            .or_insert_with(|| Box::leak(Box::new(Catalog::build::<S>())))
    }

    fn build<S: Server>() -> Self {
        let parsed = S::RESOURCE_TEMPLATES
            .iter()
            .filter_map(|spec| match UriTemplate::parse(spec.uri_template) {
                Ok(template) => Some((spec, template)),
                Err(error) => {
                    tracing::error!("resource template {error}; it is not served");
                    None
                }
            })
            .collect();
        Catalog {
            prompts: S::PROMPTS.iter().map(|spec| spec.to_prompt()).collect(),
            resources: S::RESOURCES.iter().map(ResourceSpec::to_resource).collect(),
            templates: S::RESOURCE_TEMPLATES
                .iter()
                .map(ResourceTemplateSpec::to_template)
                .collect(),
            fixed: S::RESOURCES,
            parsed,
            subscriptions: Subscriptions::default(),
        }
    }

    /// The resource `uri` is: a fixed one, else the first template (in declaration order) it
    /// matches.
    pub(crate) fn find(&self, uri: &str) -> Option<Found> {
        if let Some(spec) = self.fixed.iter().find(|spec| spec.uri == uri) {
            return Some(Found::Fixed(spec));
        }
        self.parsed.iter().find_map(|(spec, template)| {
            template
                .matches(uri)
                .map(|variables| Found::Template(spec, variables))
        })
    }

    /// The variables of the template `uri_template`, when the server has it.
    pub(crate) fn template_variables(
        &self,
        uri_template: &str,
    ) -> Option<impl Iterator<Item = &str>> {
        self.parsed
            .iter()
            .find(|(spec, _)| spec.uri_template == uri_template)
            .map(|(_, template)| template.variables())
    }

    /// The names of the arguments of the prompt `name`, when the server has it.
    pub(crate) fn prompt_arguments(&self, name: &str) -> Option<Vec<&str>> {
        self.prompts
            .iter()
            .find(|prompt| prompt.name == name)
            .map(|prompt| {
                prompt
                    .arguments
                    .iter()
                    .flatten()
                    .map(|argument| argument.name.as_str())
                    .collect()
            })
    }

    /// The argument names `target` takes (a prompt's arguments, a template's variables), when
    /// the server has it.
    pub(crate) fn arguments_of(&self, target: CompletionRef<'_>) -> Option<Vec<&str>> {
        match target {
            CompletionRef::Prompt(name) => self.prompt_arguments(name),
            CompletionRef::Resource(template) => {
                self.template_variables(template).map(Iterator::collect)
            }
        }
    }
}

/// Checks that every completion of `S` completes an argument its prompt or template has (the
/// macro checks templates and prompt names; a prompt's arguments are known only from its
/// arguments type's schema, here).
pub fn check_completions<S: Server>() -> Result<(), Error> {
    let catalog = Catalog::of::<S>();
    for spec in S::COMPLETIONS {
        let arguments = catalog.arguments_of(spec.target).unwrap_or_default();
        if arguments.contains(&spec.argument) {
            continue;
        }
        let (CompletionRef::Prompt(prompt) | CompletionRef::Resource(prompt)) = spec.target;
        let listed: Vec<String> = arguments.iter().map(|name| format!("`{name}`")).collect();
        return Err(Error::UnknownCompletionArgument {
            prompt: prompt.to_owned(),
            argument: spec.argument.to_owned(),
            arguments: if listed.is_empty() {
                "none".to_owned()
            } else {
                listed.join(", ")
            },
        });
    }
    Ok(())
}
