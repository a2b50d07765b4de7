//! Records the compiler's version for `luminate_build_info{rustc}` (crate `telemetry`), and embeds the
//! built web UI (`ui/dist` at the workspace root, made by `npm --prefix ui run build`) into
//! the binary: writes `$OUT_DIR/ui_assets.rs`, a table of every file with its bytes (`include_bytes!`),
//! content type and ETag, which `src/ui.rs` includes. Without a built UI the table is empty and the
//! server answers `/ui/` with a page saying how to build it, so `cargo build` never needs node.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

fn main() {
    record_rustc_version();
    embed_ui();
    println!("cargo:rerun-if-changed=build.rs");
}

fn record_rustc_version() {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map_or_else(|| "unknown".to_owned(), |v| v.trim().to_owned());
    println!("cargo:rustc-env=LUMINATE_RUSTC_VERSION={version}");
    println!("cargo:rerun-if-env-changed=RUSTC");
}

fn embed_ui() {
    let manifest =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let ui = manifest.join("../../ui");
    let dist = ui.join("dist");
    let mut files = Vec::new();
    if dist.join("index.html").is_file() {
        collect(&dist, &dist, &mut files);
        // A directory is watched recursively: a rebuilt UI re-embeds.
        println!("cargo:rerun-if-changed={}", dist.display());
    } else if ui.is_dir() {
        // Watching `ui/` (not the missing `dist/`, which would rerun this script on every build) sees
        // the first `npm run build` create `dist/`.
        println!("cargo:rerun-if-changed={}", ui.display());
    }
    files.sort();

    // `X.gz` beside `X` is X's gzip (ui/build.mjs): embedded with it, not served under its own name.
    let served: Vec<&(String, PathBuf)> = files
        .iter()
        .filter(|(relative, _)| !relative.ends_with(".gz"))
        .collect();
    let mut table = String::from("&[\n");
    for (relative, path) in served {
        let bytes = fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let etag = fnv1a(&bytes);
        let gzip = files
            .iter()
            .find(|(r, _)| *r == format!("{relative}.gz"))
            .map_or_else(
                || "None".to_owned(),
                |(_, gz)| format!("Some(include_bytes!({:?}))", absolute(gz)),
            );
        let _ = writeln!(
            table,
            "    Asset {{ path: {relative:?}, bytes: include_bytes!({:?}), gzip: {gzip}, content_type: {:?}, etag: \"\\\"{etag:016x}\\\"\", etag_gzip: \"\\\"{etag:016x}-gzip\\\"\" }},",
            absolute(path),
            content_type(relative),
        );
    }
    table.push(']');
    let out =
        PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("ui_assets.rs");
    fs::write(&out, table).unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
}

/// `path` in full, for `include_bytes!`.
fn absolute(path: &Path) -> String {
    fs::canonicalize(path)
        .unwrap_or_else(|e| panic!("resolving {}: {e}", path.display()))
        .display()
        .to_string()
}

/// Every file under `dir`, as (path relative to `root` with `/` separators, full path).
fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()));
    for entry in entries {
        let path = entry
            .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
            .path();
        if path.is_dir() {
            collect(root, &path, files);
        } else if let Ok(relative) = path.strip_prefix(root) {
            let relative = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            files.push((relative, path));
        }
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// FNV-1a, 64 bits: a content hash for the ETag, stable across builds and toolchains.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
