//! Authentication end to end, through the real binary: the token matrix against a shared secret, an
//! RSA public key and an EC public key (every way a token can be wrong gets its 401 or 403 and code),
//! `luminate token`, and protected mode.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;
mod tenant_client;

use std::process::Command;

use common::{Launch, now_ms, point};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};
use tenant_client::{
    Client, SECRET, alg_none, claims, ec_key, fixture, hs256, now_s, rsa_key, sign, token,
    with_secret,
};

fn one_point() -> Value {
    json!({"metrics": [point("requests", now_ms(), 1.0, &[("customer_id", "c1")])]})
}

/// Asserts a 401 `UNAUTHORIZED` whose message contains `reason`, with a Bearer challenge.
fn assert_unauthorized(client: &Client, authorization: Option<&str>, reason: &str, case: &str) {
    let reply = client.send("POST", "/api/v1/write", authorization, Some(&one_point()));
    assert_eq!(reply.status, 401, "{case}: {reply:?}");
    assert_eq!(reply.code(), "UNAUTHORIZED", "{case}");
    let message = reply.body["error"]["message"].as_str().unwrap();
    assert!(message.contains(reason), "{case}: {message}");
    let challenge = reply.header("www-authenticate").unwrap();
    assert!(
        challenge.starts_with("Bearer realm=\"luminate\""),
        "{case}: {challenge}"
    );
}

#[test]
fn token_matrix_with_a_shared_secret() {
    let dir = tempfile::tempdir().unwrap();
    let server = with_secret(Launch::new(dir.path()))
        .env("LUMINATE_AUTH_ISSUER", "https://idp.example")
        .env("LUMINATE_AUTH_AUDIENCE", "luminate")
        .start();
    let client = Client::of(&server);
    let good = || {
        let mut c = claims("acme", &["read", "write"]);
        c["iss"] = json!("https://idp.example");
        c["aud"] = json!("luminate");
        c
    };
    let with = |key: &str, value: Value| {
        let mut c = good();
        c[key] = value;
        c
    };
    let without = |key: &str| {
        let mut c = good();
        c.as_object_mut().unwrap().remove(key);
        c
    };
    let bearer = |t: String| format!("Bearer {t}");

    assert_unauthorized(&client, None, "missing bearer token", "no header");
    assert_unauthorized(
        &client,
        Some("Basic YWRtaW46YWRtaW4="),
        "malformed Authorization",
        "basic",
    );
    assert_unauthorized(
        &client,
        Some("Bearer not.a.jwt"),
        "invalid token",
        "garbage",
    );
    assert_unauthorized(&client, Some("Bearer abc"), "invalid token", "one segment");
    let other_secret = EncodingKey::from_secret(b"another secret of the same length!!");
    assert_unauthorized(
        &client,
        Some(&bearer(sign(Algorithm::HS256, &other_secret, &good()))),
        "signature",
        "bad signature",
    );
    let mut forged = hs256(&good());
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    assert_unauthorized(
        &client,
        Some(&bearer(forged)),
        "invalid token",
        "tampered signature",
    );
    assert_unauthorized(
        &client,
        Some(&bearer(hs256(&with("exp", json!(now_s() - 3600))))),
        "expired",
        "expired",
    );
    assert_unauthorized(
        &client,
        Some(&bearer(hs256(&with("nbf", json!(now_s() + 3600))))),
        "not valid yet",
        "not yet valid",
    );
    assert_unauthorized(
        &client,
        Some(&bearer(hs256(&without("exp")))),
        "no exp claim",
        "no exp",
    );
    assert_unauthorized(
        &client,
        Some(&bearer(alg_none(&good()))),
        "HS256/HS384/HS512",
        "alg none",
    );
    assert_unauthorized(
        &client,
        Some(&bearer(sign(Algorithm::RS256, &rsa_key(), &good()))),
        "not accepted",
        "RS256 against a secret",
    );
    assert_unauthorized(
        &client,
        Some(&bearer(sign(Algorithm::ES256, &ec_key(), &good()))),
        "not accepted",
        "ES256 against a secret",
    );
    assert_unauthorized(
        &client,
        Some(&bearer(hs256(&with("iss", json!("https://evil.example"))))),
        "issuer",
        "wrong iss",
    );
    assert_unauthorized(
        &client,
        Some(&bearer(hs256(&without("iss")))),
        "no iss claim",
        "no iss",
    );
    assert_unauthorized(
        &client,
        Some(&bearer(hs256(&with("aud", json!("grafana"))))),
        "audience",
        "wrong aud",
    );
    assert_unauthorized(
        &client,
        Some(&bearer(hs256(&without("tenant_id")))),
        "no tenant_id claim",
        "no tenant",
    );
    assert_unauthorized(
        &client,
        Some(&bearer(hs256(&with("tenant_id", json!("../etc"))))),
        "tenant_id",
        "bad tenant",
    );

    // Valid tokens work, with every HS size.
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let t = sign(alg, &EncodingKey::from_secret(SECRET.as_bytes()), &good());
        let reply = client.send(
            "POST",
            "/api/v1/write",
            Some(&bearer(t)),
            Some(&one_point()),
        );
        assert_eq!(reply.status, 200, "{alg:?}: {reply:?}");
        assert_eq!(reply.body["accepted"], 1);
    }
    let reader = hs256(&with("scopes", json!(["read"])));
    assert_eq!(
        client.get("/api/v1/metrics", &reader).body,
        json!({"metrics": ["requests"]})
    );

    // A missing scope is a 403 naming it.
    let reply = client.post("/api/v1/write", &reader, &one_point());
    assert_eq!(reply.status, 403, "{reply:?}");
    assert_eq!(reply.code(), "FORBIDDEN");
    assert_eq!(reply.body["error"]["details"]["required_scope"], "write");
    assert_eq!(
        reply.header("www-authenticate"),
        Some(r#"Bearer realm="luminate", error="insufficient_scope", scope="write""#)
    );
    let writer = hs256(&with("scopes", json!(["write"])));
    for (method, path) in [
        ("GET", "/api/v1/metrics"),
        ("GET", "/api/v1/metrics/requests/dimensions"),
        (
            "GET",
            "/api/v1/metrics/requests/dimensions/customer_id/values",
        ),
        ("GET", "/api/v1/cardinality"),
    ] {
        let reply = client.send(method, path, Some(&bearer(writer.clone())), None);
        assert_eq!((reply.status, reply.code()), (403, "FORBIDDEN"), "{path}");
    }
    let query = json!({"queryType": "aggregate", "metricName": "requests", "aggregation": "count",
        "timeRange": {"relative": "1h"}});
    assert_eq!(client.post("/api/v1/query", &writer, &query).status, 403);
    // admin is its own scope: read + write do not reach the admin routes, and admin alone reaches
    // nothing else.
    let rw = hs256(&good());
    let delete = format!("/api/v1/admin/metrics/requests?before={}", now_ms() + 1);
    assert_eq!(client.delete(&delete, &rw).status, 403);
    let admin = hs256(&with("scopes", json!(["admin"])));
    assert_eq!(client.post("/api/v1/query", &admin, &query).status, 403);
    let reply = client.delete(&delete, &admin);
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        client.post("/api/v1/admin/flush", &rw, &json!({})).status,
        403
    );
    let reply = client.post("/api/v1/admin/flush", &admin, &json!({}));
    assert_eq!(reply.status, 200, "{reply:?}");
    // Scopes may also be a space-separated string.
    let text_scopes = hs256(&with("scopes", json!("read write")));
    assert_eq!(
        client
            .post("/api/v1/write", &text_scopes, &one_point())
            .status,
        200
    );

    // Health needs no token.
    assert_eq!(client.send("GET", "/api/v1/health", None, None).status, 200);
    assert!(
        common::eventually(std::time::Duration::from_secs(10), || server
            .output()
            .contains("authenticated: every route but health needs a bearer JWT")),
        "{}",
        server.output()
    );
}

