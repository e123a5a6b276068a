//! Resources: the bodies of `resources/list`, `resources/templates/list`, `resources/read`,
//! `resources/subscribe` and `resources/unsubscribe`, one read on its way to a `#[resource]`
//! method ([`ResourceCall`]), and what such a method may return ([`IntoReadResourceResult`]).

use std::{fmt::Display, future::Future, str::FromStr};

use base64::Engine;
use rmcp::{
    ErrorData, Json,
    model::{
        CacheScope, ListResourceTemplatesResult, ListResourcesResult, ReadResourceRequestParams,
        ReadResourceResponse, ReadResourceResult, ResourceContents, SubscribeRequestParams,
        UnsubscribeRequestParams,
    },
};
use serde::Serialize;

use super::{
    RequestContext, Server,
    catalog::{Catalog, Found},
    caught,
    lists::{is_modern, listing},
    observe::{Method, observed},
    paid::{Gated, gated},
};
use crate::{CallContext, ClientText, uri_template::Variables};

/// `ServerHandler::list_resources`: every resource at a fixed URI.
pub async fn list_resources<S: Server>(
    server: &S,
    context: &RequestContext,
) -> Result<ListResourcesResult, ErrorData> {
    observed(server, Method::ResourcesList, None, context, async {
        let resources = Catalog::of::<S>().resources.clone();
        Ok(listing(
            ListResourcesResult::with_all_items(resources),
            context,
        ))
    })
    .await
}

/// `ServerHandler::list_resource_templates`: every resource template.
pub async fn list_resource_templates<S: Server>(
    server: &S,
    context: &RequestContext,
) -> Result<ListResourceTemplatesResult, ErrorData> {
    observed(
        server,
        Method::ResourceTemplatesList,
        None,
        context,
        async {
            let templates = Catalog::of::<S>().templates.clone();
            Ok(listing(
                ListResourceTemplatesResult::with_all_items(templates),
                context,
            ))
        },
    )
    .await
}

/// `ServerHandler::read_resource`: reads the resource the URI names — a fixed one, else the
/// first template it matches — behind the payment gate when it is paid.
pub async fn read_resource<S: Server>(
    server: &S,
    request: ReadResourceRequestParams,
    context: RequestContext,
) -> Result<ReadResourceResponse, ErrorData> {
    let uri = request.uri;
    let observing = context.clone();
    observed(
        server,
        Method::ResourcesRead,
        Some(&uri),
        &observing,
        async {
            let (resource, mime_type, paid, variables) = match Catalog::of::<S>().find(&uri) {
                None => return Err(not_found(&uri)),
                Some(Found::Fixed(spec)) => (
                    spec.uri,
                    spec.mime_type,
                    spec.paid_tool(),
                    Variables::default(),
                ),
                Some(Found::Template(spec, variables)) => (
                    spec.uri_template,
                    spec.mime_type,
                    spec.paid_tool(),
                    variables,
                ),
            };
            let modern = is_modern(&context);
            let answer = gated(server, paid, context, |call_context| {
                server.dispatch_resource(ResourceCall {
                    uri: &uri,
                    resource,
                    mime_type,
                    variables,
                    context: call_context,
                })
            })
            .await?;
            Ok(match answer {
                Gated::Ran(mut result) => {
                    if modern {
                        // Contents may be the caller's own: only their client may cache them.
                        result.ttl_ms.get_or_insert(0);
                        result.cache_scope.get_or_insert(CacheScope::Private);
                    }
                    ReadResourceResponse::Complete(result)
                }
                Gated::InputRequired(asked) => ReadResourceResponse::InputRequired(asked),
            })
        },
    )
    .await
}

