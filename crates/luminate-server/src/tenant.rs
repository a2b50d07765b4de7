//! The tenant a request acts for. The route guard (`crate::app`) puts the token's tenant in the
//! request's extensions (tenant `default` when auth is disabled); handlers take [`RequestTenant`] and
//! pass it to every store call. A request that did not go through the guard (none today) is `default`.

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
