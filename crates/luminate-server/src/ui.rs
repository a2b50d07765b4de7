//! The built-in web UI: its files, embedded at compile time from `ui/dist` (see `build.rs`), served
//! under [`PREFIX`] without authentication (the pages hold no data; their API calls carry the token).
//! `GET /` redirects there. Hashed files (`assets/…`) are immutable; `index.html` is revalidated on
//! every load through its ETag. A file built with a gzip beside it (the bundle and its styles) is
//! sent gzipped to a browser that accepts it (`Content-Encoding: gzip`, its own ETag,
//! `Vary: Accept-Encoding`): 45 KB of script instead of 114. A path under the prefix that is not a file is one of the single-page
//! app's own routes (`/ui/explore`) and gets `index.html`; nothing outside the prefix ever does, so an
//! unknown `/api/…` path keeps its JSON `404`. A binary built without the UI answers with a page
//! saying how to build it.

use std::sync::Arc;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::app::AppState;
use crate::gzip::accepts_gzip;

/// Where the UI lives.
pub const PREFIX: &str = "/ui";

/// One embedded file.
struct Asset {
    /// Relative to `ui/dist`, `/`-separated.
    path: &'static str,
    bytes: &'static [u8],
    /// The same bytes gzipped, when the build made them.
    gzip: Option<&'static [u8]>,
    content_type: &'static str,
    /// A quoted content hash.
    etag: &'static str,
    /// The gzipped representation's (a different body, so a different tag).
    etag_gzip: &'static str,
}

/// Every file of the built UI; empty when `ui/dist` was not built.
static ASSETS: &[Asset] = include!(concat!(env!("OUT_DIR"), "/ui_assets.rs"));

/// Files whose names carry their content hash (esbuild's `[name]-[hash]`): cached for good.
const HASHED_DIR: &str = "assets/";

/// Same-origin only: no CDN, no inline script. uPlot and Preact set inline styles.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

const NOT_BUILT: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Luminate</title></head>\
<body style=\"font-family:sans-serif;max-width:40em;margin:3em auto\"><h1>Luminate</h1>\
<p>This binary was built without its web UI. Build the UI, then the binary again:</p>\
<pre>npm --prefix ui ci &amp;&amp; npm --prefix ui run build\ncargo build --release -p luminate</pre>\
<p>The API works all the same: <a href=\"/api/v1/health\">/api/v1/health</a>.</p></body></html>";

/// `GET /`, `GET /ui`, `GET /ui/` and everything under it.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(|| async { Redirect::temporary("/ui/") }))
        .route(PREFIX, get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(|headers: HeaderMap| async move { serve("", &headers) }))
        .route(
            "/ui/{*path}",
            get(|Path(path): Path<String>, headers: HeaderMap| async move { serve(&path, &headers) }),
        )
}

/// The file at `path` (relative to the prefix), or `index.html` for an app route.
fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some(index) = find("index.html") else {
        return not_built();
    };
    let asset = match find(path) {
        Some(asset) => asset,
        // A missing hashed file is a stale page asking for an old build: the app would not help.
        None if path.starts_with(HASHED_DIR) => {
            return (StatusCode::NOT_FOUND, "no such UI asset").into_response();
        }
        None => index,
    };
    respond(asset, headers)
}

fn find(path: &str) -> Option<&'static Asset> {
    let path = if path.is_empty() { "index.html" } else { path };
    ASSETS.iter().find(|a| a.path == path)
}

fn respond(asset: &Asset, headers: &HeaderMap) -> Response {
    let cache = if asset.path.starts_with(HASHED_DIR) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let gzip = asset.gzip.filter(|_| accepts_gzip(headers));
    let (bytes, etag) = match gzip {
        Some(gz) => (gz, asset.etag_gzip),
        None => (asset.bytes, asset.etag),
    };
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = bytes.into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
        if gzip.is_some() {
            response
                .headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        response
    };
    let h = response.headers_mut();
    h.insert(header::ETAG, HeaderValue::from_static(etag));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if asset.gzip.is_some() {
        h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    response
}

fn not_built() -> Response {
    let mut response = (StatusCode::OK, NOT_BUILT).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
