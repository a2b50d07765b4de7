//! `luminate backup` and `luminate restore`: an online copy of a running server's embedded engine, and
//! a data directory written back from it (docs/cli.md, docs/operations.md "Backups").
//!
//! `backup` asks the server for a snapshot (`POST /api/v1/admin/backups`: every file the engine needs,
//! pinned, with its size and CRC-32C), downloads each file into `DIR/data/`, checking its size and
//! checksum as it arrives, writes the backup's manifest `DIR/backup.json` last (atomically), and
//! releases the snapshot. A backup stopped half way has no `backup.json`, and `restore` refuses it.
//!
//! `restore` checks the backup whole before it writes anything — the manifest's format, every file's
//! presence, size and checksum — refuses a data directory that is not empty, then copies the files,
//! checking each again as it is copied, fsyncs them, and writes the engine's `MANIFEST` last: a
//! restore stopped half way leaves a directory the server refuses to open (data without a manifest).
//!
//! # Layout of a backup (format version 1)
//! ```text
//! DIR/backup.json      {"format": "luminate-backup", "version": 1, "snapshot", "backend", "server",
//!                       "luminate_version", "created_at", "total_bytes",
//!                       "files": [{"path", "size", "crc32c" (8 hex digits)}]}
//! DIR/data/<path>      each file, at its path in the data directory (MANIFEST, parts/, wal/, ...)
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use super::{EXIT_INCOMPLETE, EXIT_OK, ServerArgs, usage_error};

/// `format` of a backup's manifest.
const FORMAT: &str = "luminate-backup";
/// The layout this build writes and reads.
const VERSION: u32 = 1;
/// The backup's manifest, in the backup directory.
const MANIFEST_FILE: &str = "backup.json";
/// The directory of the data directory's files, in the backup directory.
const DATA_DIR: &str = "data";
/// The engine's manifest: restored last.
const ENGINE_MANIFEST: &str = "MANIFEST";
/// Bytes copied at a time.
const BUFFER_BYTES: usize = 1 << 20;
/// Longest wait for any one read from the server: the snapshot's answer comes after the server has
/// checksummed every file it pins.
const READ_TIMEOUT: Duration = Duration::from_secs(600);

/// `luminate backup` arguments.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The directory to write the backup into: created, or empty.
    #[arg(short = 'o', long = "output")]
    output: PathBuf,
    /// How long the server keeps the snapshot pinned without a request to it (each download renews
    /// it), should this command die before releasing it.
    #[arg(long, default_value = "10m")]
    ttl: String,
    /// No progress bar, even on a terminal.
    #[arg(long)]
    no_progress: bool,
}

/// `luminate restore` arguments.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// A directory written by `luminate backup`.
    backup: PathBuf,
    /// The data directory to write: created, or empty.
    data_dir: PathBuf,
    /// No progress bar, even on a terminal.
    #[arg(long)]
    no_progress: bool,
}

/// A backup's manifest (`backup.json`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackupManifest {
    format: String,
    version: u32,
    /// The server's snapshot id.
    snapshot: String,
    /// The storage backend (`embedded`).
    backend: String,
    /// The server's URL.
    server: String,
    /// The version of the `luminate` that wrote the backup.
    luminate_version: String,
    /// When the snapshot was taken (RFC 3339).
    created_at: String,
    total_bytes: u64,
    files: Vec<FileEntry>,
}

/// One file of a backup.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    path: String,
    size: u64,
    /// CRC-32C, 8 hex digits.
    crc32c: String,
}

impl FileEntry {
    fn crc(&self) -> Result<u32, String> {
        u32::from_str_radix(&self.crc32c, 16)
            .ok()
            .filter(|_| self.crc32c.len() == 8)
            .ok_or_else(|| {
                format!(
                    "{}: crc32c {:?} is not 8 hex digits",
                    self.path, self.crc32c
                )
            })
    }
}

/// The answer of `POST /api/v1/admin/backups`.
#[derive(Debug, Deserialize)]
struct SnapshotAnswer {
    id: String,
    backend: String,
    total_bytes: u64,
    files: Vec<FileEntry>,
}

