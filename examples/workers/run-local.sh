#!/usr/bin/env bash
# Builds the example Worker for wasm32 and serves it with `wrangler dev` (local D1) on
# 127.0.0.1:PORT, printing a line with READY once /mcp answers. Installs what is missing into a
# cache folder first (see toolchain.sh). Stops with Ctrl-C; `--build-only` stops after building;
# other arguments go to `wrangler dev` (e.g. `--var MCP_ANALYTICS_ENABLED:false`).
#
#   examples/workers/run-local.sh 8787
#
# MCP_ANALYTICS_API_KEY (default: a fresh random key, printed) guards /analytics; local D1 lives
# in WORKERS_STATE_DIR (default examples/workers/.wrangler/state).
# MCP_OAUTH_* variables set in the environment are passed to the Worker (OAuth on /mcp).
set -euo pipefail

port="${1:?usage: run-local.sh PORT [--build-only | wrangler dev arguments…]}"
shift
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
say() { echo "[run-local] $*" >&2; }

# shellcheck source=toolchain.sh
source "$here/toolchain.sh"
workers_toolchain "$here/Cargo.lock"

build="$here/build"
target="${WORKERS_TARGET_DIR:-$repo/target/workers}"
say "building the Worker (wasm32-unknown-unknown, release)"
(cd "$here" && CARGO_TARGET_DIR="$target" workers_cargo build --release --locked -q)
wasm="$target/wasm32-unknown-unknown/release/mcp_analytics_worker_example.wasm"
rm -rf "$build" && mkdir -p "$build"
"$WASM_BINDGEN" --target module --out-dir "$build" --out-name index "$wasm"
# workerd imports a .wasm file as a WebAssembly.Module: a plain import, not a source-phase one.
sed -i 's/^import source wasmModule/import wasmModule/' "$build/index.js"
"$WASM_OPT" -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-reference-types --enable-multivalue \
  "$build/index_bg.wasm" -o "$build/index_bg.wasm"
cat >"$build/shim.mjs" <<'JS'
import * as worker from "./index.js";
export default {
  fetch: (request, env, ctx) => worker.fetch(request, env, ctx),
};
JS
say "wasm: $(stat -c %s "$build/index_bg.wasm") bytes after wasm-opt, $(gzip -9c "$build/index_bg.wasm" | wc -c) gzipped"
[[ "${1:-}" == "--build-only" ]] && exit 0

export WRANGLER_SEND_METRICS=false CI="${CI:-1}"
cd "$here"
# Local D1 and the rest of wrangler's state; the smoke tests start from an empty one.
state="${WORKERS_STATE_DIR:-$here/.wrangler/state}"
"$WRANGLER" d1 migrations apply MCP_ANALYTICS_DB --local --persist-to "$state" >&2 <<<"y"
key="${MCP_ANALYTICS_API_KEY:-$(head -c 24 /dev/urandom | base64 | tr -d '/+=')}"
[[ -n "${MCP_ANALYTICS_API_KEY:-}" ]] || say "MCP_ANALYTICS_API_KEY for /analytics/api: $key"
vars=(--var "MCP_ANALYTICS_API_KEY:$key")
while IFS='=' read -r name value; do
  vars+=(--var "$name:$value")
done < <(env | grep '^MCP_OAUTH_' || true)
"$WRANGLER" dev --ip 127.0.0.1 --port "$port" --persist-to "$state" "${vars[@]}" "$@" >&2 &
wrangler_pid=$!
trap 'kill "$wrangler_pid" 2>/dev/null; wait "$wrangler_pid" 2>/dev/null' EXIT INT TERM
ping='{"jsonrpc":"2.0","id":0,"method":"ping"}'
for _ in $(seq 1 240); do
  # 200, or 401 when OAuth guards /mcp.
  status="$(curl -sS -m 2 -o /dev/null -w '%{http_code}' -H 'content-type: application/json' \
    -H 'accept: application/json, text/event-stream' -d "$ping" "http://127.0.0.1:$port/mcp" 2>/dev/null || true)"
  if [[ "$status" == 200 || "$status" == 401 ]]; then
    echo "READY: MCP at http://127.0.0.1:$port/mcp, analytics API at http://127.0.0.1:$port/analytics/api/overview"
    wait "$wrangler_pid"
    exit $?
  fi
  kill -0 "$wrangler_pid" 2>/dev/null || { say "wrangler dev exited"; exit 1; }
  sleep 0.5
done
say "the Worker did not answer on 127.0.0.1:$port within 2 minutes"
exit 1