#[test]
fn token_matrix_with_an_rsa_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = fixture("rsa_public.pem");
    let server = Launch::new(dir.path())
        .env("LUMINATE_AUTH_ENABLED", "true")
        .env("LUMINATE_AUTH_JWT_PUBLIC_KEY_PATH", key.to_str().unwrap())
        .start();
    let client = Client::of(&server);
    let good = claims("acme", &["read", "write"]);
    let bearer = |t: String| format!("Bearer {t}");
    for alg in [Algorithm::RS256, Algorithm::RS512, Algorithm::PS256] {
        let reply = client.send(
            "POST",
            "/api/v1/write",
            Some(&bearer(sign(alg, &rsa_key(), &good))),
            Some(&one_point()),
        );
        assert_eq!(reply.status, 200, "{alg:?}: {reply:?}");
    }
    // Key confusion: an HS256 token whose "secret" is the server's public key.
    let public_pem = std::fs::read(&key).unwrap();
    let confused = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(&public_pem),
        &good,
    );
    assert_unauthorized(
        &client,
        Some(&bearer(confused)),
        "RS256/RS384/RS512",
        "HS with the public key",
    );
    assert_unauthorized(
        &client,
        Some(&bearer(token("acme", &["write"]))),
        "not accepted",
        "HS token",
    );
    assert_unauthorized(
        &client,
        Some(&bearer(sign(Algorithm::ES256, &ec_key(), &good))),
        "not accepted",
        "ES token",
    );
    assert_unauthorized(&client, Some(&bearer(alg_none(&good))), "RS256", "alg none");
    let mut expired = good.clone();
    expired["exp"] = json!(now_s() - 3600);
    assert_unauthorized(
        &client,
        Some(&bearer(sign(Algorithm::RS256, &rsa_key(), &expired))),
        "expired",
        "expired RS",
    );
}