/// Runs `luminate backup`.
pub fn run_backup(args: BackupArgs) -> ExitCode {
    let ttl = match luminate_model::time::parse_duration(&args.ttl) {
        Ok(ttl) => ttl,
        Err(e) => return usage_error("backup", &format!("--ttl {:?}: {e}", args.ttl)),
    };
    if let Err(message) = prepare_output(&args.output) {
        return usage_error("backup", &message);
    }
    let progress = !args.no_progress && io::stderr().is_terminal();
    let server = Server::new(&args.server);
    let started = Instant::now();
    let snapshot = match server.take_snapshot(ttl) {
        Ok(snapshot) => snapshot,
        Err(message) => {
            eprintln!("luminate backup: {message}");
            return ExitCode::from(EXIT_INCOMPLETE);
        }
    };
    let result = download(&server, &args, &snapshot, progress);
    // Released whatever happened: the files are written, or the backup failed.
    if let Err(message) = server.release(&snapshot.id) {
        eprintln!(
            "luminate backup: warning: could not release snapshot {} ({message}); it expires by itself",
            snapshot.id
        );
    }
    match result {
        Ok(()) => {
            if progress {
                eprintln!(
                    "backup {}: {} files, {} in {:.1} s, in {}",
                    snapshot.id,
                    snapshot.files.len(),
                    bytes(snapshot.total_bytes),
                    started.elapsed().as_secs_f64(),
                    args.output.display()
                );
            }
            ExitCode::from(EXIT_OK)
        }
        Err(message) => {
            eprintln!(
                "luminate backup: {message}; {} is not a complete backup (it has no {MANIFEST_FILE}, \
                 so `luminate restore` refuses it)",
                args.output.display()
            );
            ExitCode::from(EXIT_INCOMPLETE)
        }
    }
}

/// Creates the output directory, or checks it is empty (a backup that failed before its first file
/// leaves it empty, so the same command can run again).
fn prepare_output(dir: &Path) -> Result<(), String> {
    if dir.exists() && !is_empty_dir(dir)? {
        return Err(format!(
            "-o {}: the directory is not empty; a backup is written into a new or empty directory",
            dir.display()
        ));
    }
    fs::create_dir_all(dir).map_err(|e| format!("-o {}: cannot create it: {e}", dir.display()))
}

/// Whether `dir` is a directory with no entry.
fn is_empty_dir(dir: &Path) -> Result<bool, String> {
    let mut entries =
        fs::read_dir(dir).map_err(|e| format!("{}: cannot list it: {e}", dir.display()))?;
    Ok(entries.next().is_none())
}

/// Downloads every file of the snapshot, then writes the backup's manifest.
fn download(
    server: &Server,
    args: &BackupArgs,
    snapshot: &SnapshotAnswer,
    progress: bool,
) -> Result<(), String> {
    let bar = progress.then(|| bar(snapshot.total_bytes));
    let data = args.output.join(DATA_DIR);
    for (i, file) in snapshot.files.iter().enumerate() {
        let to = data.join(safe_path(&file.path)?);
        if let Some(bar) = &bar {
            bar.set_message(format!("files {}/{}", i + 1, snapshot.files.len()));
        }
        server.download(&snapshot.id, file, &to, bar.as_ref())?;
    }
    sync_dirs(&data)?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let manifest = BackupManifest {
        format: FORMAT.to_owned(),
        version: VERSION,
        snapshot: snapshot.id.clone(),
        backend: snapshot.backend.clone(),
        server: args.server.url.clone(),
        luminate_version: env!("CARGO_PKG_VERSION").to_owned(),
        created_at: luminate_model::time::format_rfc3339(luminate_model::time::now_ms()),
        total_bytes: snapshot.total_bytes,
        files: snapshot.files.clone(),
    };
    let text = serde_json::to_vec_pretty(&manifest).map_err(|e| e.to_string())?;
    write_atomic(&args.output.join(MANIFEST_FILE), &text)
}

/// A progress bar of bytes, with the files done as its message.
fn bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{bytes}/{total_bytes} ({binary_bytes_per_sec}, {elapsed}) {msg}",
    ) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// `path` from a snapshot or a backup as a relative path with only normal components: a listing
/// must not write outside the directory it is written under.
fn safe_path(path: &str) -> Result<PathBuf, String> {
    let relative = Path::new(path);
    let normal = !path.is_empty()
        && relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
    if normal {
        Ok(relative.to_path_buf())
    } else {
        Err(format!(
            "file path {path:?} is not a relative path inside the data directory"
        ))
    }
}

