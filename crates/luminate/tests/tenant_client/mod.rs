//! What the auth, tenancy and limits tests share beside `common`: tokens (signed with a secret or the
//! test keys of `fixtures/`, or hand-made), and HTTP calls that send a bearer token and keep the
//! response's headers.

#![allow(dead_code)] // each test binary uses a different part

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::common::{Launch, Luminate, now_ms};

/// The HMAC secret of the tests' servers.
pub const SECRET: &str = "test-secret-of-at-least-32-bytes!!";

/// A file of `tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Now in Unix seconds.
pub fn now_s() -> i64 {
    now_ms() / 1000
}

/// Claims for `tenant` with `scopes`, valid for an hour.
pub fn claims(tenant: &str, scopes: &[&str]) -> Value {
    json!({"tenant_id": tenant, "scopes": scopes, "iat": now_s(), "exp": now_s() + 3600})
}

/// `claims` signed with `alg` and `key`.
pub fn sign(alg: Algorithm, key: &EncodingKey, claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, key).expect("sign")
}

/// `claims` signed HS256 with [`SECRET`].
pub fn hs256(claims: &Value) -> String {
    sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(SECRET.as_bytes()),
        claims,
    )
}

/// A token for `tenant` with `scopes`, HS256 with [`SECRET`].
pub fn token(tenant: &str, scopes: &[&str]) -> String {
    hs256(&claims(tenant, scopes))
}

/// The test RSA private key.
pub fn rsa_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(&std::fs::read(fixture("rsa_private.pem")).expect("rsa key"))
        .expect("rsa pem")
}

/// The test EC P-256 private key.
pub fn ec_key() -> EncodingKey {
    EncodingKey::from_ec_pem(&std::fs::read(fixture("ec_private.pem")).expect("ec key"))
        .expect("ec pem")
}

/// An unsigned token: header `{"alg":"none"}`, empty signature.
pub fn alg_none(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

/// A launch with auth on and the shared secret.
pub fn with_secret(launch: Launch) -> Launch {
    launch
        .env("LUMINATE_AUTH_ENABLED", "true")
        .env("LUMINATE_AUTH_JWT_SECRET", SECRET)
}

/// A response: status, JSON body (`Null` when empty) and headers (names lower-case).
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Body.
    pub body: Value,
    /// Headers.
    pub headers: Vec<(String, String)>,
}

impl Reply {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A header's value as a number.
    pub fn number(&self, name: &str) -> u64 {
        self.header(name)
            .unwrap_or_else(|| panic!("no {name} header in {self:?}"))
            .parse()
            .expect("numeric header")
    }

    /// `error.code` of the body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

/// HTTP with an optional `Authorization` value.
pub struct Client {
    base: String,
    agent: ureq::Agent,
}

impl Client {
    /// A client of `server`.
    pub fn of(server: &Luminate) -> Self {
        Self::at(&server.base)
    }

    /// A client of the server at `base` (`http://HOST:PORT`), one this test did not launch.
    pub fn at(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            // A connection per request: after a refusal (401, 413, 429) the server may answer before
            // the request body arrived, and hyper then closes the connection unannounced, which a
            // pooled connection meets as "peer disconnected" on the next request.
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(60)))
                .max_idle_connections(0)
                .build()
                .into(),
        }
    }

    /// Sends `method path` with `authorization` (a full header value) and a JSON body.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        authorization: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let url = format!("{}{path}", self.base);
        let mut builder = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(auth) = authorization {
            builder = builder.header("authorization", auth);
        }
        let response = match body {
            Some(b) => {
                let request = builder
                    .header("content-type", "application/json")
                    .body(b.to_string())
                    .expect("request");
                self.agent.run(request)
            }
            None => self.agent.run(builder.body(()).expect("request")),
        };
        let mut response = response.expect("HTTP exchange");
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let text = response.body_mut().read_to_string().expect("read body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
        };
        Reply {
            status,
            body,
            headers,
        }
    }

    /// GET with a bearer token.
    pub fn get(&self, path: &str, token: &str) -> Reply {
        self.send("GET", path, Some(&format!("Bearer {token}")), None)
    }

    /// POST JSON with a bearer token.
    pub fn post(&self, path: &str, token: &str, body: &Value) -> Reply {
        self.send("POST", path, Some(&format!("Bearer {token}")), Some(body))
    }

    /// DELETE with a bearer token.
    pub fn delete(&self, path: &str, token: &str) -> Reply {
        self.send("DELETE", path, Some(&format!("Bearer {token}")), None)
    }

    /// Writes `points` with `token`.
    pub fn write(&self, token: &str, points: &[Value]) -> Reply {
        self.post("/api/v1/write", token, &json!({ "metrics": points }))
    }

    /// A query with `token`; panics unless it answers 200.
    pub fn query(&self, token: &str, query: &Value) -> Value {
        let reply = self.post("/api/v1/query", token, query);
        assert_eq!(reply.status, 200, "query {query} answered {reply:?}");
        reply.body
    }
}
