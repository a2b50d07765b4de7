//! Authentication and authorization (CONTRACT §8): bearer JWTs checked against the configured key, the
//! [`Principal`] (tenant and scopes) they carry, and the scope each route class needs. Also mints
//! development tokens for `luminate token`. Owns no rate limits (see [`crate::limits`]) and never
//! looks at a request body.
//!
//! The accepted algorithms are fixed by the key the configuration gives, never by the token: a secret
//! accepts HS256/384/512 only, an RSA public key RS*/PS* only, an EC key ES256/ES384 only, an Ed25519
//! key EdDSA only. A token whose header names another family (`alg: none` included, which the
//! decoder does not even know) is refused, which rules out HS/RS key confusion.
//!
//! Scopes are independent: `read` (query, discovery, cardinality), `write` (ingestion), `admin`
//! (`/api/v1/admin/*`). `admin` does not imply the others — a token for everything lists all three —
//! so an operator can hand out a token that deletes old data without letting it read or write.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use luminate_model::{ErrorCode, Tenant};
use serde::{Deserialize, Serialize};
use serde_json::json;
use thiserror::Error;

use crate::config::{AuthConfig, Config};
use crate::error::ApiError;

/// Longest tenant id a token may carry: tenant ids are labels of self-metrics and parts of log lines.
pub const MAX_TENANT_ID_LEN: usize = 128;

/// A permission a token grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Query, discovery and cardinality routes.
    Read,
    /// Ingestion.
    Write,
    /// `/api/v1/admin/*`.
    Admin,
}

impl Scope {
    /// The name in tokens.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Admin => "admin",
        }
    }

    /// Parses a scope name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "read" => Some(Self::Read),
            "write" => Some(Self::Write),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who a request acts for: the tenant it reads and writes, and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Every store call of the request is scoped to this tenant.
    pub tenant: Tenant,
    /// Granted scopes (unknown names in the token are ignored).
    pub scopes: HashSet<Scope>,
}

impl Principal {
    /// The principal of every request when auth is disabled: tenant `default`, every scope.
    pub fn anonymous() -> Self {
        Self {
            tenant: Tenant::default_tenant(),
            scopes: [Scope::Read, Scope::Write, Scope::Admin].into(),
        }
    }

    /// `403 FORBIDDEN` unless the principal holds `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.contains(&scope) {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::Forbidden,
                format!(
                    "this route requires the \"{scope}\" scope, which the token does not grant"
                ),
            )
            .with_details(json!({"required_scope": scope.as_str()})))
        }
    }
}

/// Checks that `id` can be a tenant: 1–128 characters of `A-Z a-z 0-9 _ - .`, not starting with `.`
/// or `-` (ids end up in log lines, metric labels and file names of tools; nothing there needs quoting).
pub fn validate_tenant_id(id: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if id.is_empty() || id.len() > MAX_TENANT_ID_LEN {
        return Err(format!(
            "tenant_id must be 1-{MAX_TENANT_ID_LEN} characters"
        ));
    }
    if !id.chars().all(ok_char) || id.starts_with(['.', '-']) {
        return Err(format!(
            "tenant_id {id:?} may only contain A-Z, a-z, 0-9, '_', '-' and '.', and must not start with '.' or '-'"
        ));
    }
    Ok(())
}

/// The claims Luminate reads. Registered claims (`exp`, `nbf`, `iss`, `aud`) are checked by the
/// decoder before these are looked at.
#[derive(Debug, Deserialize)]
struct Claims {
    tenant_id: Option<String>,
    #[serde(default)]
    scopes: ScopeClaim,
}

/// `scopes` as a JSON array (`["read", "write"]`) or an OAuth-style space-separated string.
#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
enum ScopeClaim {
    #[default]
    Missing,
    List(Vec<String>),
    Text(String),
}

impl ScopeClaim {
    fn scopes(&self) -> HashSet<Scope> {
        let names: Vec<&str> = match self {
            Self::Missing => Vec::new(),
            Self::List(list) => list.iter().map(String::as_str).collect(),
            Self::Text(text) => text.split_whitespace().collect(),
        };
        names.into_iter().filter_map(Scope::parse).collect()
    }
}