/// The server, over one keep-alive connection.
struct Server {
    agent: ureq::Agent,
    base: String,
    authorization: Option<String>,
    attempts: u32,
}

impl Server {
    fn new(args: &ServerArgs) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_per_read(Some(READ_TIMEOUT))
            .build()
            .into();
        Self {
            agent,
            base: args.url.trim_end_matches('/').to_owned(),
            authorization: args.token.as_ref().map(|t| format!("Bearer {}", t.trim())),
            attempts: args.attempts.max(1),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `METHOD url` with the token, retrying failed connections, `429` and `503` (after their
    /// `Retry-After`, at most 30 s) up to the attempts allowed; the last answer or error.
    fn exchange(
        &self,
        method: &str,
        path: &str,
    ) -> Result<ureq::http::Response<ureq::Body>, String> {
        let url = self.url(path);
        let mut attempt = 1;
        let mut backoff = Duration::from_millis(250);
        loop {
            let mut request = ureq::http::Request::builder().method(method).uri(&url);
            if let Some(authorization) = &self.authorization {
                request = request.header("Authorization", authorization);
            }
            let request = request
                .body(())
                .map_err(|e| format!("{method} {url}: {e}"))?;
            let outcome = self
                .agent
                .run(request)
                .map_err(|e| format!("{method} {url}: {e}"));
            let wait = match &outcome {
                Ok(response) if matches!(response.status().as_u16(), 429 | 503) => response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse().ok())
                    .map_or(backoff, Duration::from_secs),
                Ok(_) => return outcome,
                Err(_) => backoff,
            };
            if attempt >= self.attempts {
                return outcome;
            }
            std::thread::sleep(wait.min(super::client::MAX_BACKOFF));
            backoff = (backoff * 2).min(super::client::MAX_BACKOFF);
            attempt += 1;
        }
    }

    /// Takes a snapshot with a lease of `ttl`.
    fn take_snapshot(&self, ttl: Duration) -> Result<SnapshotAnswer, String> {
        let path = format!("/api/v1/admin/backups?ttl={}s", ttl.as_secs().max(1));
        let mut response = self.exchange("POST", &path)?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(256 << 20)
            .read_to_string()
            .map_err(|e| format!("POST {}: reading the answer: {e}", self.url(&path)))?;
        if status != 201 {
            return Err(format!(
                "the server took no snapshot: {}",
                error_message(status, &body)
            ));
        }
        serde_json::from_str(&body).map_err(|e| {
            format!(
                "POST {}: the answer is not a snapshot: {e}",
                self.url(&path)
            )
        })
    }

    /// Downloads one file to `to`, checking its size and checksum, and fsyncs it.
    fn download(
        &self,
        id: &str,
        file: &FileEntry,
        to: &Path,
        bar: Option<&ProgressBar>,
    ) -> Result<(), String> {
        let expected = file.crc()?;
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| format!("{}: cannot create it: {e}", parent.display()))?;
        }
        let path = format!("/api/v1/admin/backups/{id}/files/{}", file.path);
        let mut response = self.exchange("GET", &path)?;
        let status = response.status().as_u16();
        if status != 200 {
            let body = response
                .body_mut()
                .with_config()
                .limit(1 << 20)
                .read_to_string()
                .unwrap_or_default();
            return Err(format!(
                "downloading {}: {}",
                file.path,
                error_message(status, &body)
            ));
        }
        let reader = response.body_mut().with_config().limit(u64::MAX).reader();
        let out =
            File::create(to).map_err(|e| format!("{}: cannot create it: {e}", to.display()))?;
        let (size, crc) = copy_checked(reader, out, to, bar)
            .map_err(|e| format!("downloading {}: {e}", file.path))?;
        check(&file.path, size, crc, file.size, expected)
    }

    /// Releases the snapshot.
    fn release(&self, id: &str) -> Result<(), String> {
        let mut response = self.exchange("DELETE", &format!("/api/v1/admin/backups/{id}"))?;
        let status = response.status().as_u16();
        if status == 200 {
            return Ok(());
        }
        let body = response.body_mut().read_to_string().unwrap_or_default();
        Err(error_message(status, &body))
    }
}