/// `ServerHandler::subscribe`: the connection is told when the resource changes (see
/// [`resource_updated`](super::resource_updated)). Only resources marked `subscribe` take
/// subscriptions.
pub async fn subscribe<S: Server>(
    server: &S,
    request: SubscribeRequestParams,
    context: RequestContext,
) -> Result<(), ErrorData> {
    let uri = request.uri;
    observed(
        server,
        Method::ResourcesSubscribe,
        Some(&uri),
        &context,
        async {
            let catalog = Catalog::of::<S>();
            let subscribable = match catalog.find(&uri) {
                None => return Err(not_found(&uri)),
                Some(Found::Fixed(spec)) => spec.subscribe,
                Some(Found::Template(spec, _)) => spec.subscribe,
            };
            if !subscribable {
                return Err(ErrorData::invalid_params(
                    format!("resource {} takes no subscriptions", ClientText::new(&uri)),
                    None,
                ));
            }
            catalog.subscriptions.subscribe(&context, &uri)
        },
    )
    .await
}

/// `ServerHandler::unsubscribe`: ends the connection's subscription, if it had one.
pub async fn unsubscribe<S: Server>(
    server: &S,
    request: UnsubscribeRequestParams,
    context: RequestContext,
) -> Result<(), ErrorData> {
    let uri = request.uri;
    observed(
        server,
        Method::ResourcesUnsubscribe,
        Some(&uri),
        &context,
        async {
            Catalog::of::<S>().subscriptions.unsubscribe(&context, &uri);
            Ok(())
        },
    )
    .await
}

fn not_found(uri: &str) -> ErrorData {
    ErrorData::resource_not_found(
        format!("resource not found: {}", ClientText::new(uri)),
        None,
    )
}

/// A `resources/read` on its way to a resource method.
pub struct ResourceCall<'a> {
    uri: &'a str,
    resource: &'static str,
    mime_type: Option<&'static str>,
    variables: Variables,
    context: CallContext,
}

impl ResourceCall<'_> {
    /// The resource read, as declared: its fixed URI or its URI template.
    pub fn resource(&self) -> &'static str {
        self.resource
    }

    /// The value of the template variable `name`, parsed into `T`; a value that does not parse
    /// is an invalid params error.
    pub fn variable<T>(&self, name: &str) -> Result<T, ErrorData>
    where
        T: FromStr,
        T::Err: Display,
    {
        let Some(value) = self.variables.get(name) else {
            return Err(ErrorData::internal_error(
                format!("`{}` has no variable `{name}`", self.resource),
                None,
            ));
        };
        value.parse().map_err(|error| {
            ErrorData::invalid_params(
                format!("invalid `{name}` in {}: {error}", ClientText::new(self.uri)),
                None,
            )
        })
    }

    /// Runs `read` and turns what it returns into the contents of the requested URI.
    pub async fn run<F, Fut, R>(self, read: F) -> Result<ReadResourceResult, ErrorData>
    where
        F: FnOnce(CallContext) -> Fut,
        Fut: Future<Output = R>,
        R: IntoReadResourceResult,
    {
        let reading = Reading {
            uri: self.uri,
            mime_type: self.mime_type,
        };
        caught(read(self.context))
            .await?
            .into_read_resource_result(&reading)
    }

    /// The answer for a resource the server does not serve.
    pub fn not_found(self) -> Result<ReadResourceResult, ErrorData> {
        Err(not_found(self.uri))
    }
}

/// The resource being read: what its contents are labelled with.
#[derive(Debug, Clone, Copy)]
pub struct Reading<'a> {
    uri: &'a str,
    mime_type: Option<&'a str>,
}

impl<'a> Reading<'a> {
    /// The requested URI.
    pub fn uri(&self) -> &'a str {
        self.uri
    }

    /// The declared `mime_type`, if any.
    pub fn mime_type(&self) -> Option<&'a str> {
        self.mime_type
    }

    fn text(&self, text: String, default_type: &str) -> ResourceContents {
        ResourceContents::text(text, self.uri)
            .with_mime_type(self.mime_type.unwrap_or(default_type))
    }
}

/// What a `#[resource]` method may return: text (`String`, labelled `text/plain` unless the
/// resource declares a `mime_type`), bytes (`Vec<u8>`, sent as a base64 blob,
/// `application/octet-stream` by default), `Json<T>` (`application/json`), `ResourceContents`,
/// a `Vec` of them, a whole `ReadResourceResult`, or `Result<_, ErrorData>` of one of them.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not resource contents",
    note = "a `#[resource]` method returns `String`, `Vec<u8>`, `Json<T>`, `ResourceContents`, `Vec<ResourceContents>`, `ReadResourceResult`, or `Result<_, ErrorData>` of one of them"
)]
pub trait IntoReadResourceResult {
    /// The `resources/read` result (or the JSON-RPC error) this value stands for.
    fn into_read_resource_result(
        self,
        reading: &Reading<'_>,
    ) -> Result<ReadResourceResult, ErrorData>;
}

