#!/usr/bin/env bash
# The toolchain a Worker is built with, installed into a cache folder on first use and reused after:
#
# - Debian's `rustc-web`/`cargo-web` 1.96 with the standard library's source (rustup's toolchains here
#   have no wasm32 standard library, so std is built with `-Z build-std`), unpacked into a private
#   prefix with `dpkg-deb -x` (installing `cargo-web` would take `/usr/bin/cargo` from rustup);
# - `wasm-bindgen-cli` at the version in Cargo.lock, built with the machine's stable toolchain;
# - Node 22, `wrangler` (workerd, esbuild, local D1) and `binaryen` (wasm-opt) from npm.
#
# Source it: `source examples/workers/toolchain.sh && workers_toolchain`. It exports `WORKERS_CACHE`,
# `WORKERS_RUSTC`, `WORKERS_CARGO`, `WASM_BINDGEN`, `WRANGLER`, `WASM_OPT`, `NODE22` and puts Node 22 on
# PATH. A second call with everything in place only checks stamps. Messages go to stderr.

WORKERS_RUST_VERSION="1.96.0+dfsg1-1~deb12u2"
WORKERS_LLVM_VERSION="1:22.1.8-1~deb12u1"
WORKERS_WRANGLER_VERSION="4.164.0"
WORKERS_BINARYEN_VERSION="132.0.0"
WORKERS_NODE_VERSION="22"

_workers_say() { echo "[workers toolchain] $*" >&2; }

# Downloads and unpacks Debian's wasm-capable Rust into "$WORKERS_CACHE/rust-web".
_workers_rust() {
  local prefix="$WORKERS_CACHE/rust-web" stamp="$WORKERS_CACHE/rust-web.version"
  local want="$WORKERS_RUST_VERSION $WORKERS_LLVM_VERSION"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$prefix/usr/bin/rustc" ]]; then
    return 0
  fi
  _workers_say "installing Debian's rustc-web $WORKERS_RUST_VERSION into $prefix"
  local rust=(rustc-web cargo-web libstd-rust-web-1.96 libstd-rust-web-dev rust-web-src rust-web-llvm)
  local llvm=(libllvm22 lld-22)
  # cargo's shared libraries, which a machine with rustup's cargo does not have.
  local libs=(libgit2-1.5 libhttp-parser2.9 libmbedcrypto7 libmbedtls14 libmbedx509-1)
  local debs="$WORKERS_CACHE/debs"
  rm -rf "$debs" "$prefix" "$stamp"
  mkdir -p "$debs" "$prefix"
  local pinned=() p
  for p in "${rust[@]}"; do pinned+=("$p=$WORKERS_RUST_VERSION"); done
  for p in "${llvm[@]}"; do pinned+=("$p=$WORKERS_LLVM_VERSION"); done
  # `apt-get download` checks each package against the signed archive index.
  if ! (cd "$debs" && apt-get download -q "${pinned[@]}" "${libs[@]}" >/dev/null 2>&1); then
    apt-get update -qq >/dev/null 2>&1 || true
    if ! (cd "$debs" && apt-get download -q "${pinned[@]}" "${libs[@]}" >/dev/null 2>&1); then
      local now
      now="$(apt-cache policy rustc-web | awk '/Candidate:/ {print $2}')"
      _workers_say "rustc-web $WORKERS_RUST_VERSION has left the Debian mirror; trying the current $now." \
        "If the build fails, set WORKERS_RUST_VERSION and WORKERS_LLVM_VERSION in examples/workers/toolchain.sh" \
        "to versions that \`apt-cache policy rustc-web lld-22\` lists (rustc and its std source must match)."
      (cd "$debs" && apt-get download -q "${rust[@]}" "${llvm[@]}" "${libs[@]}" >/dev/null) ||
        { _workers_say "apt-get download failed: is bookworm-security in the apt sources?"; return 1; }
    fi
  fi
  local deb
  for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$prefix"; done
  rm -rf "$debs"
  echo "$want" >"$stamp"
}

# Builds wasm-bindgen-cli at the version the workspace's Cargo.lock pins for `wasm-bindgen`.
_workers_wasm_bindgen() {
  local lock="$1" version
  version="$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print; exit}' "$lock")"
  [[ -n "$version" ]] || { _workers_say "no wasm-bindgen in $lock"; return 1; }
  local root="$WORKERS_CACHE/wasm-bindgen-$version"
  if [[ ! -x "$root/bin/wasm-bindgen" ]]; then
    _workers_say "building wasm-bindgen-cli $version (about 6 minutes, once)"
    # Without --locked: a pinned dependency of wasm-bindgen-cli's own lock file is gone from the index.
    env -u RUSTC -u CARGO_TARGET_DIR cargo install -q --root "$root" --version "=$version" wasm-bindgen-cli >&2
  fi
  WASM_BINDGEN="$root/bin/wasm-bindgen"
}

# Node 22, wrangler and binaryen from npm.
_workers_node() {
  local dir="$WORKERS_CACHE/node" stamp="$WORKERS_CACHE/node.version"
  local want="node@$WORKERS_NODE_VERSION wrangler@$WORKERS_WRANGLER_VERSION binaryen@$WORKERS_BINARYEN_VERSION"
  if ! [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$dir/node_modules/.bin/wrangler" ]]; then
    _workers_say "installing $want from npm into $dir"
    rm -f "$stamp"
    mkdir -p "$dir"
    [[ -f "$dir/package.json" ]] || (cd "$dir" && npm init -y >/dev/null)
    (cd "$dir" && npm install --no-audit --no-fund --loglevel=error --save-exact \
      "node@$WORKERS_NODE_VERSION" "wrangler@$WORKERS_WRANGLER_VERSION" \
      "binaryen@$WORKERS_BINARYEN_VERSION" >&2)
    echo "$want" >"$stamp"
  fi
  NODE22="$dir/node_modules/node/bin/node"
  WRANGLER="$dir/node_modules/.bin/wrangler"
  WASM_OPT="$dir/node_modules/.bin/wasm-opt"
}

# Installs what is missing and exports the tools' paths. $1: the workspace's Cargo.lock.
workers_toolchain() {
  local lock="${1:-$(git rev-parse --show-toplevel)/Cargo.lock}"
  WORKERS_CACHE="${WORKERS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mcp-analytics-workers}"
  mkdir -p "$WORKERS_CACHE"
  _workers_rust && _workers_wasm_bindgen "$lock" && _workers_node || return 1
  local prefix="$WORKERS_CACHE/rust-web"
  WORKERS_RUSTC="$prefix/usr/bin/rustc"
  WORKERS_CARGO="$prefix/usr/bin/cargo"
  export WORKERS_CACHE WORKERS_RUSTC WORKERS_CARGO WASM_BINDGEN WRANGLER WASM_OPT NODE22
  export PATH="$(dirname "$NODE22"):$PATH"
}

# Runs Debian's cargo with its own rustc and libraries, std built from source for wasm32.
workers_cargo() {
  local prefix="$WORKERS_CACHE/rust-web"
  env -u RUSTUP_TOOLCHAIN PATH="$prefix/usr/bin:$PATH" \
    LD_LIBRARY_PATH="$prefix/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    RUSTC="$WORKERS_RUSTC" RUSTC_BOOTSTRAP=1 "$WORKERS_CARGO" "$@"
}
