//! What redaction costs per event on the writer thread: typical arguments and results (clean, as
//! most are), a result whose text block repeats its structured JSON (`Json<T>` tools), and free
//! text with and without secrets.
//!
//! `cargo bench -p mcp-analytics --bench sanitize`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mcp_analytics::{Sanitizer, serde_json::json};

fn sanitize(c: &mut Criterion) {
    let sanitizer = Sanitizer::default();
    let params = json!({"city": "Berlin", "units": "metric", "days": 3, "query": "weather for the weekend, please"});
    let result = json!({"content": [{"type": "text", "text": "Sunny, 21°C. Light wind from the west at 12 km/h; UV index 5."}], "isError": false});
    let structured = json!({
        "content": [{"type": "text", "text": "{\"forecast\":[{\"day\":\"Mon\",\"high\":21,\"low\":12},{\"day\":\"Tue\",\"high\":19,\"low\":11}],\"station\":\"Tempelhof\"}"}],
        "structuredContent": {"forecast": [{"day": "Mon", "high": 21, "low": 12}, {"day": "Tue", "high": 19, "low": 11}], "station": "Tempelhof"},
        "isError": false
    });
    let clean_text = "upstream timed out after 30s while calling https://api.example.com/v2/forecast?city=Berlin&days=3 (attempt 2 of 3)";
    let secret_text = "request to https://api.example.com/v2/forecast?city=Berlin failed: Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlX2hlcmU rejected";

    let mut group = c.benchmark_group("sanitize");
    group.throughput(Throughput::Elements(1));
    group.bench_function("params_json", |b| {
        b.iter(|| black_box(sanitizer.json_text(black_box(&params), &[])))
    });
    group.bench_function("text_result_json", |b| {
        b.iter(|| black_box(sanitizer.json_text(black_box(&result), &[])))
    });
    group.bench_function("structured_result_json", |b| {
        b.iter(|| black_box(sanitizer.json_text(black_box(&structured), &[])))
    });
    group.bench_function("clean_error_text", |b| {
        b.iter(|| black_box(sanitizer.text(black_box(clean_text))))
    });
    group.bench_function("secret_error_text", |b| {
        b.iter(|| black_box(sanitizer.text(black_box(secret_text))))
    });
    group.finish();
}

criterion_group!(benches, sanitize);
criterion_main!(benches);