impl IntoReadResourceResult for ReadResourceResult {
    fn into_read_resource_result(self, _: &Reading<'_>) -> Result<ReadResourceResult, ErrorData> {
        Ok(self)
    }
}

impl IntoReadResourceResult for Vec<ResourceContents> {
    fn into_read_resource_result(self, _: &Reading<'_>) -> Result<ReadResourceResult, ErrorData> {
        Ok(ReadResourceResult::new(self))
    }
}

impl IntoReadResourceResult for ResourceContents {
    fn into_read_resource_result(self, _: &Reading<'_>) -> Result<ReadResourceResult, ErrorData> {
        Ok(ReadResourceResult::new(vec![self]))
    }
}

impl IntoReadResourceResult for String {
    fn into_read_resource_result(
        self,
        reading: &Reading<'_>,
    ) -> Result<ReadResourceResult, ErrorData> {
        Ok(ReadResourceResult::new(vec![
            reading.text(self, "text/plain"),
        ]))
    }
}

impl IntoReadResourceResult for &'static str {
    fn into_read_resource_result(
        self,
        reading: &Reading<'_>,
    ) -> Result<ReadResourceResult, ErrorData> {
        self.to_owned().into_read_resource_result(reading)
    }
}

impl IntoReadResourceResult for Vec<u8> {
    fn into_read_resource_result(
        self,
        reading: &Reading<'_>,
    ) -> Result<ReadResourceResult, ErrorData> {
        let blob = base64::engine::general_purpose::STANDARD.encode(self);
        let contents = ResourceContents::blob(blob, reading.uri)
            .with_mime_type(reading.mime_type.unwrap_or("application/octet-stream"));
        Ok(ReadResourceResult::new(vec![contents]))
    }
}

impl IntoReadResourceResult for &'static [u8] {
    fn into_read_resource_result(
        self,
        reading: &Reading<'_>,
    ) -> Result<ReadResourceResult, ErrorData> {
        self.to_vec().into_read_resource_result(reading)
    }
}

impl<T: Serialize> IntoReadResourceResult for Json<T> {
    fn into_read_resource_result(
        self,
        reading: &Reading<'_>,
    ) -> Result<ReadResourceResult, ErrorData> {
        let text = serde_json::to_string(&self.0).map_err(|error| {
            ErrorData::internal_error(format!("cannot serialize the resource: {error}"), None)
        })?;
        Ok(ReadResourceResult::new(vec![
            reading.text(text, "application/json"),
        ]))
    }
}

impl<T: IntoReadResourceResult> IntoReadResourceResult for Result<T, ErrorData> {
    fn into_read_resource_result(
        self,
        reading: &Reading<'_>,
    ) -> Result<ReadResourceResult, ErrorData> {
        self?.into_read_resource_result(reading)
    }
}

/// A resource method's result, checked to be an [`IntoReadResourceResult`]: what
/// `#[mcp_server]` wraps each awaited resource method in, spanned at its return type.
pub fn resource_returns<R: IntoReadResourceResult>(value: R) -> ResourceReturned<R> {
    ResourceReturned {
        value,
        convert: R::into_read_resource_result,
    }
}

/// A result passed through [`resource_returns`]: converts like the value it holds.
pub struct ResourceReturned<R> {
    value: R,
    convert: fn(R, &Reading<'_>) -> Result<ReadResourceResult, ErrorData>,
}

#[diagnostic::do_not_recommend]
impl<R> IntoReadResourceResult for ResourceReturned<R> {
    fn into_read_resource_result(
        self,
        reading: &Reading<'_>,
    ) -> Result<ReadResourceResult, ErrorData> {
        (self.convert)(self.value, reading)
    }
}
