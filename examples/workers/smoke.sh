#!/usr/bin/env bash
# The Worker example end to end, as `.ci/run` runs it: builds and serves it with run-local.sh on
# 127.0.0.1, then checks it with real MCP clients and its own analytics API:
# - the official conformance suite's server-initialize, ping and tools-list scenarios;
# - the MCP Inspector calling tools (a sum, a tool error, a credentials call);
# - a paid tool answering payment_required with a checkout on this Worker, the local test
#   checkout paid through its page, the tool then running, D1's payment_events showing it;
# - the analytics API and D1 holding every call, secrets redacted, results of
#   `track_results = false` tools absent;
# - the dashboard at /analytics: the sign-in form, the page signed in, and every API path the
#   page's script reads answering JSON.
# Needs .ci/node-tools.sh's .tools/ (the suite and the Inspector). PORT defaults to 8787.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
port="${1:-8787}"
url="http://127.0.0.1:$port/mcp"
work="$(mktemp -d)"
say() { echo "[workers smoke] $*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

node_bin="$(bash "$repo/.ci/node-tools.sh")"
export PATH="$node_bin:$PATH"
mcp_bin="$repo/.tools/mcp/node_modules/.bin"

export MCP_ANALYTICS_API_KEY="smoke-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export WORKERS_STATE_DIR="$work/state"
"$here/run-local.sh" "$port" >"$work/run-local.out" 2>"$work/run-local.err" &
server=$!
cleanup() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 1800); do
  grep -q READY "$work/run-local.out" 2>/dev/null && break
  kill -0 "$server" 2>/dev/null || { cat "$work/run-local.err" >&2; fail "run-local.sh exited"; }
  sleep 1
done
grep -q READY "$work/run-local.out" || { tail -50 "$work/run-local.err" >&2; fail "no READY"; }
say "$(grep READY "$work/run-local.out")"

for scenario in server-initialize ping tools-list; do
  (cd "$work" && "$mcp_bin/conformance" server --url "$url" --scenario "$scenario" -o "$work/conformance" \
    >"$work/$scenario.log" 2>&1) || { cat "$work/$scenario.log" >&2; fail "conformance scenario $scenario"; }
  say "conformance $scenario: passed"
done

inspect() { HOME="$work" "$mcp_bin/mcp-inspector" --cli "$url" "$@"; }
sum="$(inspect --method tools/call --tool-name add --tool-arg a=2 b=3)"
grep -q "Result: 5" <<<"$sum" || fail "Inspector tools/call add: $sum"
say "Inspector tools/call add: Result: 5"
status=0
inspect --method tools/call --tool-name divide --tool-arg a=1 b=0 >"$work/divide.out" 2>&1 || status=$?
[[ $status -eq 5 ]] || { cat "$work/divide.out" >&2; fail "divide by zero should be a tool error (exit 5), was $status"; }
say "Inspector tools/call divide by zero: a tool error"

call() {
  curl -fsS -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \
    -H 'mcp-protocol-version: 2025-11-25' -d "$1" "$url"
}
secret="sk_live_$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
answer="$(call '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"connect_service","arguments":{"service":"stripe","credentials":{"api_key":"'"$secret"'","region":"eu"}}}}')"
grep -q "Connected to stripe with 2 credential fields" <<<"$answer" || fail "connect_service: $answer"
call '{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"process_document","arguments":{"document":"a private letter"}}}' \
  | grep -q "Processed 16 characters" || fail "process_document"
call '{"jsonrpc":"2.0","id":10,"method":"tools/call","params":{"name":"wait","arguments":{"ms":40}}}' \
  | grep -q "Waited 40 ms" || fail "wait (a tool awaiting a JavaScript timer)"
# The paid tool: refused with a checkout link on this Worker, paid as a user does (the page, then
# its form), then run; D1 records the checkout and the purchase.
image='{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"generate_image","arguments":{"prompt":"a cat"}}}'
unpaid="$(call "$image")"
structured() { node -e 'const r = JSON.parse(require("fs").readFileSync(0, "utf8")).result; const s = r.structuredContent || {}; console.log(process.argv[1] === "status" ? s.status : s.checkout_url)' "$1"; }
[[ "$(structured status <<<"$unpaid")" == payment_required ]] || fail "an unpaid generate_image must answer payment_required: $unpaid"
checkout="$(structured checkout_url <<<"$unpaid")"
[[ "$checkout" == "http://127.0.0.1:$port/pay/"* ]] || fail "the checkout link must be on this Worker: $checkout"
say "generate_image unpaid: payment_required, checkout $checkout"
page="$(curl -fsS "$checkout")" || fail "GET the checkout page"
grep -q 'TEST PAYMENT' <<<"$page" && grep -q 'High-quality AI image generation' <<<"$page" \
  && grep -q '<form method="post">' <<<"$page" || fail "the checkout page: $page"
# The form posts to the page's own URL, from the page (same origin).
done_page="$(curl -fsS -X POST -H "origin: http://127.0.0.1:$port" -H 'content-type: application/x-www-form-urlencoded' --data '' "$checkout")" \
  || fail "POST the checkout form"
grep -q 'Test payment complete' <<<"$done_page" || fail "the test payment did not complete: $done_page"
say "test checkout completed"
paid="$(call "$image")"
grep -q 'Generated image for: a cat' <<<"$paid" || fail "generate_image must run once paid: $paid"
grep -q '"isError":true' <<<"$paid" && fail "generate_image failed once paid: $paid"
say "generate_image paid: ran"

