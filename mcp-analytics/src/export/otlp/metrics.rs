//! The `mcp.server.operation.duration` histogram (seconds, the conventions' bucket boundaries,
//! cumulative temporality), aggregated per server and attribute set. Attributes never include
//! session, request or user ids; their values are [`ClientText`] (at most
//! [`crate::MAX_CLIENT_TEXT_CHARS`] characters); at most [`MAX_SERIES`] attribute sets per server
//! are kept, the rest fold into one `otel.metric.overflow=true` series (as OpenTelemetry SDKs do).

use std::collections::{BTreeMap, HashMap};

use opentelemetry_proto::tonic::{
    collector::metrics::v1::ExportMetricsServiceRequest,
    common::v1::{AnyValue, KeyValue, any_value::Value},
    metrics::v1::{
        AggregationTemporality, Histogram, HistogramDataPoint, Metric, ResourceMetrics,
        ScopeMetrics, metric::Data,
    },
};

use super::{
    resource::{Resources, scope},
    semconv::{self, string},
};
use crate::{ClientText, RequestEvent, ToolCallEvent};

/// The metric's name, unit and description from the conventions.
pub(super) const NAME: &str = "mcp.server.operation.duration";
pub(super) const UNIT: &str = "s";
const DESCRIPTION: &str = "The duration of the MCP request or notification as observed on the \
     receiver from the time it was received until the result or ack is sent.";
/// The conventions' explicit bucket boundaries, in seconds.
pub(super) const BOUNDARIES: [f64; 14] = [
    0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];
/// The most attribute sets kept per server (the OpenTelemetry SDK default cardinality limit);
/// unknown tool names are chosen by clients, so this bounds memory.
pub(super) const MAX_SERIES: usize = 2000;
const OVERFLOW: &str = "otel.metric.overflow";

/// `(server name, server version)`: one resource.
type ServerKey = (String, String);
/// The attribute set of one series; `None` is the overflow series.
type Attributes = Option<Vec<(String, String)>>;

/// Cumulative duration histograms since the exporter started.
pub(super) struct DurationHistogram {
    start_ns: u64,
    servers: HashMap<ServerKey, HashMap<Attributes, Series>>,
}

