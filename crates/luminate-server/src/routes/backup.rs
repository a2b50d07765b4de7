//! Backup routes (scope `admin`): the storage's snapshots that `luminate backup` downloads
//! (docs/api.md, "Backups"; docs/operations.md). A snapshot pins a consistent set of the backend's
//! files ([`MetricsStore::snapshot`](luminate_model::MetricsStore::snapshot)) until it is released,
//! so the server keeps each one here, leased:
//! - `POST /api/v1/admin/backups[?ttl=10m]` takes one and lists its files (path, size, CRC-32C);
//! - `GET /api/v1/admin/backups/{id}/files/{path}` streams one file, exactly its listed bytes;
//! - `DELETE /api/v1/admin/backups/{id}` releases it;
//! - `GET /api/v1/admin/backups` lists those held.
//!
//! A snapshot no request has touched for its `ttl`, with no download in progress, is released by
//! itself, so a client that died does not pin files forever (every request to it, and every byte a
//! download sends, renews the lease). At most [`MAX_SNAPSHOTS`] are held at once: each holds the disk
//! space of what the backend replaces meanwhile.
//!
//! A snapshot holds every tenant's data: the routes are not tenant-scoped, and an `admin` token of any
//! tenant may take one (docs/operations.md says so). They are outside the response deadline: listing
//! checksums reads every pinned byte once, and a file's download lasts as long as it lasts.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use luminate_model::ErrorCode;
use luminate_model::backup::{SnapshotError, StoreSnapshot};
use luminate_model::time::{format_duration, parse_duration};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::error::ApiError;
use crate::tenant::RequestTenant;

/// Snapshots held at once at most.
pub const MAX_SNAPSHOTS: usize = 4;
/// A snapshot's lease when the request names none.
pub const DEFAULT_TTL: Duration = Duration::from_secs(600);
/// The longest lease a request may ask for.
pub const MAX_TTL: Duration = Duration::from_secs(86_400);
/// Bytes read from a pinned file per chunk of a download.
const CHUNK_BYTES: usize = 256 << 10;
/// The header carrying a streamed file's CRC-32C (8 hex digits), as listed.
pub const CRC32C_HEADER: &str = "x-luminate-crc32c";

/// The snapshots the server holds, by id.
#[derive(Clone, Default)]
pub struct Snapshots {
    held: Arc<Mutex<HashMap<String, Arc<Held>>>>,
}

/// One held snapshot and its lease.
struct Held {
    snapshot: Arc<dyn StoreSnapshot>,
    ttl: Duration,
    lease: Mutex<Lease>,
}

/// When a snapshot was last used, and the downloads running.
struct Lease {
    last_used: Instant,
    downloads: usize,
}

impl Held {
    fn lease(&self) -> std::sync::MutexGuard<'_, Lease> {
        self.lease.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn touch(&self) {
        self.lease().last_used = Instant::now();
    }

    /// Time left before it expires; `None` while a download runs.
    fn expires_in(&self) -> Option<Duration> {
        let lease = self.lease();
        (lease.downloads == 0).then(|| self.ttl.saturating_sub(lease.last_used.elapsed()))
    }

    fn total_bytes(&self) -> u64 {
        self.snapshot.files().iter().map(|f| f.size).sum()
    }
}

/// Counts a download in progress for as long as it lives (the lease cannot expire meanwhile).
struct Download(Arc<Held>);

impl Download {
    fn start(held: Arc<Held>) -> Self {
        {
            let mut lease = held.lease();
            lease.downloads += 1;
            lease.last_used = Instant::now();
        }
        Self(held)
    }
}

impl Drop for Download {
    fn drop(&mut self) {
        let mut lease = self.0.lease();
        lease.downloads -= 1;
        lease.last_used = Instant::now();
    }
}

impl Snapshots {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Held>>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The snapshot `id`, its lease renewed; `404` when it is not held.
    fn get(&self, id: &str) -> Result<Arc<Held>, ApiError> {
        let held = self.map().get(id).cloned().ok_or_else(|| not_held(id))?;
        held.touch();
        Ok(held)
    }

    /// Removes `id`; its files are unpinned once the last download of it ends.
    fn remove(&self, id: &str) -> Option<Arc<Held>> {
        self.map().remove(id)
    }

    /// Releases `id` if its lease ran out; false once it is no longer held (expired or released).
    fn expire(&self, id: &str) -> bool {
        let mut map = self.map();
        let Some(held) = map.get(id) else {
            return false;
        };
        if held.expires_in() != Some(Duration::ZERO) {
            return true;
        }
        let held = map.remove(id);
        drop(map);
        tracing::info!(id, "backup snapshot expired: released");
        release(held);
        false
    }
}

