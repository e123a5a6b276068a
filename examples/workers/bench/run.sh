#!/usr/bin/env bash
# The Worker's figures under workerd (`wrangler dev`, local D1) on this machine: wasm size, the
# time V8 takes to compile the module (the bulk of a cold start), and sequential `tools/call`
# latency with analytics on (every call written to D1 after its response) and off
# (`MCP_ANALYTICS_ENABLED=false`), then what D1 holds after the run. `wrangler dev` adds its own proxy hop: compare the two runs, not the
# absolute figures with Cloudflare's edge.
#   examples/workers/bench/run.sh [CALLS]       # default 500
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
calls="${1:-500}"
port=8795
source "$here/toolchain.sh"
workers_toolchain "$here/Cargo.lock"
"$here/run-local.sh" "$port" --build-only
"$NODE22" -e '
  const bytes = require("fs").readFileSync(process.argv[1]);
  const times = [];
  (async () => {
    for (let i = 0; i < 5; i++) {
      const started = performance.now();
      await WebAssembly.compile(bytes);
      times.push(performance.now() - started);
    }
    times.sort((a, b) => a - b);
    console.log(`wasm: ${bytes.length} bytes; V8 compiles it in ${times[2].toFixed(1)} ms (median of 5)`);
  })();' "$here/build/index_bg.wasm"
for mode in on off; do
  rm -rf "$here/.wrangler/state"
  args=()
  [[ "$mode" == off ]] && args=(--var MCP_ANALYTICS_ENABLED:false)
  log="$(mktemp)"
  "$here/run-local.sh" "$port" "${args[@]}" >"$log" 2>/dev/null &
  server=$!
  for _ in $(seq 1 240); do grep -q READY "$log" && break; sleep 0.5; done
  echo "analytics $mode: $("$NODE22" "$here/bench/calls.mjs" "http://127.0.0.1:$port/mcp" "$calls")"
  if [[ "$mode" == on ]]; then
    sleep 2
    rows="$(cd "$here" && WRANGLER_SEND_METRICS=false "$WRANGLER" d1 execute MCP_ANALYTICS_DB --local --json \
      --command "SELECT (SELECT count(*) FROM tool_calls) AS calls, (SELECT count(*) FROM tool_calls_1m) AS minute_rows, (SELECT count(*) FROM requests) AS requests" 2>/dev/null | tr -d ' \n')"
    echo "D1 after the run: $rows"
  fi
  kill "$server"; wait "$server" 2>/dev/null || true
  rm -f "$log"
done