/// Why the auth configuration cannot be used.
#[derive(Debug, Error)]
pub enum KeyError {
    /// Neither a secret nor a key file.
    #[error("auth.enabled requires auth.jwt_secret or auth.jwt_public_key_path")]
    Missing,
    /// The key file could not be read.
    #[error("auth.jwt_public_key_path: cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The key file holds no RSA, EC or Ed25519 public key in PEM.
    #[error(
        "auth.jwt_public_key_path: {path} holds no RSA, EC (P-256/P-384) or Ed25519 public key in PEM form"
    )]
    Unusable {
        /// The file.
        path: String,
    },
}

/// Verifies bearer tokens against the configured key.
pub struct Authenticator {
    key: DecodingKey,
    validation: Validation,
    /// Shown in errors and logs: `HS256/HS384/HS512` and so on.
    family: &'static str,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("family", &self.family)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// From `auth`: reads the public key file when one is configured.
    pub fn from_config(auth: &AuthConfig) -> Result<Self, KeyError> {
        let (key, algorithms, family): (DecodingKey, &[Algorithm], &'static str) =
            if let Some(secret) = &auth.jwt_secret {
                (
                    DecodingKey::from_secret(secret.as_bytes()),
                    &[Algorithm::HS256, Algorithm::HS384, Algorithm::HS512],
                    "HS256/HS384/HS512",
                )
            } else if let Some(path) = &auth.jwt_public_key_path {
                let shown = path.display().to_string();
                let pem = std::fs::read(path).map_err(|source| KeyError::Read {
                    path: shown.clone(),
                    source,
                })?;
                public_key(&pem).ok_or(KeyError::Unusable { path: shown })?
            } else {
                return Err(KeyError::Missing);
            };
        let mut validation = Validation::new(algorithms[0]);
        validation.algorithms = algorithms.to_vec();
        validation.leeway = auth.leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        validation.validate_aud = auth.audience.is_some();
        if let Some(aud) = &auth.audience {
            validation.set_audience(&[aud]);
            required.push("aud");
        }
        if let Some(iss) = &auth.issuer {
            validation.set_issuer(&[iss]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        Ok(Self {
            key,
            validation,
            family,
        })
    }

    /// The accepted algorithms, for the start-up log.
    pub fn algorithms(&self) -> &'static str {
        self.family
    }

    /// The principal of a request from its `Authorization` header value (`None` when absent).
    pub fn authenticate(&self, authorization: Option<&[u8]>) -> Result<Principal, ApiError> {
        let Some(value) = authorization else {
            return Err(unauthorized(
                "missing bearer token: send Authorization: Bearer <JWT>",
                None,
            ));
        };
        let token = std::str::from_utf8(value)
            .ok()
            .and_then(|v| {
                let (scheme, rest) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                unauthorized(
                    "malformed Authorization header: expected Bearer <JWT>",
                    Some("invalid_request"),
                )
            })?;
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| unauthorized(&self.explain(e.kind()), Some("invalid_token")))?;
        let claims = data.claims;
        let tenant = claims.tenant_id.ok_or_else(|| {
            unauthorized("the token has no tenant_id claim", Some("invalid_token"))
        })?;
        validate_tenant_id(&tenant)
            .map_err(|m| unauthorized(&format!("invalid token: {m}"), Some("invalid_token")))?;
        Ok(Principal {
            tenant: Tenant::new(tenant),
            scopes: claims.scopes.scopes(),
        })
    }

    fn explain(&self, kind: &ErrorKind) -> String {
        let reason = match kind {
            ErrorKind::ExpiredSignature => "the token has expired (exp)".to_owned(),
            ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".to_owned(),
            ErrorKind::InvalidSignature => "the token's signature does not verify".to_owned(),
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => format!(
                "the token's algorithm is not accepted; this server accepts {}",
                self.family
            ),
            ErrorKind::InvalidIssuer => "the token's issuer (iss) is not accepted".to_owned(),
            ErrorKind::InvalidAudience => "the token's audience (aud) is not accepted".to_owned(),
            ErrorKind::MissingRequiredClaim(claim) => {
                format!("the token has no {claim} claim")
            }
            ErrorKind::InvalidClaimFormat(claim) => {
                format!("the token's {claim} claim is malformed")
            }
            // `alg: none` and unknown algorithms fail while the header is parsed.
            ErrorKind::Json(_) | ErrorKind::Base64(_) | ErrorKind::Utf8(_) => format!(
                "the token is malformed or names an algorithm other than {}",
                self.family
            ),
            _ => "the token is malformed".to_owned(),
        };
        format!("invalid token: {reason}")
    }
}

/// The key and algorithm family of a PEM public key.
fn public_key(pem: &[u8]) -> Option<(DecodingKey, &'static [Algorithm], &'static str)> {
    if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        return Some((
            key,
            &[
                Algorithm::RS256,
                Algorithm::RS384,
                Algorithm::RS512,
                Algorithm::PS256,
                Algorithm::PS384,
                Algorithm::PS512,
            ],
            "RS256/RS384/RS512/PS256/PS384/PS512",
        ));
    }
    if let Ok(key) = DecodingKey::from_ec_pem(pem) {
        return Some((key, &[Algorithm::ES256, Algorithm::ES384], "ES256/ES384"));
    }
    if let Ok(key) = DecodingKey::from_ed_pem(pem) {
        return Some((key, &[Algorithm::EdDSA], "EdDSA"));
    }
    None
}