/// Drops a snapshot on the blocking pool: unpinning removes its files.
fn release(held: Option<Arc<Held>>) {
    if let Some(held) = held {
        tokio::task::spawn_blocking(move || drop(held));
    }
}

/// Watches `id` until it is released, releasing it once its lease runs out.
fn watch(snapshots: Weak<Mutex<HashMap<String, Arc<Held>>>>, id: String, ttl: Duration) {
    let every = (ttl / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(held) = snapshots.upgrade() else {
                return;
            };
            if !(Snapshots { held }).expire(&id) {
                return;
            }
        }
    });
}

fn not_held(id: &str) -> ApiError {
    ApiError::not_found(format!(
        "no backup snapshot {id:?} is held: it was released, it expired, or the server restarted"
    ))
}

/// Query string of `POST /api/v1/admin/backups`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateParams {
    /// The lease (`90s`, `10m`, `1h`).
    ttl: Option<String>,
}

/// `POST /api/v1/admin/backups[?ttl=10m]`: takes a snapshot, answers `201` with its files.
#[utoipa::path(
    post,
    path = "/api/v1/admin/backups",
    operation_id = "createBackup",
    tag = "admin",
    summary = "Take an online snapshot of the embedded engine for a backup",
    description = "Pins the parts, WAL and series log by hard links until released, or until `ttl` passes without a request to it. Copies every tenant's data (docs/operations.md, \"Backups\").",
    params(("ttl" = Option<String>, Query, example = "10m", description = "The lease, from `1s` to `1h`; default `10m`.")),
    responses(
        (status = 201, description = "Held: its files, with sizes and CRC-32C.", body = crate::openapi::schemas::BackupSnapshot),
        (status = 400, description = "`INVALID_REQUEST` (`ttl`), or `UNSUPPORTED` on the ClickHouse backend.", body = crate::openapi::schemas::ErrorBody),
        (status = 409, description = "`CONFLICT`: 4 snapshots are already held.", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn create(
    State(state): State<Arc<AppState>>,
    RequestTenant(tenant): RequestTenant,
    params: Result<Query<CreateParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params?;
    let ttl = match params.ttl.as_deref() {
        None => DEFAULT_TTL,
        Some(text) => parse_duration(text)
            .ok()
            .filter(|d| (Duration::from_secs(1)..=MAX_TTL).contains(d))
            .ok_or_else(|| {
                ApiError::invalid_request(format!(
                    "ttl: {text:?} is not a duration from 1s to {}",
                    format_duration(MAX_TTL)
                ))
            })?,
    };
    let full = || {
        ApiError::new(
            ErrorCode::Conflict,
            format!(
                "{MAX_SNAPSHOTS} backup snapshots are already held: release one \
                 (DELETE /api/v1/admin/backups/{{id}}) or wait for it to expire"
            ),
        )
        .with_details(json!({"max_snapshots": MAX_SNAPSHOTS}))
    };
    if state.backups.map().len() >= MAX_SNAPSHOTS {
        return Err(full());
    }
    let snapshot = state.store.snapshot().await.map_err(|e| match e {
        SnapshotError::Unsupported { backend, message } => {
            ApiError::new(ErrorCode::Unsupported, message).with_details(json!({"backend": backend}))
        }
        SnapshotError::Store(e) => e.into(),
    })?;
    let id = snapshot.id().to_owned();
    let held = Arc::new(Held {
        snapshot,
        ttl,
        lease: Mutex::new(Lease {
            last_used: Instant::now(),
            downloads: 0,
        }),
    });
    let body = describe(&id, &held, state.store.backend_name());
    {
        let mut map = state.backups.map();
        if map.len() >= MAX_SNAPSHOTS {
            drop(map);
            release(Some(held));
            return Err(full());
        }
        map.insert(id.clone(), Arc::clone(&held));
    }
    watch(Arc::downgrade(&state.backups.held), id.clone(), ttl);
    tracing::info!(
        %tenant, id, files = held.snapshot.files().len(), bytes = held.total_bytes(),
        "backup snapshot taken"
    );
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// The JSON of a held snapshot.
fn describe(id: &str, held: &Held, backend: &str) -> Value {
    let files: Vec<Value> = held
        .snapshot
        .files()
        .iter()
        .map(|f| json!({"path": f.path, "size": f.size, "crc32c": format!("{:08x}", f.crc32c)}))
        .collect();
    json!({
        "id": id,
        "backend": backend,
        "ttl_seconds": held.ttl.as_secs(),
        "total_bytes": held.total_bytes(),
        "files": files,
    })
}

/// `GET /api/v1/admin/backups`: the snapshots held, without their file lists.
#[utoipa::path(
    get,
    path = "/api/v1/admin/backups",
    operation_id = "listBackups",
    tag = "admin",
    summary = "The backup snapshots held",
    responses((status = 200, description = "Sorted by id.", body = crate::openapi::schemas::BackupList)),
    security(("bearer" = ["admin"])),
)]
pub async fn list(State(state): State<Arc<AppState>>) -> Json<Value> {
    let mut held: Vec<(String, Arc<Held>)> = state
        .backups
        .map()
        .iter()
        .map(|(id, h)| (id.clone(), Arc::clone(h)))
        .collect();
    held.sort_by(|a, b| a.0.cmp(&b.0));
    let backups: Vec<Value> = held
        .iter()
        .map(|(id, h)| {
            json!({
                "id": id,
                "files": h.snapshot.files().len(),
                "total_bytes": h.total_bytes(),
                "ttl_seconds": h.ttl.as_secs(),
                "downloads": h.lease().downloads,
                "expires_in_seconds": h.expires_in().map(|d| d.as_secs()),
            })
        })
        .collect();
    Json(json!({ "backups": backups }))
}

/// `DELETE /api/v1/admin/backups/{id}`: releases the snapshot.
#[utoipa::path(
    delete,
    path = "/api/v1/admin/backups/{id}",
    operation_id = "releaseBackup",
    tag = "admin",
    summary = "Release a backup snapshot",
    params(("id" = String, Path, description = "The snapshot's id.")),
    responses(
        (status = 200, description = "Released: its links are removed.", body = crate::openapi::schemas::BackupReleased),
        (status = 404, description = "`NOT_FOUND`: no such snapshot is held.", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn delete(
    State(state): State<Arc<AppState>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(id) = id?;
    let held = state.backups.remove(&id).ok_or_else(|| not_held(&id))?;
    release(Some(held));
    tracing::info!(id, "backup snapshot released");
    Ok(Json(json!({"id": id, "released": true})))
}

/// `GET /api/v1/admin/backups/{id}/files/{path}`: one file's listed bytes, streamed.
#[utoipa::path(
    get,
    path = "/api/v1/admin/backups/{id}/files/{path}",
    operation_id = "downloadBackupFile",
    tag = "admin",
    summary = "Download one file of a backup snapshot",
    params(
        ("id" = String, Path, description = "The snapshot's id."),
        ("path" = String, Path, description = "The file's path as listed (`parts/0000000042.part`)."),
    ),
    responses(
        (status = 200, description = "The file's listed bytes.", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 404, description = "`NOT_FOUND`: no such snapshot, or it holds no such file.", body = crate::openapi::schemas::ErrorBody),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn file(
    State(state): State<Arc<AppState>>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path((id, path)) = path?;
    let held = state.backups.get(&id)?;
    let Some(listed) = held
        .snapshot
        .files()
        .iter()
        .find(|f| f.path == path)
        .cloned()
    else {
        return Err(ApiError::not_found(format!(
            "backup snapshot {id:?} holds no file {path:?}"
        )));
    };
    let download = Download::start(Arc::clone(&held));
    let reader = tokio::task::spawn_blocking(move || held.snapshot.open(&path))
        .await
        .map_err(|e| ApiError::internal(format!("opening a snapshot file failed: {e}")))??
        .ok_or_else(|| ApiError::internal("a listed snapshot file could not be opened"))?;
    let stream = futures_util::stream::unfold(Some((reader, download)), |state| async move {
        let (mut reader, download) = state?;
        let read = tokio::task::spawn_blocking(move || {
            let mut chunk = vec![0u8; CHUNK_BYTES];
            let n = reader.read(&mut chunk)?;
            chunk.truncate(n);
            Ok::<_, std::io::Error>((reader, chunk))
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r);
        match read {
            Ok((_, chunk)) if chunk.is_empty() => None,
            Ok((reader, chunk)) => {
                download.0.touch();
                Some((Ok(Bytes::from(chunk)), Some((reader, download))))
            }
            // The body ends short of its Content-Length: the client sees the file incomplete.
            Err(e) => Some((Err(e), None)),
        }
    });
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, listed.size.into());
    if let Ok(crc) = header::HeaderValue::from_str(&format!("{:08x}", listed.crc32c)) {
        headers.insert(CRC32C_HEADER, crc);
    }
    Ok(response)
}
