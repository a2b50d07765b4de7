//! The HTTP exchange of the client subcommands: one blocking `ureq` agent per connection (so each
//! keeps its own keep-alive connection), the bearer token, and retries of what is worth retrying —
//! `429` and `503` after their `Retry-After` (capped), failed connections and, for writes, other `5xx`
//! after a doubling backoff — a bounded number of times. Knows nothing of what the bodies mean.

use std::time::Duration;

use super::ServerArgs;

/// Longest exchange: a 10 000-point write under fsync, or a query at its 30 s maximum.
const TIMEOUT: Duration = Duration::from_secs(120);
/// Longest silence of a streamed answer (an export): until its status, or between two reads of its
/// body. The exchange as a whole has no deadline: an export takes as long as its size.
const STREAM_STALL: Duration = Duration::from_secs(600);
/// Largest answer read (a full range answer is about 2 MB).
const MAX_ANSWER_BYTES: u64 = 64 << 20;
/// First wait of the doubling backoff when the server gives no `Retry-After`.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Longest wait between two attempts, whatever `Retry-After` says.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A server's answer.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Body text.
    pub body: String,
    /// The write route answered from its idempotency cache (`Idempotent-Replayed: true`).
    pub replayed: bool,
    retry_after: Option<Duration>,
}

impl Reply {
    /// The contract's error message (`CODE: message`), or the body as it came.
    pub fn error_message(&self) -> String {
        let parsed: Option<serde_json::Value> = serde_json::from_str(&self.body).ok();
        match parsed.as_ref().map(|b| &b["error"]) {
            Some(error) if error.is_object() => format!(
                "{} {}: {}",
                self.status,
                error["code"].as_str().unwrap_or("ERROR"),
                error["message"].as_str().unwrap_or("")
            ),
            _ => format!("{} {}", self.status, self.body.trim()),
        }
    }

    /// The contract's error code, if the body is an error.
    pub fn error_code(&self) -> Option<String> {
        let parsed: serde_json::Value = serde_json::from_str(&self.body).ok()?;
        parsed["error"]["code"].as_str().map(str::to_owned)
    }

    /// The line a body was refused at (`details.line` of a `400 INVALID_REQUEST` for malformed JSON).
    pub fn error_line(&self) -> Option<u64> {
        let parsed: serde_json::Value = serde_json::from_str(&self.body).ok()?;
        parsed["error"]["details"]["line"].as_u64()
    }

    fn is_retryable(&self, retry: Retry) -> bool {
        match retry {
            Retry::Write => self.status == 429 || self.status >= 500,
            Retry::Query => matches!(self.status, 429 | 503),
        }
    }
}

impl Reply {
    /// Reads a whole answer (at most [`MAX_ANSWER_BYTES`]).
    fn read(url: &str, mut response: ureq::http::Response<ureq::Body>) -> Result<Self, String> {
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let retry_after = header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let replayed = header("idempotent-replayed").is_some_and(|v| v == "true");
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_string()
            .map_err(|e| format!("{url}: reading the answer: {e}"))?;
        Ok(Reply {
            status,
            body,
            replayed,
            retry_after,
        })
    }
}

/// Which answers are worth another attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Writes: `429` and every `5xx` (the idempotency key makes a resend safe; a `5xx` is not
    /// remembered by the server, so the resend writes).
    Write,
    /// Queries: `429` and `503` (rate limit, memory budget, storage down) only. A `504 QUERY_TIMEOUT`
    /// would time out again, and a `500` is a defect, not a condition that passes.
    Query,
}

/// One connection to the server.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    authorization: Option<String>,
    /// Attempts per request at most (the first included).
    attempts: u32,
}

