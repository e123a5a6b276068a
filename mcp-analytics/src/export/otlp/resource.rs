//! The OpenTelemetry resource (who emits the telemetry) per MCP server, and the instrumentation
//! scope. `service.name` is `OTEL_SERVICE_NAME`, else `service.name` from
//! `OTEL_RESOURCE_ATTRIBUTES`, else the server's own name.

use std::{collections::HashMap, sync::Arc};

use opentelemetry_proto::tonic::{common::v1::InstrumentationScope, resource::v1::Resource};

use super::semconv::string;

/// Builds (and, for spans, caches) one [`Resource`] per server name and version.
pub(super) struct Resources {
    service_name: Option<String>,
    attributes: Vec<(String, String)>,
    cache: HashMap<(String, String), Arc<Resource>>,
}

impl Resources {
    pub(super) fn new(service_name: Option<String>, attributes: Vec<(String, String)>) -> Self {
        Self {
            service_name,
            attributes,
            cache: HashMap::new(),
        }
    }

    /// The resource of `server`/`version`, shared by all its spans (batches group by pointer).
    pub(super) fn get(&mut self, server: &str, version: &str) -> Arc<Resource> {
        if let Some(resource) = self.cache.get(&(server.to_owned(), version.to_owned())) {
            return resource.clone();
        }
        let resource = Arc::new(self.build(server, version));
        self.cache
            .insert((server.to_owned(), version.to_owned()), resource.clone());
        resource
    }

    /// A fresh resource for `server`/`version`.
    pub(super) fn build(&self, server: &str, version: &str) -> Resource {
        let mut pairs: Vec<(&str, &str)> = vec![
            ("service.name", server),
            ("service.version", version),
            ("telemetry.sdk.name", "mcp-analytics"),
            ("telemetry.sdk.language", "rust"),
            ("telemetry.sdk.version", env!("CARGO_PKG_VERSION")),
        ];
        let configured = self
            .attributes
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .chain(
                self.service_name
                    .as_deref()
                    .map(|name| ("service.name", name)),
            );
        for (key, value) in configured {
            match pairs.iter_mut().find(|(existing, _)| *existing == key) {
                Some(pair) => pair.1 = value,
                None => pairs.push((key, value)),
            }
        }
        Resource {
            attributes: pairs
                .into_iter()
                .map(|(key, value)| string(key, value))
                .collect(),
            ..Resource::default()
        }
    }
}

/// This crate as the instrumentation scope.
pub(super) fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "mcp-analytics".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        ..InstrumentationScope::default()
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;

    use super::*;

    fn attribute<'a>(resource: &'a Resource, key: &str) -> Option<&'a str> {
        resource
            .attributes
            .iter()
            .find(|attribute| attribute.key == key)
            .and_then(
                |attribute| match attribute.value.as_ref()?.value.as_ref()? {
                    Value::StringValue(text) => Some(text.as_str()),
                    _ => None,
                },
            )
    }

    #[test]
    fn service_name_precedence() {
        let plain = Resources::new(None, Vec::new()).build("demo", "1.0.0");
        assert_eq!(attribute(&plain, "service.name"), Some("demo"));
        assert_eq!(attribute(&plain, "service.version"), Some("1.0.0"));
        let attributes = vec![
            ("service.name".to_owned(), "from-attributes".to_owned()),
            ("deployment.environment.name".to_owned(), "prod".to_owned()),
        ];
        let from_attributes = Resources::new(None, attributes.clone()).build("demo", "1");
        assert_eq!(
            attribute(&from_attributes, "service.name"),
            Some("from-attributes")
        );
        assert_eq!(
            attribute(&from_attributes, "deployment.environment.name"),
            Some("prod")
        );
        let named = Resources::new(Some("svc".into()), attributes).build("demo", "1");
        assert_eq!(attribute(&named, "service.name"), Some("svc"));
        let names = named
            .attributes
            .iter()
            .filter(|attribute| attribute.key == "service.name")
            .count();
        assert_eq!(names, 1);
    }

    #[test]
    fn resources_are_cached_per_server() {
        let mut resources = Resources::new(None, Vec::new());
        let a = resources.get("a", "1");
        assert!(Arc::ptr_eq(&a, &resources.get("a", "1")));
        assert!(!Arc::ptr_eq(&a, &resources.get("a", "2")));
    }
}