/// `401 UNAUTHORIZED`; `error` is the RFC 6750 error code for `WWW-Authenticate`, when there is one.
fn unauthorized(message: &str, error: Option<&str>) -> ApiError {
    let details = match error {
        Some(e) => json!({"www_authenticate_error": e}),
        None => json!({}),
    };
    ApiError::new(ErrorCode::Unauthorized, message).with_details(details)
}

/// The `WWW-Authenticate` value for a 401 or 403 body made by this module (RFC 6750 §3).
pub fn www_authenticate(error: &ApiError) -> String {
    let code = match error.code {
        ErrorCode::Forbidden => Some("insufficient_scope"),
        _ => error.details["www_authenticate_error"].as_str(),
    };
    let scope = error.details["required_scope"].as_str();
    let mut value = String::from("Bearer realm=\"luminate\"");
    if let Some(code) = code {
        value.push_str(&format!(", error=\"{code}\""));
    }
    if let Some(scope) = scope {
        value.push_str(&format!(", scope=\"{scope}\""));
    }
    value
}

/// Who may scrape the self-metrics exposition (`metrics.path`) on one listener. Its labels name tenants
/// and their metrics, so it is never open where the API needs tokens; but a JWT never opens it either:
/// scopes are per tenant (an `admin` token administers its own tenant), while the exposition shows
/// every tenant, so only the operator's static `metrics.bearer_token` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScrapeAccess<'a> {
    /// Anyone: auth is disabled (protected mode keeps the API's address on loopback unless open access
    /// is intended), or the exposition has an address of its own (`metrics.listen`, to which protected
    /// mode applies by itself: see `Config::check_exposure`).
    Open,
    /// Scrapes that send `Authorization: Bearer <metrics.bearer_token>`.
    Token(&'a str),
    /// Nobody: auth is on, the exposition shares the API's address, and no `metrics.bearer_token` is
    /// set. Every scrape gets a `401` that says which key to set.
    Closed,
}

impl<'a> ScrapeAccess<'a> {
    /// The rule of the API's address (`on_api_address`) or of `metrics.listen`: the token when one is
    /// set; otherwise open, except on the API's address with `auth.enabled`.
    pub fn of(config: &'a Config, on_api_address: bool) -> Self {
        match config.metrics.bearer_token.as_deref() {
            Some(token) => Self::Token(token),
            None if on_api_address && config.auth.enabled => Self::Closed,
            None => Self::Open,
        }
    }
}