impl Client {
    /// A client of the server `args` names.
    pub fn new(args: &ServerArgs) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(TIMEOUT))
            .build()
            .into();
        Self {
            agent,
            base: args.url.trim_end_matches('/').to_owned(),
            authorization: args.token.as_ref().map(|t| format!("Bearer {}", t.trim())),
            attempts: args.attempts.max(1),
        }
    }

    /// A client for streamed answers ([`Client::post_streamed`]): no deadline for the whole exchange,
    /// [`STREAM_STALL`] for each wait.
    pub fn streaming(args: &ServerArgs) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(TIMEOUT))
            .timeout_recv_response(Some(STREAM_STALL))
            .timeout_per_read(Some(STREAM_STALL))
            .build()
            .into();
        Self {
            agent,
            ..Self::new(args)
        }
    }

    /// GETs `path`, retrying as a query (`429`, `503`, failed connections); the last answer or error.
    pub fn get(&self, path: &str) -> Result<Reply, String> {
        let url = format!("{}{path}", self.base);
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            let mut request = self.agent.get(&url);
            if let Some(authorization) = &self.authorization {
                request = request.header("Authorization", authorization);
            }
            let outcome = request
                .call()
                .map_err(|e| format!("GET {url}: {e}"))
                .and_then(|response| Reply::read(&url, response));
            let wait = match &outcome {
                Ok(reply) if reply.is_retryable(Retry::Query) => {
                    reply.retry_after.unwrap_or(backoff)
                }
                Ok(_) => return outcome,
                Err(_) => backoff,
            };
            if attempt >= self.attempts {
                return outcome;
            }
            std::thread::sleep(wait.min(MAX_BACKOFF));
            backoff = (backoff * 2).min(MAX_BACKOFF);
            attempt += 1;
        }
    }

    /// POSTs `body` and, on a `200`, returns the answer's body to read as it arrives; any other
    /// status is read whole and returned as the error's [`Reply`]. `429`, `503` and failed
    /// connections are retried as for a query, each reported to `on_retry`.
    pub fn post_streamed(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        mut on_retry: impl FnMut(&str),
    ) -> Result<Result<ureq::BodyReader<'static>, Reply>, String> {
        let url = format!("{}{path}", self.base);
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            let mut request = self.agent.post(&url);
            if let Some(authorization) = &self.authorization {
                request = request.header("Authorization", authorization);
            }
            for (k, v) in headers {
                request = request.header(*k, *v);
            }
            let outcome = match request.send(body) {
                Err(e) => Err(format!("POST {url}: {e}")),
                Ok(response) if response.status().as_u16() == 200 => {
                    return Ok(Ok(response.into_body().into_reader()));
                }
                Ok(response) => Reply::read(&url, response),
            };
            let (wait, reason) = match &outcome {
                Ok(reply) if reply.is_retryable(Retry::Query) => {
                    (reply.retry_after.unwrap_or(backoff), reply.error_message())
                }
                Ok(_) => return outcome.map(Err),
                Err(e) => (backoff, e.clone()),
            };
            if attempt >= self.attempts {
                return outcome.map(Err);
            }
            on_retry(&reason);
            std::thread::sleep(wait.min(MAX_BACKOFF));
            backoff = (backoff * 2).min(MAX_BACKOFF);
            attempt += 1;
        }
    }

    /// POSTs `body` to `path` once; a failed connection is an error naming the URL.
    pub fn post_once(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Reply, String> {
        let url = format!("{}{path}", self.base);
        let mut request = self.agent.post(&url);
        if let Some(authorization) = &self.authorization {
            request = request.header("Authorization", authorization);
        }
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = request.send(body).map_err(|e| format!("POST {url}: {e}"))?;
        Reply::read(&url, response)
    }
    /// POSTs `body`, retrying failed connections and the answers `retry` names (each retry is
    /// reported to `on_retry` with the reason before the wait). The last answer or error is returned.
    pub fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        retry: Retry,
        mut on_retry: impl FnMut(&str),
    ) -> Result<Reply, String> {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            let outcome = self.post_once(path, headers, body);
            let (wait, reason) = match &outcome {
                Ok(reply) if reply.is_retryable(retry) => {
                    (reply.retry_after.unwrap_or(backoff), reply.error_message())
                }
                Ok(_) => return outcome,
                Err(e) => (backoff, e.clone()),
            };
            if attempt >= self.attempts {
                return outcome;
            }
            on_retry(&reason);
            std::thread::sleep(wait.min(MAX_BACKOFF));
            backoff = (backoff * 2).min(MAX_BACKOFF);
            attempt += 1;
        }
    }
}
