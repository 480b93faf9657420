//! Reports over projections of ticketing, routing and feedback events, as JSON or as CSV files.

use crate::{
    AppState,
    auth::Caller,
    dto::{self, ReportKind, ReportQuery},
    error::{ApiError, ErrorBody, QueryParams},
};
use axum::{
    Extension, Json,
    extract::{Path, State},
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
};

/// A report over a period, grouped and filtered. `kind` is volume, performance, backlog,
/// satisfaction, agent-scorecard or trends. With `format=csv` or `Accept: text/csv` the report
/// comes as a CSV file.
#[utoipa::path(get, path = "/v1/insights/reports/{kind}", tag = "insights", params(ReportQuery),
    responses((status = 200, content((dto::Report = "application/json"), (String = "text/csv")),
        headers(("content-disposition" = String, description = "CSV only: `attachment; filename=\"...\"`"))),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn report(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    QueryParams(mut query): QueryParams<ReportQuery>,
) -> Result<Response, ApiError> {
    let csv = wants_csv(query.format.take(), &headers)?;
    let request = caller.request(query.into_proto(ReportKind::from_path(&kind)?)?);
    if !csv {
        let report = state.insights.clone().get_report(request).await?.into_inner();
        return Ok(Json(dto::Report::from(report)).into_response());
    }
    let export = state.insights.clone().export_report(request).await?.into_inner();
    let disposition = format!("attachment; filename=\"{}\"", file_name(&export.filename));
    let headers =
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()), (header::CONTENT_DISPOSITION, disposition)];
    Ok((headers, export.content).into_response())
}

/// Whether the caller asked for CSV: by `format`, else by `Accept`.
fn wants_csv(format: Option<String>, headers: &HeaderMap) -> Result<bool, ApiError> {
    match format.as_deref().map(str::trim) {
        Some("csv") => Ok(true),
        Some("json") => Ok(false),
        Some(_) => Err(ApiError::field("format", "json or csv")),
        None => Ok(headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(|media| media.split(';').next().is_some_and(|kind| kind.trim().eq_ignore_ascii_case("text/csv")))),
    }
}

/// The export's file name as the quoted `filename` can carry it: anything but letters, digits,
/// `.`, `-` and `_` becomes `_`, so that no name ends the quotes or the header.
fn file_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use axum::{extract::Query, http::StatusCode};
    use helpdesk_proto::feedback::v1 as proto;
    use helpdesk_runtime::time::timestamp_to_micros;

    use super::*;

    /// The request a report path and query make, or the status and field of the refusal.
    async fn parse(kind: &str, query: &str) -> Result<proto::ReportRequest, (StatusCode, String)> {
        let uri: axum::http::Uri = format!("/v1/insights/reports/{kind}?{query}").parse().expect("uri");
        let Query(query) = Query::<ReportQuery>::try_from_uri(&uri).expect("query");
        let refused = match ReportKind::from_path(kind).and_then(|kind| query.into_proto(kind)) {
            Ok(request) => return Ok(request),
            Err(error) => error.into_response(),
        };
        let status = refused.status();
        let body = axum::body::to_bytes(refused.into_body(), 1 << 20).await.expect("body");
        let body: serde_json::Value = serde_json::from_slice(&body).expect("json");
        Err((status, body["error"]["fields"][0]["field"].as_str().unwrap_or_default().to_owned()))
    }

    #[tokio::test]
    async fn a_report_with_an_unknown_group_by_is_refused_naming_group_by() {
        let refused = parse("volume", "group_by=fortnight").await;

        assert_eq!(refused.expect_err("refused"), (StatusCode::BAD_REQUEST, "group_by".to_owned()));
    }

    #[tokio::test]
    async fn unknown_kinds_and_channels_and_malformed_times_are_refused_naming_the_field() {
        for (kind, query, field) in [
            ("agent_scorecard", "", "kind"),
            ("revenue", "", "kind"),
            ("volume", "channel=fax", "channel"),
            ("volume", "from=yesterday", "from"),
            ("volume", "to=2026-13-01T00:00:00Z", "to"),
        ] {
            let refused = parse(kind, query).await;

            assert_eq!(refused.expect_err(query), (StatusCode::BAD_REQUEST, field.to_owned()), "{kind}?{query}");
        }
    }

    #[tokio::test]
    async fn a_report_covers_the_30_days_up_to_to_unless_from_is_given() {
        let request =
            parse("agent-scorecard", "to=2026-03-31T00:00:00Z&group_by=hour_of_day&channel=chat").await.expect("valid");
        let days = |request: &proto::ReportRequest| {
            let micros = |time: &Option<_>| timestamp_to_micros(time.as_ref().expect("time"));
            (micros(&request.to) - micros(&request.from)) / 86_400_000_000
        };

        assert_eq!(request.kind, proto::ReportKind::AgentScorecard as i32);
        assert_eq!(request.group_by, proto::GroupBy::HourOfDay as i32);
        assert_eq!(days(&request), 30);
        assert_eq!(days(&parse("trends", "").await.expect("valid")), 30);
        assert_eq!(
            days(&parse("trends", "from=2026-03-24T00:00:00Z&to=2026-03-31T00:00:00Z").await.expect("valid")),
            7
        );
    }

    #[test]
    fn csv_is_asked_for_by_format_or_by_accept() {
        let mut accept_csv = HeaderMap::new();
        accept_csv.insert(header::ACCEPT, "application/json;q=0.5, text/csv".parse().expect("header value"));

        assert!(wants_csv(Some("csv".to_owned()), &HeaderMap::new()).expect("valid"));
        assert!(wants_csv(None, &accept_csv).expect("valid"));
        assert!(!wants_csv(Some("json".to_owned()), &accept_csv).expect("valid"));
        assert!(!wants_csv(None, &HeaderMap::new()).expect("valid"));
        assert!(wants_csv(Some("xml".to_owned()), &HeaderMap::new()).is_err());
    }

    #[test]
    fn file_names_cannot_break_out_of_the_header() {
        assert_eq!(file_name("volume-2026-03.csv"), "volume-2026-03.csv");
        assert_eq!(file_name("a\"; evil=\r\n.csv"), "a___evil___.csv");
    }
}
