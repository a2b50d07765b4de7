//! The tenant a request acts for. Authentication (a later issue) will put the token's tenant in the
//! request's extensions; until then, and whenever auth is disabled, every request is tenant `default`.
//! Handlers take [`RequestTenant`] and pass it to every store call, so nothing changes when auth arrives.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use luminate_model::Tenant;

/// The tenant of the current request.
#[derive(Debug, Clone)]
pub struct RequestTenant(pub Tenant);

impl<S: Send + Sync> FromRequestParts<S> for RequestTenant {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<Tenant>()
                .cloned()
                .unwrap_or_else(Tenant::default_tenant),
        ))
    }
}