#[derive(Clone)]
struct Series {
    buckets: [u64; BOUNDARIES.len() + 1],
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Default for Series {
    fn default() -> Self {
        Self {
            buckets: [0; BOUNDARIES.len() + 1],
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl Series {
    fn record(&mut self, seconds: f64) {
        // Buckets are upper-inclusive: (bound[i-1], bound[i]].
        let bucket = BOUNDARIES.partition_point(|bound| *bound < seconds);
        self.buckets[bucket] += 1;
        self.count += 1;
        self.sum += seconds;
        self.min = self.min.min(seconds);
        self.max = self.max.max(seconds);
    }
}

impl DurationHistogram {
    /// Empty histograms whose cumulative start time is `start_ns`.
    pub(super) fn new(start_ns: u64) -> Self {
        Self {
            start_ns,
            servers: HashMap::new(),
        }
    }

    /// Adds one call.
    pub(super) fn record(&mut self, event: &ToolCallEvent) {
        let mut attributes = Vec::with_capacity(8);
        semconv::operation_attributes(event, &mut attributes);
        self.add(
            &event.server_name,
            &event.server_version,
            attributes,
            event.duration_us,
        );
    }

    /// Adds one request other than `tools/call`.
    pub(super) fn record_request(&mut self, request: &RequestEvent) {
        let mut attributes = Vec::with_capacity(8);
        semconv::request_attributes(request, &mut attributes);
        self.add(
            &request.server_name,
            &request.server_version,
            attributes,
            request.duration_us,
        );
    }

    fn add(
        &mut self,
        server_name: &str,
        server_version: &str,
        attributes: Vec<KeyValue>,
        duration_us: u64,
    ) {
        let attributes: Vec<(String, String)> = attributes
            .into_iter()
            .filter_map(|attribute| match attribute.value?.value? {
                Value::StringValue(text) => {
                    Some((attribute.key, ClientText::from_string(text).into_string()))
                }
                _ => None,
            })
            .collect();
        let server = (
            ClientText::new(server_name).into_string(),
            ClientText::new(server_version).into_string(),
        );
        let series = self.servers.entry(server).or_default();
        let key = Some(attributes);
        let key = if series.len() < MAX_SERIES || series.contains_key(&key) {
            key
        } else {
            None
        };
        series
            .entry(key)
            .or_default()
            .record(duration_us as f64 / 1e6);
    }

    /// The export request with every series as of `now_ns`; `None` before the first call.
    pub(super) fn request(
        &self,
        resources: &Resources,
        now_ns: u64,
    ) -> Option<ExportMetricsServiceRequest> {
        if self.servers.is_empty() {
            return None;
        }
        let ordered: BTreeMap<&ServerKey, &HashMap<Attributes, Series>> =
            self.servers.iter().collect();
        let resource_metrics = ordered
            .into_iter()
            .map(|((server, version), series)| ResourceMetrics {
                resource: Some(resources.build(server, version)),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(scope()),
                    metrics: vec![self.metric(series, now_ns)],
                    ..ScopeMetrics::default()
                }],
                ..ResourceMetrics::default()
            })
            .collect();
        Some(ExportMetricsServiceRequest { resource_metrics })
    }

    fn metric(&self, series: &HashMap<Attributes, Series>, now_ns: u64) -> Metric {
        let mut points: Vec<(&Attributes, &Series)> = series.iter().collect();
        points.sort_by(|a, b| a.0.cmp(b.0));
        let data_points = points
            .into_iter()
            .map(|(attributes, series)| HistogramDataPoint {
                attributes: match attributes {
                    Some(pairs) => pairs
                        .iter()
                        .map(|(key, value)| string(key, value))
                        .collect(),
                    None => vec![KeyValue {
                        key: OVERFLOW.into(),
                        value: Some(AnyValue {
                            value: Some(Value::BoolValue(true)),
                        }),
                        ..KeyValue::default()
                    }],
                },
                start_time_unix_nano: self.start_ns,
                time_unix_nano: now_ns,
                count: series.count,
                sum: Some(series.sum),
                bucket_counts: series.buckets.to_vec(),
                explicit_bounds: BOUNDARIES.to_vec(),
                min: Some(series.min),
                max: Some(series.max),
                ..HistogramDataPoint::default()
            })
            .collect();
        Metric {
            name: NAME.into(),
            description: DESCRIPTION.into(),
            unit: UNIT.into(),
            data: Some(Data::Histogram(Histogram {
                data_points,
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
            })),
            ..Metric::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Status, export::otlp::semconv::tests::event};

    fn point_attributes(point: &HistogramDataPoint) -> Vec<(String, String)> {
        point
            .attributes
            .iter()
            .map(|attribute| {
                let value = match attribute.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(Value::StringValue(text)) => text.clone(),
                    Some(Value::BoolValue(flag)) => flag.to_string(),
                    _ => String::new(),
                };
                (attribute.key.clone(), value)
            })
            .collect()
    }

    fn histogram_of(request: &ExportMetricsServiceRequest) -> &Histogram {
        let metric = &request.resource_metrics[0].scope_metrics[0].metrics[0];
        assert_eq!(metric.name, "mcp.server.operation.duration");
        assert_eq!(metric.unit, "s");
        match metric.data.as_ref().unwrap() {
            Data::Histogram(histogram) => histogram,
            _ => panic!("a histogram"),
        }
    }

    #[test]
    fn buckets_are_upper_inclusive_and_cumulative() {
        let resources = Resources::new(None, Vec::new());
        let mut durations = DurationHistogram::new(5);
        assert!(durations.request(&resources, 6).is_none());
        for duration_us in [10_000, 10_001, 1_000, 400_000_000] {
            let mut call = event(Status::Ok, None);
            call.duration_us = duration_us;
            durations.record(&call);
        }
        let request = durations.request(&resources, 10).unwrap();
        let histogram = histogram_of(&request);
        assert_eq!(
            histogram.aggregation_temporality,
            AggregationTemporality::Cumulative as i32
        );
        let point = &histogram.data_points[0];
        assert_eq!(point.explicit_bounds, BOUNDARIES.to_vec());
        assert_eq!(point.bucket_counts.len(), 15);
        assert_eq!(point.bucket_counts[0], 2, "1 ms and exactly 10 ms");
        assert_eq!(point.bucket_counts[1], 1, "10.001 ms");
        assert_eq!(point.bucket_counts[14], 1, "400 s");
        assert_eq!(point.count, 4);
        assert_eq!((point.start_time_unix_nano, point.time_unix_nano), (5, 10));
        assert_eq!(point.min, Some(0.001));
        assert_eq!(point.max, Some(400.0));
        let mut call = event(Status::Ok, None);
        call.duration_us = 1;
        durations.record(&call);
        let again = durations.request(&resources, 20).unwrap();
        assert_eq!(histogram_of(&again).data_points[0].count, 5, "cumulative");
    }

    #[test]
    fn attributes_have_no_ids_and_errors_split_series() {
        let resources = Resources::new(None, Vec::new());
        let mut durations = DurationHistogram::new(0);
        let mut ok = event(Status::Ok, None);
        ok.session_id = Some("s".into());
        ok.user_id = Some("u".into());
        durations.record(&ok);
        durations.record(&event(Status::ProtocolError, Some("-32603")));
        let request = durations.request(&resources, 1).unwrap();
        let points = &histogram_of(&request).data_points;
        assert_eq!(points.len(), 2);
        let all: Vec<Vec<(String, String)>> = points.iter().map(point_attributes).collect();
        let keys: Vec<&str> = all.iter().flatten().map(|(key, _)| key.as_str()).collect();
        for forbidden in ["mcp.session.id", "jsonrpc.request.id", "user.id"] {
            assert!(!keys.contains(&forbidden), "{forbidden}");
        }
        assert!(
            all.iter()
                .any(|set| set.contains(&("error.type".into(), "-32603".into())))
        );
    }

    #[test]
    fn too_many_attribute_sets_fold_into_overflow() {
        let resources = Resources::new(None, Vec::new());
        let mut durations = DurationHistogram::new(0);
        for index in 0..MAX_SERIES + 10 {
            let mut call = event(Status::UnknownTool, Some("unknown_tool"));
            call.tool = format!("random-{index}");
            durations.record(&call);
        }
        let request = durations.request(&resources, 1).unwrap();
        let points = &histogram_of(&request).data_points;
        assert_eq!(points.len(), MAX_SERIES + 1);
        let overflow = points
            .iter()
            .find(|point| {
                point_attributes(point) == [("otel.metric.overflow".into(), "true".into())]
            })
            .unwrap();
        assert_eq!(overflow.count, 10);
    }

    #[test]
    fn attribute_values_kept_in_memory_are_capped() {
        let resources = Resources::new(None, Vec::new());
        let mut durations = DurationHistogram::new(0);
        let mut call = event(Status::UnknownTool, Some("unknown_tool"));
        call.tool = format!("\u{1b}[2J{}", "t".repeat(4 * 1024 * 1024));
        call.protocol_version = Some("v".repeat(100_000));
        durations.record(&call);
        let request = durations.request(&resources, 1).unwrap();
        for (key, value) in point_attributes(&histogram_of(&request).data_points[0]) {
            assert!(
                value.chars().count() <= crate::MAX_CLIENT_TEXT_CHARS && !value.contains('\u{1b}'),
                "`{key}` keeps {} characters",
                value.len()
            );
        }
    }
}