/// Admission of one scrape under `access`, given its `Authorization` header: `401` unless the rule lets
/// it in. A token is compared in constant time for equal lengths.
pub fn check_scrape(
    access: ScrapeAccess<'_>,
    authorization: Option<&[u8]>,
) -> Result<(), ApiError> {
    let expected = match access {
        ScrapeAccess::Open => return Ok(()),
        ScrapeAccess::Closed => {
            return Err(unauthorized(
                "with auth.enabled the metrics exposition on the API's address needs metrics.bearer_token \
                 (then send Authorization: Bearer <metrics.bearer_token>), or an address of its own \
                 (metrics.listen); a JWT does not open it: its labels name every tenant",
                None,
            ));
        }
        ScrapeAccess::Token(token) => token,
    };
    let sent = authorization
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().as_bytes())
        .unwrap_or_default();
    let same = sent.len() == expected.len()
        && sent
            .iter()
            .zip(expected.as_bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err(unauthorized(
            "the metrics exposition needs Authorization: Bearer <metrics.bearer_token>",
            Some("invalid_token"),
        ))
    }
}

/// The claims `luminate token` writes.
#[derive(Debug, Serialize)]
struct MintedClaims<'a> {
    tenant_id: &'a str,
    scopes: Vec<&'static str>,
    iat: u64,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

/// Why a token could not be minted.
#[derive(Debug, Error)]
pub enum MintError {
    /// Minting needs the shared secret; with a public key only the holder of the private key can sign.
    #[error(
        "auth.jwt_secret is not set: `luminate token` signs with the HMAC secret (with auth.jwt_public_key_path, sign tokens with your identity provider's private key)"
    )]
    NoSecret,
    /// The tenant id is not acceptable.
    #[error("--tenant: {0}")]
    Tenant(String),
    /// Signing failed.
    #[error("cannot sign the token: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

