//! Bounded request bodies: read with a byte cap and a deadline, and gunzip with a cap on the inflated
//! size, so that neither a huge body nor a gzip bomb can make the server buffer more than the limit.
//!
//! An over-limit body is drained (read and discarded, up to as many bytes again, within the deadline)
//! before the 413 is sent: a client that is still uploading when the server closes the connection would
//! otherwise see a reset instead of the answer that tells it what went wrong.

use std::io::Read;
use std::pin::pin;
use std::time::Duration;

use axum::body::{Body, HttpBody};
use luminate_model::ErrorCode;
use serde_json::json;

use crate::error::ApiError;

fn too_large(limit: usize, what: &str) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("{what} exceeds the limit of {limit} bytes"),
    )
    .with_details(json!({"max_request_size_bytes": limit}))
}

/// Reads the whole body, failing with `413 PAYLOAD_TOO_LARGE` past `cap` bytes and `400` if it has not
/// arrived within `deadline` (`server.read_timeout`).
pub async fn read_capped(body: Body, cap: usize, deadline: Duration) -> Result<Vec<u8>, ApiError> {
    let hint = body.size_hint().lower();
    let read = async move {
        let mut body = pin!(body);
        // The size hint comes from Content-Length, which the client controls: never reserve past the cap.
        let mut buf = Vec::with_capacity((hint as usize).min(cap));
        let mut over_by = 0usize;
        while let Some(frame) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
            let frame = frame.map_err(|e| {
                ApiError::invalid_request(format!("cannot read the request body: {e}"))
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if over_by > 0 || buf.len() + data.len() > cap {
                over_by += data.len();
                if over_by > cap {
                    break;
                }
            } else {
                buf.extend_from_slice(&data);
            }
        }
        if over_by > 0 {
            return Err(too_large(cap, "request body"));
        }
        Ok(buf)
    };
    tokio::time::timeout(deadline, read).await.map_err(|_| {
        ApiError::invalid_request(format!(
            "request body not received within server.read_timeout of {}",
            luminate_model::time::format_duration(deadline)
        ))
    })?
}

/// Inflates a gzip body, reading at most `cap + 1` bytes of output so a bomb stops at the limit.
pub fn gunzip_capped(compressed: &[u8], cap: usize) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::with_capacity((compressed.len() * 4).min(cap));
    flate2::read::MultiGzDecoder::new(compressed)
        .take(cap as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::invalid_request(format!("invalid gzip body: {e}")))?;
    if out.len() > cap {
        return Err(too_large(cap, "decompressed request body"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn gzip_within_the_cap_inflates() {
        assert_eq!(gunzip_capped(&gzip(b"hello"), 5).unwrap(), b"hello");
    }

    #[test]
    fn gzip_bomb_stops_at_the_cap() {
        let bomb = gzip(&vec![b' '; 8 << 20]);
        assert!(bomb.len() < 64 << 10, "the bomb is small on the wire");
        let err = gunzip_capped(&bomb, 1 << 20).unwrap_err();
        assert_eq!(err.code, ErrorCode::PayloadTooLarge);
    }

    #[test]
    fn garbage_is_invalid_request() {
        assert_eq!(
            gunzip_capped(b"not gzip", 100).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
    }

    #[tokio::test]
    async fn body_cap_and_exact_fit() {
        let fits = read_capped(Body::from(vec![1u8; 10]), 10, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(fits.len(), 10);
        let err = read_capped(Body::from(vec![1u8; 11]), 10, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::PayloadTooLarge);
    }
}
