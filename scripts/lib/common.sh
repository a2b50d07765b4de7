# Shared set-up for Luminate's scripts: sourced, never run.
# Keeps the cargo build cache outside the clone so repeated runs on one machine reuse builds, and installs
# what the toolchain or tests need when it is missing (a fresh machine must pass with nothing by hand).

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/luminate/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

log() { printf '==> %s\n' "$*" >&2; }

# rustfmt and clippy ship with the machine's toolchain; add them if an older toolchain lacks them.
ensure_toolchain() {
  command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
  for component in rustfmt clippy; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
      log "installing rust component $component"
      rustup component add "$component"
    fi
  done
}

# Installs Debian packages that are missing (root, or sudo when available).
ensure_apt_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  log "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Installs PyPI packages into a virtual environment under the build cache (a system Python may refuse
# `pip install`, PEP 668) and puts its bin/ first on PATH, for the tests that run their programs.
ensure_pip_packages() {
  local venv="$HOME/.cache/luminate/python"
  if [ ! -x "$venv/bin/python" ]; then
    command -v python3 >/dev/null || ensure_apt_packages python3 python3-venv
    log "creating a Python environment for test tools in $venv"
    python3 -m venv "$venv" 2>/dev/null || { ensure_apt_packages python3-venv; python3 -m venv "$venv"; }
  fi
  local missing=()
  for pkg in "$@"; do
    "$venv/bin/python" -m pip show -q "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing PyPI packages: ${missing[*]}"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${missing[@]}"
  fi
  export PATH="$venv/bin:$PATH"
}

# Installs a test fixture's npm packages (DIR/package-lock.json into DIR/node_modules, not committed), again
# only when the lock file changed.
install_npm_fixture() {
  local dir="$1"
  command -v npm >/dev/null || ensure_apt_packages nodejs npm
  if [ ! -f "$dir/node_modules/.package-lock.json" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    log "installing npm packages of $dir (npm ci)"
    npm --prefix "$dir" ci --no-audit --no-fund --loglevel=error
  fi
}

# Builds the web UI (ui/, TypeScript bundled by esbuild) into ui/dist, which the binary embeds at compile
# time: run before cargo builds the binary. Dependencies come from the npm registry per package-lock.json
# (`npm ci`, again only when the lock file changed). node and npm come from Debian when missing.
build_ui() {
  command -v npm >/dev/null || ensure_apt_packages nodejs npm
  if [ ! -f ui/node_modules/.package-lock.json ] || [ ui/package-lock.json -nt ui/node_modules/.package-lock.json ]; then
    log "installing the UI's npm packages (npm ci)"
    npm --prefix ui ci --no-audit --no-fund --loglevel=error
  fi
  log "building the UI (npm run build)"
  npm --prefix ui run build --silent
}
