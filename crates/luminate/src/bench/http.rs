//! The benchmark's HTTP client: blocking `ureq` agents (one per connection thread, so each keeps its own
//! keep-alive connection) and the exchanges it needs, a POST of bytes and a GET, answered as
//! (status, body text), and a POST answered as (status, body bytes). Knows nothing of what the bodies mean.

use std::time::Duration;

use super::BenchError;

/// Longest exchange: a 10 000-point write under fsync or a query at its 30 s maximum both fit.
const TIMEOUT: Duration = Duration::from_secs(120);
/// Largest answer read: a full range answer is about 2 MB; anything far bigger is a bug.
const MAX_ANSWER_BYTES: u64 = 64 << 20;

/// A fresh agent: statuses are answers, not errors, so a non-200 can be reported with its body.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(TIMEOUT))
        .build()
        .into()
}

/// POSTs `body` with the given headers.
pub fn post(
    agent: &ureq::Agent,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, String), BenchError> {
    let mut request = agent.post(url);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    answer(url, request.send(body))
}

/// POSTs `body` and reads the answer as bytes (a protobuf answer need not be UTF-8).
pub fn post_for_bytes(
    agent: &ureq::Agent,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, Vec<u8>), BenchError> {
    let mut request = agent.post(url);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let failed = |e: ureq::Error| BenchError::Http {
        url: url.to_owned(),
        detail: e.to_string(),
    };
    let mut response = request.send(body).map_err(failed)?;
    let status = response.status().as_u16();
    let bytes = response
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER_BYTES)
        .read_to_vec()
        .map_err(failed)?;
    Ok((status, bytes))
}

/// GETs `url`.
pub fn get(agent: &ureq::Agent, url: &str) -> Result<(u16, String), BenchError> {
    answer(url, agent.get(url).call())
}

fn answer(
    url: &str,
    response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<(u16, String), BenchError> {
    let failed = |e: ureq::Error| BenchError::Http {
        url: url.to_owned(),
        detail: e.to_string(),
    };
    let mut response = response.map_err(failed)?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER_BYTES)
        .read_to_string()
        .map_err(failed)?;
    Ok((status, text))
}