/// `STATUS CODE: message` of a contract error, or the body as it came.
fn error_message(status: u16, body: &str) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    match parsed.as_ref().map(|b| &b["error"]) {
        Some(error) if error.is_object() => format!(
            "{status} {}: {}",
            error["code"].as_str().unwrap_or("ERROR"),
            error["message"].as_str().unwrap_or("")
        ),
        _ => format!("{status} {}", body.trim()),
    }
}

/// Copies `reader` into `out` (then fsyncs it); returns the bytes copied and their CRC-32C.
fn copy_checked(
    mut reader: impl Read,
    mut out: File,
    to: &Path,
    bar: Option<&ProgressBar>,
) -> Result<(u64, u32), String> {
    let mut buffer = vec![0u8; BUFFER_BYTES];
    let (mut size, mut crc) = (0u64, 0u32);
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("reading after {size} bytes: {e}")),
        };
        out.write_all(&buffer[..n])
            .map_err(|e| format!("{}: {e}", to.display()))?;
        crc = crc32c::crc32c_append(crc, &buffer[..n]);
        size += n as u64;
        if let Some(bar) = bar {
            bar.inc(n as u64);
        }
    }
    out.sync_all()
        .map_err(|e| format!("{}: fsync: {e}", to.display()))?;
    Ok((size, crc))
}

/// Compares what was read with what was listed.
fn check(path: &str, size: u64, crc: u32, want_size: u64, want_crc: u32) -> Result<(), String> {
    if size != want_size {
        return Err(format!(
            "{path}: {size} bytes where {want_size} were listed"
        ));
    }
    if crc != want_crc {
        return Err(format!(
            "{path}: CRC-32C {crc:08x} where {want_crc:08x} was listed (the file was changed or damaged)"
        ));
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically: temp file, fsync, rename, fsync of the directory.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("json.tmp");
    let mut file =
        File::create(&tmp).map_err(|e| format!("{}: cannot create it: {e}", tmp.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// fsyncs a directory, so the entries made in it survive a power loss.
fn sync_dir(dir: &Path) -> Result<(), String> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("{}: fsync: {e}", dir.display()))
}

/// fsyncs `dir` and every directory below it.
fn sync_dirs(dir: &Path) -> Result<(), String> {
    for entry in fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            sync_dirs(&entry.path())?;
        }
    }
    sync_dir(dir)
}

/// A human size: bytes, KiB, MiB or GiB.
fn bytes(n: u64) -> String {
    let n = n as f64;
    match n {
        n if n >= (1u64 << 30) as f64 => format!("{:.2} GiB", n / (1u64 << 30) as f64),
        n if n >= (1u64 << 20) as f64 => format!("{:.1} MiB", n / (1u64 << 20) as f64),
        n if n >= 1024.0 => format!("{:.1} KiB", n / 1024.0),
        n => format!("{n} bytes"),
    }
}

/// Runs `luminate restore`.
pub fn run_restore(args: RestoreArgs) -> ExitCode {
    match restore(&args) {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(message) => {
            eprintln!("luminate restore: {message}");
            ExitCode::from(EXIT_INCOMPLETE)
        }
    }
}

