//! gzip on the way out: whether a client takes it (`Accept-Encoding`), and the JSON answers of the
//! query and read routes compressed for those that do. A dashboard's answers are mostly numbers in
//! JSON (its 50 series × 300 buckets panel is 1.0 MB, 0.26 MB gzipped; all 12 panels of the speed
//! benchmark's dashboard 2.0 MB, 0.36 MB), which a browser or Grafana across a network waits for;
//! compressing at gzip's fastest level costs about 1 ms a megabyte here. Request bodies are inflated
//! by [`crate::body`].

use std::io::Write as _;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use flate2::Compression;
use flate2::write::GzEncoder;
use luminate_model::ErrorCode;

use crate::error::ApiError;

/// Answers shorter than this go as they are: a few packets either way.
pub const MIN_GZIP_BYTES: usize = 4096;
/// Longer answers are compressed on the blocking pool, not on the thread that serves connections
/// (a 10 MB answer takes about 10 ms).
const INLINE_GZIP_BYTES: usize = 256 * 1024;

/// Whether `Accept-Encoding` takes gzip: `gzip` (or `x-gzip`) listed with a weight above 0, or
/// else `*` so listed.
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    let (mut named, mut any) = (None, None);
    let codings = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','));
    for coding in codings {
        let mut parts = coding.split(';');
        let name = parts.next().unwrap_or("").trim();
        let weight = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
            named = Some(named.unwrap_or(false) || weight > 0.0);
        } else if name == "*" {
            any = Some(weight > 0.0);
        }
    }
    named.or(any).unwrap_or(false)
}

/// Middleware for routes whose answers are whole JSON bodies (never a stream: the body is read into
/// memory here): a JSON answer of at least [`MIN_GZIP_BYTES`] is sent gzipped to a client that takes
/// it, and every JSON answer says `Vary: Accept-Encoding`. Errors are JSON answers too, and short.
pub async fn gzip_answers(request: Request, next: Next) -> Response {
    let accepts = accepts_gzip(request.headers());
    let response = next.run(request).await;
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    if !json || response.headers().contains_key(header::CONTENT_ENCODING) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    parts
        .headers
        .append(header::VARY, HeaderValue::from_static("accept-encoding"));
    if !accepts {
        return Response::from_parts(parts, body);
    }
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return internal("reading the answer to compress it failed");
    };
    if bytes.len() < MIN_GZIP_BYTES {
        return Response::from_parts(parts, Body::from(bytes));
    }
    let gzipped = if bytes.len() <= INLINE_GZIP_BYTES {
        gzip(&bytes)
    } else {
        let bytes = bytes.clone();
        tokio::task::spawn_blocking(move || gzip(&bytes))
            .await
            .ok()
            .flatten()
    };
    // Writing into memory does not fail; if it ever did, the answer goes as it is.
    let Some(gzipped) = gzipped else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    parts
        .headers
        .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(gzipped))
}

/// `bytes` gzipped at the fastest level.
fn gzip(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(bytes.len() / 4), Compression::fast());
    encoder.write_all(bytes).ok()?;
    encoder.finish().ok()
}

fn internal(message: &str) -> Response {
    ApiError::new(ErrorCode::InternalError, message.to_owned()).into_response()
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use axum::Router;
    use axum::routing::get;
    use tower::ServiceExt as _;

    use super::*;

    #[test]
    fn gzip_is_taken_when_listed_with_a_weight_above_0_or_else_under_a_star() {
        let accepts = |values: &[&str]| {
            let mut headers = HeaderMap::new();
            for v in values {
                headers.append(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
            }
            accepts_gzip(&headers)
        };
        assert!(accepts(&["gzip, deflate, br, zstd"]));
        assert!(accepts(&["br;q=1.0, GZIP;q=0.5"]));
        assert!(accepts(&["identity", "x-gzip"]));
        assert!(accepts(&["*"]));
        assert!(!accepts(&[]));
        assert!(!accepts(&["identity"]));
        assert!(!accepts(&["br, zstd"]));
        assert!(!accepts(&["gzip;q=0"]));
        assert!(!accepts(&["gzip; q=0.0, *"]));
        assert!(!accepts(&["*;q=0"]));
    }

    /// A JSON array of `n` numbers, and a text of the same length.
    fn app() -> Router {
        let numbers = |n: usize| format!("[{}]", vec!["123.4"; n].join(","));
        Router::new()
            .route(
                "/json/{n}",
                get(
                    move |axum::extract::Path(n): axum::extract::Path<usize>| async move {
                        axum::Json(serde_json::from_str::<serde_json::Value>(&numbers(n)).unwrap())
                    },
                ),
            )
            .route("/text", get(|| async { "x".repeat(10_000) }))
            .layer(axum::middleware::from_fn(gzip_answers))
    }

    async fn get_with(path: &str, accept: Option<&str>) -> (HeaderMap, Vec<u8>) {
        let mut request = Request::builder().uri(path);
        if let Some(accept) = accept {
            request = request.header(header::ACCEPT_ENCODING, accept);
        }
        let response = app()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (headers, body.to_vec())
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[tokio::test]
    async fn long_json_answers_are_gzipped_for_clients_that_take_it_and_only_for_them() {
        // 20 000 numbers: 120 001 bytes, compressed inline; 100 000: past the inline bound.
        for n in [20_000, 100_000] {
            let (plain_headers, plain) = get_with(&format!("/json/{n}"), None).await;
            assert_eq!(plain.len(), 6 * n + 1);
            assert_eq!(plain_headers.get(header::CONTENT_ENCODING), None);
            assert_eq!(plain_headers[header::VARY], "accept-encoding");

            let (headers, gzipped) =
                get_with(&format!("/json/{n}"), Some("gzip, deflate, br")).await;
            assert_eq!(headers[header::CONTENT_ENCODING], "gzip");
            assert_eq!(headers[header::VARY], "accept-encoding");
            assert!(gzipped.len() < plain.len() / 20, "{} bytes", gzipped.len());
            assert_eq!(gunzip(&gzipped), plain);

            let (refused, body) = get_with(&format!("/json/{n}"), Some("gzip;q=0, br")).await;
            assert_eq!(refused.get(header::CONTENT_ENCODING), None);
            assert_eq!(body, plain);
        }
    }

    #[tokio::test]
    async fn short_answers_and_other_types_go_as_they_are() {
        // 600 numbers: 3 601 bytes, under the threshold.
        let (headers, body) = get_with("/json/600", Some("gzip")).await;
        assert_eq!(body.len(), 3_601);
        assert!(body.len() < MIN_GZIP_BYTES);
        assert_eq!(headers.get(header::CONTENT_ENCODING), None);
        assert_eq!(headers[header::VARY], "accept-encoding");
        // Not JSON: untouched, and no Vary either.
        let (headers, body) = get_with("/text", Some("gzip")).await;
        assert_eq!(body.len(), 10_000);
        assert_eq!(headers.get(header::CONTENT_ENCODING), None);
        assert_eq!(headers.get(header::VARY), None);
    }
}