#[test]
fn token_matrix_with_an_ec_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = fixture("ec_public.pem");
    let server = Launch::new(dir.path())
        .env("LUMINATE_AUTH_ENABLED", "true")
        .env("LUMINATE_AUTH_JWT_PUBLIC_KEY_PATH", key.to_str().unwrap())
        .start();
    let client = Client::of(&server);
    let good = claims("acme", &["write"]);
    let bearer = |t: String| format!("Bearer {t}");
    let reply = client.send(
        "POST",
        "/api/v1/write",
        Some(&bearer(sign(Algorithm::ES256, &ec_key(), &good))),
        Some(&one_point()),
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_unauthorized(
        &client,
        Some(&bearer(sign(Algorithm::RS256, &rsa_key(), &good))),
        "ES256/ES384",
        "RS token",
    );
    assert_unauthorized(
        &client,
        Some(&bearer(token("acme", &["write"]))),
        "ES256/ES384",
        "HS token",
    );
}

#[test]
fn an_unreadable_public_key_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let (status, output) = Launch::new(dir.path())
        .env("LUMINATE_AUTH_ENABLED", "true")
        .env(
            "LUMINATE_AUTH_JWT_PUBLIC_KEY_PATH",
            fixture("README.md").to_str().unwrap(),
        )
        .run_to_exit();
    assert!(!status.success());
    assert!(
        output.contains("auth.jwt_public_key_path") && output.contains("no RSA, EC"),
        "{output}"
    );
}

fn luminate_token(args: &[&str], secret: Option<&str>) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_luminate"));
    cmd.arg("token").args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("LUMINATE") {
            cmd.env_remove(key);
        }
    }
    if let Some(s) = secret {
        cmd.env("LUMINATE_AUTH_JWT_SECRET", s);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn luminate_token_mints_tokens_the_server_accepts() {
    let (code, minted, _) = luminate_token(
        &["--tenant", "acme", "--scopes", "read,write", "--ttl", "1h"],
        Some(SECRET),
    );
    assert_eq!(code, 0);
    let minted = minted.trim();
    let dir = tempfile::tempdir().unwrap();
    let server = with_secret(Launch::new(dir.path())).start();
    let client = Client::of(&server);
    assert_eq!(
        client.post("/api/v1/write", minted, &one_point()).status,
        200
    );
    assert_eq!(
        client.get("/api/v1/metrics", minted).body,
        json!({"metrics": ["requests"]})
    );
    let delete = format!("/api/v1/admin/metrics/requests?before={}", now_ms());
    assert_eq!(client.delete(&delete, minted).status, 403);

    let (code, _, err) = luminate_token(&["--tenant", "acme"], None);
    assert_eq!(code, 2);
    assert!(err.contains("auth.jwt_secret is not set"), "{err}");
    let (code, _, err) =
        luminate_token(&["--tenant", "acme", "--scopes", "read,root"], Some(SECRET));
    assert_eq!(code, 2);
    assert!(err.contains("unknown scope \"root\""), "{err}");
    let (code, _, err) = luminate_token(&["--tenant", "a b"], Some(SECRET));
    assert_eq!(code, 2);
    assert!(err.contains("--tenant"), "{err}");
}

#[test]
fn protected_mode_refuses_a_network_address_without_auth() {
    let dir = tempfile::tempdir().unwrap();
    let mut launch = Launch::new(dir.path())
        .env("LUMINATE_SERVER_HOST", "0.0.0.0")
        .env("LUMINATE_SERVER_PORT", "0");
    launch.no_listen_flag = true;
    let (status, output) = launch.run_to_exit();
    assert_eq!(status.code(), Some(2), "{output}");
    assert!(
        output.contains("server.host")
            && output.contains("protected mode")
            && output.contains("server.allow_unauthenticated_network: true"),
        "{output}"
    );

    // Said explicitly, it starts, and says so.
    let open = launch
        .clone()
        .env("LUMINATE_SERVER_ALLOW_UNAUTHENTICATED_NETWORK", "true")
        .start();
    let logged = |server: &common::Luminate, what: &str| {
        common::eventually(std::time::Duration::from_secs(10), || {
            server.output().contains(what)
        })
    };
    assert!(logged(&open, "OPEN: auth disabled"), "{}", open.output());
    assert_eq!(open.get("/api/v1/health").0, 200);
    drop(open);

    // With auth, a network address needs no extra setting.
    let authenticated = with_secret(launch).start();
    assert_eq!(authenticated.get("/api/v1/health").0, 200);
    let (status, body) = authenticated.get("/api/v1/metrics");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("UNAUTHORIZED"))
    );
    drop(authenticated);

    // Loopback needs nothing.
    let local = Launch::new(dir.path()).start();
    assert!(
        logged(&local, "protected: auth disabled, loopback only"),
        "{}",
        local.output()
    );
}