# Analytics are written after each response (wait_until): poll until every call is in.
api() { curl -fsS -H "authorization: Bearer $MCP_ANALYTICS_API_KEY" "http://127.0.0.1:$port/analytics/api/$1"; }
curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/analytics/api/overview" | grep -q 401 \
  || fail "the analytics API must refuse a request without the key"
d1() {
  (cd "$here" && WRANGLER_SEND_METRICS=false "$WRANGLER" d1 execute MCP_ANALYTICS_DB --local --persist-to "$WORKERS_STATE_DIR" --json --command "$1")
}
export WORKERS_CACHE="${WORKERS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mcp-analytics-workers}"
WRANGLER="$WORKERS_CACHE/node/node_modules/.bin/wrangler"
for _ in $(seq 1 60); do
  calls="$(d1 "SELECT tool, status, params, result FROM tool_calls ORDER BY ts_ms" 2>/dev/null || true)"
  [[ "$(grep -o '"tool":' <<<"$calls" | wc -l)" -ge 6 ]] && break
  sleep 0.5
done
for tool in add divide connect_service process_document wait generate_image; do
  grep -q "\"tool\": *\"$tool\"" <<<"$calls" || fail "no stored call of $tool in D1: $calls"
done
grep -q "$secret" <<<"$calls" && fail "the credential reached D1 unredacted: $calls"
grep -q "Processed 16" <<<"$calls" && fail "process_document's result was stored (track_results = false)"
grep -q "Connected to stripe" <<<"$calls" || fail "connect_service's result was not stored: $calls"
waited="$(d1 "SELECT duration_us FROM tool_calls WHERE tool = 'wait'" | grep -o '"duration_us": *[0-9]*' | grep -o '[0-9]*$')"
[[ "${waited:-0}" -ge 40000 ]] || fail "wait's duration should be measured by the JavaScript clock (>= 40 ms), was ${waited:-none} µs"
say "D1 holds every call; the secret and the untracked result are not in it"
events="$(d1 "SELECT kind, tool, reference FROM payment_events ORDER BY id")"
session_id="${checkout##*/}"
for kind in checkout_created checkout_completed; do
  grep -q "\"kind\": *\"$kind\"" <<<"$events" || fail "no $kind in payment_events: $events"
done
grep -q "$session_id" <<<"$events" || fail "payment_events do not name the checkout $session_id: $events"
grep -q '"credits": *0' <<<"$(d1 "SELECT credits FROM payment_entitlements")" \
  || fail "the credit bought was not used: $(d1 "SELECT * FROM payment_entitlements")"
say "D1 payment_events: checkout_created and checkout_completed of $session_id; the credit used"
overview="$(api 'overview?range=1h')" || fail "analytics API overview"
for tool in add divide connect_service process_document generate_image; do
  grep -q "\"$tool\"" <<<"$overview" || fail "the analytics API does not show $tool: $overview"
done
grep -q "$secret" <<<"$(api 'errors?range=1h')" && fail "the errors API shows the secret"
say "analytics API: every tool shown"

# The dashboard: the native page behind the same key, by its sign-in form's cookie.
page="http://127.0.0.1:$port/analytics"
form="$(curl -s -w '\n%{http_code}' "$page")"
[[ "$(tail -n1 <<<"$form")" == 401 ]] && grep -q 'name="key"' <<<"$form" \
  || fail "/analytics without the key must answer the sign-in form (401): $form"
[[ "$(curl -s -o /dev/null -w '%{http_code}' --data-urlencode "key=wrong" "$page")" == 401 ]] \
  || fail "a wrong key must be refused"
[[ "$(curl -s -o /dev/null -w '%{http_code}' -H 'origin: https://evil.example' \
  --data-urlencode "key=$MCP_ANALYTICS_API_KEY" "$page")" == 403 ]] || fail "a cross-origin sign-in must be refused"
jar="$work/cookies"
signed="$(curl -s -o /dev/null -c "$jar" -w '%{http_code} %{redirect_url}' --data-urlencode "key=$MCP_ANALYTICS_API_KEY" "$page")"
[[ "$signed" == "303 $page" ]] || fail "signing in must redirect to the page: $signed"
grep -q mcp_analytics_session "$jar" || fail "signing in must set the session cookie"
dashboard="$(curl -fsS -b "$jar" "$page")" || fail "/analytics with the cookie"
grep -q 'id="alerts-panel"' <<<"$dashboard" || fail "/analytics with the cookie must serve the dashboard's page"
say "dashboard: sign-in form, wrong key refused, cross-origin sign-in refused, the page served signed in"
# Every API path the page's script reads answers 200 signed in, as JSON.
paths="$(grep -o 'get("api/[a-z]*' "$repo/mcp-analytics/src/dashboard/assets/app.js" | cut -c6- | sort -u)"
[[ -n "$paths" ]] || fail "no api path found in app.js"
for path in $paths; do
  body="$(curl -fsS -b "$jar" "$page/$path?range=24h&id=none&server=")" || fail "$path with the cookie"
  node -e 'JSON.parse(require("fs").readFileSync(0, "utf8"))' <<<"$body" || fail "$path is not JSON: $body"
  api "${path#api/}?range=24h&id=none" >/dev/null || fail "$path with the bearer key"
done
say "dashboard API: $(tr '\n' ' ' <<<"$paths")answer JSON with the cookie and the bearer key"
say "all checks passed"