/// An HS256 token for `tenant` with `scopes`, valid for `ttl` from now, carrying the configured `iss`
/// and `aud` so that this server accepts it.
pub fn mint(
    auth: &AuthConfig,
    tenant: &str,
    scopes: &[Scope],
    ttl: Duration,
) -> Result<String, MintError> {
    let secret = auth.jwt_secret.as_deref().ok_or(MintError::NoSecret)?;
    validate_tenant_id(tenant).map_err(MintError::Tenant)?;
    let now = jsonwebtoken::get_current_timestamp();
    let mut names: Vec<&'static str> = scopes.iter().map(|s| s.as_str()).collect();
    names.dedup();
    let claims = MintedClaims {
        tenant_id: tenant,
        scopes: names,
        iat: now,
        exp: now + ttl.as_secs().max(1),
        iss: auth.issuer.as_deref(),
        aud: auth.audience.as_deref(),
    };
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(secret: &str) -> AuthConfig {
        AuthConfig {
            enabled: true,
            jwt_secret: Some(secret.into()),
            ..AuthConfig::default()
        }
    }

    fn bearer(token: &str) -> Vec<u8> {
        format!("Bearer {token}").into_bytes()
    }

    #[test]
    fn minted_tokens_verify_and_carry_tenant_and_scopes() {
        let auth = config("s3cret");
        let token = mint(
            &auth,
            "acme",
            &[Scope::Read, Scope::Write],
            Duration::from_secs(60),
        )
        .unwrap();
        let p = Authenticator::from_config(&auth)
            .unwrap()
            .authenticate(Some(&bearer(&token)))
            .unwrap();
        assert_eq!(p.tenant.as_str(), "acme");
        assert_eq!(p.scopes, [Scope::Read, Scope::Write].into());
        assert!(p.require(Scope::Read).is_ok());
        let denied = p.require(Scope::Admin).unwrap_err();
        assert_eq!(denied.code, ErrorCode::Forbidden);
        assert_eq!(
            www_authenticate(&denied),
            r#"Bearer realm="luminate", error="insufficient_scope", scope="admin""#
        );
    }

    #[test]
    fn another_secret_is_a_bad_signature() {
        let token = mint(
            &config("one"),
            "acme",
            &[Scope::Read],
            Duration::from_secs(60),
        )
        .unwrap();
        let err = Authenticator::from_config(&config("two"))
            .unwrap()
            .authenticate(Some(&bearer(&token)))
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::Unauthorized);
        assert!(err.message.contains("signature"), "{}", err.message);
        assert_eq!(
            www_authenticate(&err),
            r#"Bearer realm="luminate", error="invalid_token""#
        );
    }

    #[test]
    fn headers_without_a_bearer_token_are_refused() {
        let a = Authenticator::from_config(&config("s")).unwrap();
        for header in [&b"Basic abc"[..], b"Bearer", b"Bearer   ", b"token"] {
            let err = a.authenticate(Some(header)).unwrap_err();
            assert!(err.message.starts_with("malformed"), "{}", err.message);
        }
        assert!(
            a.authenticate(None)
                .unwrap_err()
                .message
                .starts_with("missing")
        );
    }

    #[test]
    fn scopes_claim_as_list_or_text() {
        let list: Claims =
            serde_json::from_str(r#"{"tenant_id":"t","scopes":["read","bogus","admin"]}"#).unwrap();
        assert_eq!(list.scopes.scopes(), [Scope::Read, Scope::Admin].into());
        let text: Claims =
            serde_json::from_str(r#"{"tenant_id":"t","scopes":"write read"}"#).unwrap();
        assert_eq!(text.scopes.scopes(), [Scope::Read, Scope::Write].into());
        let none: Claims = serde_json::from_str(r#"{"tenant_id":"t"}"#).unwrap();
        assert!(none.scopes.scopes().is_empty());
    }

    #[test]
    fn scrapes_need_the_static_token_when_one_is_set() {
        assert!(check_scrape(ScrapeAccess::Open, None).is_ok());
        let token = ScrapeAccess::Token("abc");
        assert!(check_scrape(token, Some(b"Bearer abc")).is_ok());
        for sent in [
            None,
            Some(&b"Bearer abd"[..]),
            Some(b"Bearer ab"),
            Some(b"Basic abc"),
        ] {
            let err = check_scrape(token, sent).unwrap_err();
            assert_eq!(err.code, ErrorCode::Unauthorized);
        }
    }

    #[test]
    fn with_auth_on_the_api_address_needs_the_metrics_token_and_nothing_else_opens_it() {
        let mut config = Config::default();
        // Auth disabled (protected mode): open on either address.
        assert_eq!(ScrapeAccess::of(&config, true), ScrapeAccess::Open);
        config.auth.enabled = true;
        assert_eq!(ScrapeAccess::of(&config, true), ScrapeAccess::Closed);
        // `metrics.listen` is guarded by protected mode, not by JWTs.
        assert_eq!(ScrapeAccess::of(&config, false), ScrapeAccess::Open);
        for sent in [None, Some(&b"Bearer eyJhbGciOiJIUzI1NiJ9.e30.x"[..])] {
            let err = check_scrape(ScrapeAccess::Closed, sent).unwrap_err();
            assert_eq!(err.code, ErrorCode::Unauthorized);
            assert!(
                err.message.contains("metrics.bearer_token"),
                "{}",
                err.message
            );
        }
        config.metrics.bearer_token = Some("scrape".into());
        for on_api_address in [true, false] {
            assert_eq!(
                ScrapeAccess::of(&config, on_api_address),
                ScrapeAccess::Token("scrape")
            );
        }
    }

    #[test]
    fn tenant_ids() {
        for ok in ["default", "acme-corp", "org_1.eu", "A"] {
            assert!(validate_tenant_id(ok).is_ok(), "{ok}");
        }
        let long = "x".repeat(MAX_TENANT_ID_LEN + 1);
        for bad in ["", "-x", ".x", "a b", "a/b", "é", long.as_str()] {
            assert!(validate_tenant_id(bad).is_err(), "{bad}");
        }
    }
}
