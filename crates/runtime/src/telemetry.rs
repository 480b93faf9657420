//! Tracing for every process: pretty logs on a terminal, JSON logs otherwise, and opt-in
//! OpenTelemetry export of traces and metrics, configured by the standard `OTEL_*` variables (set
//! `OTEL_EXPORTER_OTLP_ENDPOINT` to enable it). W3C `traceparent` crosses every gRPC hop.

use std::io::IsTerminal;

use opentelemetry::{KeyValue, metrics::Histogram};
use opentelemetry::{
    global,
    propagation::{Extractor, Injector},
    trace::TracerProvider as _,
};
use opentelemetry_sdk::{
    Resource, metrics::SdkMeterProvider, propagation::TraceContextPropagator, trace::SdkTracerProvider,
};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

use crate::config::{LogFormat, TelemetryConfig};

/// Flushes pending spans and metrics when dropped at the end of `main`.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
    meters: Option<SdkMeterProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("opentelemetry trace shutdown failed: {error}");
        }
        if let Some(meters) = self.meters.take()
            && let Err(error) = meters.shutdown()
        {
            eprintln!("opentelemetry metrics shutdown failed: {error}");
        }
    }
}

pub fn init(config: &TelemetryConfig, service_name: &'static str) -> TelemetryGuard {
    global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log_filter));
    let json = match config.log_format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let fmt = if json {
        tracing_subscriber::fmt::layer().json().with_writer(std::io::stderr).boxed()
    } else {
        tracing_subscriber::fmt::layer().with_writer(std::io::stderr).boxed()
    };
    let provider = otlp_provider(service_name);
    let meters = otlp_meters(service_name);
    let otel =
        provider.as_ref().map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer(service_name)));
    let result = tracing_subscriber::registry().with(filter).with(fmt).with(otel).try_init();
    if let Err(error) = result {
        eprintln!("tracing was already initialised: {error}");
    }
    TelemetryGuard { provider, meters }
}

/// Quiet test logging; `TEST_LOG=1` shows it. Safe to call from every test.
pub fn init_for_tests() {
    global::set_text_map_propagator(TraceContextPropagator::new());
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
            .with_test_writer()
            .try_init();
    }
}

fn otlp_enabled(signal_variable: &str) -> bool {
    ["OTEL_EXPORTER_OTLP_ENDPOINT", signal_variable]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()))
}

fn otlp_meters(service_name: &'static str) -> Option<SdkMeterProvider> {
    if !otlp_enabled("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") {
        return None;
    }
    let exporter = match opentelemetry_otlp::MetricExporter::builder().with_tonic().build() {
        Ok(exporter) => exporter,
        Err(error) => {
            eprintln!("opentelemetry metrics export disabled: {error}");
            return None;
        }
    };
    let meters = SdkMeterProvider::builder()
        .with_periodic_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(service_name).build())
        .build();
    global::set_meter_provider(meters.clone());
    Some(meters)
}

/// Request durations in seconds, exported as OpenTelemetry histograms (no-ops when export is off).
pub struct RequestMetrics {
    rpc: Histogram<f64>,
    http: Histogram<f64>,
}

/// The process's request metrics, created on first use against the global meter provider.
pub fn request_metrics() -> &'static RequestMetrics {
    static METRICS: std::sync::OnceLock<RequestMetrics> = std::sync::OnceLock::new();
    METRICS.get_or_init(|| {
        let meter = global::meter("helpdesk");
        RequestMetrics {
            rpc: meter.f64_histogram("rpc.server.duration").with_unit("s").build(),
            http: meter.f64_histogram("http.server.request.duration").with_unit("s").build(),
        }
    })
}

impl RequestMetrics {
    /// `method` is the gRPC path, `/package.Service/Method`.
    pub fn record_rpc(&self, method: &str, seconds: f64) {
        self.rpc.record(seconds, &[KeyValue::new("rpc.method", method.to_owned())]);
    }

    /// `route` is the matched route template, never the raw path (which would carry ids).
    pub fn record_http(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.http.record(
            seconds,
            &[
                KeyValue::new("http.request.method", method.to_owned()),
                KeyValue::new("http.route", route.to_owned()),
                KeyValue::new("http.response.status_code", i64::from(status)),
            ],
        );
    }
}

fn otlp_provider(service_name: &'static str) -> Option<SdkTracerProvider> {
    if !otlp_enabled("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        return None;
    }
    let exporter = match opentelemetry_otlp::SpanExporter::builder().with_tonic().build() {
        Ok(exporter) => exporter,
        Err(error) => {
            eprintln!("opentelemetry export disabled: {error}");
            return None;
        }
    };
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(service_name).build())
        .build();
    global::set_tracer_provider(provider.clone());
    Some(provider)
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) =
            (tonic::metadata::MetadataKey::from_bytes(key.as_bytes()), tonic::metadata::MetadataValue::try_from(value))
        {
            self.0.insert(key, value);
        }
    }
}

/// A span for an incoming request that continues the caller's trace, if any.
pub fn server_span(path: &str, headers: &http::HeaderMap) -> tracing::Span {
    let parent = global::get_text_map_propagator(|propagator| propagator.extract(&HeaderExtractor(headers)));
    let span = tracing::info_span!("grpc", rpc = %path);
    let _ = span.set_parent(parent);
    span
}

/// A span for an incoming HTTP request that continues the caller's trace, if any.
pub fn http_span(method: &http::Method, path: &str, request_id: &str, headers: &http::HeaderMap) -> tracing::Span {
    let parent = global::get_text_map_propagator(|propagator| propagator.extract(&HeaderExtractor(headers)));
    let span = tracing::info_span!("http", %method, %path, request_id);
    let _ = span.set_parent(parent);
    span
}

pub fn inject_trace_context(metadata: &mut tonic::metadata::MetadataMap) {
    let context = tracing::Span::current().context();
    global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut MetadataInjector(metadata));
    });
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[test]
    fn a_request_span_continues_the_callers_trace_and_hands_it_to_the_next_hop() {
        global::set_text_map_propagator(TraceContextPropagator::new());
        let provider = SdkTracerProvider::builder().build();
        let subscriber =
            tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut headers = http::HeaderMap::new();
        headers.insert("traceparent", http::HeaderValue::from_static(incoming));

        let outgoing = tracing::subscriber::with_default(subscriber, || {
            let span = server_span("/helpdesk.ticketing.v1.TicketService/GetTicket", &headers);
            let mut metadata = tonic::metadata::MetadataMap::new();
            span.in_scope(|| inject_trace_context(&mut metadata));
            metadata.get("traceparent").and_then(|value| value.to_str().ok()).map(str::to_owned)
        });

        let outgoing = outgoing.expect("the next hop gets a traceparent");
        let parts: Vec<&str> = outgoing.split('-').collect();
        assert_eq!(parts[1], "4bf92f3577b34da6a3ce929d0e0e4736", "same trace");
        assert_ne!(parts[2], "00f067aa0ba902b7", "a new span within it");
    }
}