fn restore(args: &RestoreArgs) -> Result<(), String> {
    let started = Instant::now();
    let manifest = read_manifest(&args.backup)?;
    if args.data_dir.exists() && !is_empty_dir(&args.data_dir)? {
        return Err(format!(
            "{} is not empty: restore writes a new data directory, and refuses to mix a backup \
             with what is there (move it aside or name another directory). Nothing was written.",
            args.data_dir.display()
        ));
    }
    let data = args.backup.join(DATA_DIR);
    verify(&manifest, &data)?;
    fs::create_dir_all(&args.data_dir)
        .map_err(|e| format!("{}: cannot create it: {e}", args.data_dir.display()))?;
    let progress = !args.no_progress && io::stderr().is_terminal();
    let bar = progress.then(|| bar(manifest.total_bytes));
    // The engine's manifest last: until it is there, a server refuses the directory (data without a
    // manifest) rather than open half a restore.
    let (last, first): (Vec<&FileEntry>, Vec<&FileEntry>) = manifest
        .files
        .iter()
        .partition(|f| f.path == ENGINE_MANIFEST);
    for (i, file) in first.iter().chain(&last).enumerate() {
        if let Some(bar) = &bar {
            bar.set_message(format!("files {}/{}", i + 1, manifest.files.len()));
        }
        let relative = safe_path(&file.path)?;
        let to = args.data_dir.join(&relative);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| format!("{}: cannot create it: {e}", parent.display()))?;
        }
        let from = data.join(&relative);
        let reader = File::open(&from).map_err(|e| format!("{}: {e}", from.display()))?;
        let out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&to)
            .map_err(|e| format!("{}: cannot create it: {e}", to.display()))?;
        let (size, crc) = copy_checked(reader, out, &to, bar.as_ref())?;
        check(&file.path, size, crc, file.size, file.crc()?)?;
        if file.path == ENGINE_MANIFEST {
            sync_dirs(&args.data_dir)?;
        }
    }
    sync_dirs(&args.data_dir)?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
        eprintln!(
            "restored backup {} ({} files, {}) into {} in {:.1} s",
            manifest.snapshot,
            manifest.files.len(),
            bytes(manifest.total_bytes),
            args.data_dir.display(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Reads and checks a backup's manifest.
fn read_manifest(backup: &Path) -> Result<BackupManifest, String> {
    let path = backup.join(MANIFEST_FILE);
    let text = match fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound && backup.join(DATA_DIR).is_dir() => {
            return Err(format!(
                "{} has no {MANIFEST_FILE}: it is a backup that did not finish (stopped or failed \
                 half way), not a backup to restore. Take the backup again.",
                backup.display()
            ));
        }
        Err(e) => {
            return Err(format!(
                "{}: {e} (is {} a directory written by `luminate backup`?)",
                path.display(),
                backup.display()
            ));
        }
    };
    let manifest: BackupManifest = serde_json::from_slice(&text)
        .map_err(|e| format!("{}: not a backup manifest: {e}", path.display()))?;
    if manifest.format != FORMAT || manifest.version != VERSION {
        return Err(format!(
            "{}: format {:?} version {}, where this build reads {FORMAT:?} version {VERSION}",
            path.display(),
            manifest.format,
            manifest.version
        ));
    }
    if !manifest.files.iter().any(|f| f.path == ENGINE_MANIFEST) {
        return Err(format!(
            "{}: lists no {ENGINE_MANIFEST}, which every data directory has",
            path.display()
        ));
    }
    Ok(manifest)
}

/// Checks every file of the backup against its manifest (presence, size, CRC-32C), reporting every
/// problem found.
fn verify(manifest: &BackupManifest, data: &Path) -> Result<(), String> {
    let mut problems = Vec::new();
    for file in &manifest.files {
        let outcome = safe_path(&file.path).and_then(|relative| {
            let path = data.join(relative);
            let reader = File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let (size, crc) = checksum(reader).map_err(|e| format!("{}: {e}", path.display()))?;
            check(&file.path, size, crc, file.size, file.crc()?)
        });
        if let Err(problem) = outcome {
            problems.push(problem);
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    let shown = problems.len().min(10);
    Err(format!(
        "the backup does not match its manifest ({} file{} wrong); nothing was written:\n  {}{}",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        problems[..shown].join("\n  "),
        if problems.len() > shown {
            format!("\n  ... and {} more", problems.len() - shown)
        } else {
            String::new()
        }
    ))
}

/// Bytes and CRC-32C of everything `reader` holds.
fn checksum(mut reader: impl Read) -> io::Result<(u64, u32)> {
    let mut buffer = vec![0u8; BUFFER_BYTES];
    let (mut size, mut crc) = (0u64, 0u32);
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => return Ok((size, crc)),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        crc = crc32c::crc32c_append(crc, &buffer[..n]);
        size += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_paths_stay_inside_the_directory() {
        assert!(safe_path("parts/0000000001.part").is_ok());
        assert!(safe_path("dashboards/t/a%2Fb.json").is_ok());
        for bad in ["", "/etc/passwd", "../x", "parts/../../x", "./MANIFEST"] {
            assert!(safe_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_checksum_is_eight_hex_digits() {
        let entry = |crc: &str| FileEntry {
            path: "MANIFEST".into(),
            size: 0,
            crc32c: crc.into(),
        };
        assert_eq!(entry("0000abcd").crc(), Ok(0xabcd));
        assert!(entry("abcd").crc().is_err());
        assert!(entry("xyz00000").crc().is_err());
    }
}
