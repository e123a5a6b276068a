#!/usr/bin/env bash
# OAuth on the Worker end to end: an issuer's JWKS served on 127.0.0.1 by python3's http.server
# (an RSA key made here), the Worker run by run-local.sh with the MCP_OAUTH_* variables pointing
# at it, and RS256 tokens minted here (python3 `cryptography`, installed into a venv under the
# cache if missing). Checks:
# - no token → 401 with `WWW-Authenticate: Bearer resource_metadata="…"`, the metadata served there;
# - a valid token → the call answered, and D1's tool_calls.user_id is the token's `sub`;
# - an expired token, or one for another audience → 401 `invalid_token`.
#
#   examples/workers/smoke-oauth.sh PORT    (JWKS_PORT, default PORT + 100, serves the JWKS)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
port="${1:-8787}"
jwks_port="${JWKS_PORT:-$((port + 100))}"
url="http://127.0.0.1:$port/mcp"
work="$(mktemp -d)"
say() { echo "[workers smoke-oauth] $*" >&2; }
fail() {
  say "FAILED: $*"
  sleep 1 # wrangler's log of the last request
  [[ -f "$work/run-local.err" ]] && grep -v '^    at ' "$work/run-local.err" | tail -30 >&2
  exit 1
}

export WORKERS_CACHE="${WORKERS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mcp-analytics-workers}"
python=python3
if ! python3 -c 'import cryptography' 2>/dev/null; then
  venv="$WORKERS_CACHE/python-venv"
  [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
  "$venv/bin/python" -c 'import cryptography' 2>/dev/null || "$venv/bin/pip" install -q cryptography
  python="$venv/bin/python"
fi

# The issuer: a key, its JWKS, and a token minter.
cat >"$work/issuer.py" <<'PY'
import base64, json, sys, time
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

def number(n):
    return b64(n.to_bytes((n.bit_length() + 7) // 8, "big"))

command, folder = sys.argv[1], sys.argv[2]
if command == "keys":
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with open(f"{folder}/key.pem", "wb") as out:
        out.write(key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    public = key.public_key().public_numbers()
    jwks = {"keys": [{"kty": "RSA", "kid": "smoke-1", "use": "sig", "alg": "RS256",
                      "n": number(public.n), "e": number(public.e)}]}
    with open(f"{folder}/jwks.json", "w") as out:
        json.dump(jwks, out)
else:  # token ISSUER AUDIENCE SUB EXPIRES_IN_SECONDS
    issuer, audience, sub, expires_in = sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6])
    with open(f"{folder}/key.pem", "rb") as pem:
        key = serialization.load_pem_private_key(pem.read(), password=None)
    now = int(time.time())
    header = {"alg": "RS256", "typ": "JWT", "kid": "smoke-1"}
    claims = {"iss": issuer, "aud": audience, "sub": sub, "iat": now, "exp": now + expires_in,
              "scope": "mcp:tools"}
    signing_input = ".".join(b64(json.dumps(part).encode()) for part in (header, claims))
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    print(f"{signing_input}.{b64(signature)}")
PY
mkdir -p "$work/issuer"
"$python" "$work/issuer.py" keys "$work/issuer"
python3 -m http.server "$jwks_port" --bind 127.0.0.1 --directory "$work/issuer" \
  >"$work/jwks-server.log" 2>&1 &
jwks_server=$!

issuer="http://127.0.0.1:$jwks_port"
export MCP_OAUTH_ISSUER="$issuer"
export MCP_OAUTH_JWKS_URL="$issuer/jwks.json"
export MCP_OAUTH_AUDIENCE="$url"
export WORKERS_STATE_DIR="$work/state"
"$here/run-local.sh" "$port" >"$work/run-local.out" 2>"$work/run-local.err" &
server=$!
cleanup() {
  kill "$server" "$jwks_server" 2>/dev/null || true
  wait "$server" "$jwks_server" 2>/dev/null || true
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

token() { "$python" "$work/issuer.py" token "$work/issuer" "$@"; }
# Prints the status line's code, then the headers and body, of one tools/call.
call() {
  local auth=()
  [[ -n "$1" ]] && auth=(-H "authorization: Bearer $1")
  curl -sS -D "$work/headers" -o "$work/body" -w '%{http_code}' "${auth[@]}" \
    -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \
    -H 'mcp-protocol-version: 2025-11-25' \
    -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add","arguments":{"a":2,"b":3}}}' "$url"
}
metadata_url="http://127.0.0.1:$port/.well-known/oauth-protected-resource/mcp"

status="$(call "")"
[[ "$status" == 401 ]] || fail "no token: status $status, $(cat "$work/body")"
grep -qi "^www-authenticate: Bearer resource_metadata=\"$metadata_url\"" "$work/headers" \
  || fail "no token: WWW-Authenticate: $(grep -i www-authenticate "$work/headers")"
say "no token: 401, $(grep -i www-authenticate "$work/headers" | tr -d '\r')"
document="$(curl -fsS "$metadata_url")" || fail "the protected-resource metadata is not served"
grep -q "\"authorization_servers\":\[\"$issuer\"\]" <<<"$document" || fail "metadata: $document"
grep -q "\"resource\":\"$url\"" <<<"$document" || fail "metadata: $document"
say "metadata: $document"

subject="user-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
status="$(call "$(token "$issuer" "$url" "$subject" 300)")"
[[ "$status" == 200 ]] || fail "a valid token: status $status, $(cat "$work/body")"
grep -q '"text":"Result: 5"' "$work/body" || fail "a valid token: $(cat "$work/body")"
say "a valid token: 200, add answered 5"

refused() { # WHAT AUDIENCE EXPIRES_IN WHY
  status="$(call "$(token "$issuer" "$2" "$subject" "$3")")"
  [[ "$status" == 401 ]] || fail "$1 token: status $status, $(cat "$work/body")"
  grep -qi "www-authenticate: Bearer error=\"invalid_token\", error_description=\"[^\"]*$4\"" "$work/headers" \
    || fail "$1 token: $(grep -i www-authenticate "$work/headers")"
  say "$1 token: 401 invalid_token ($4)"
}
refused expired "$url" -120 "has expired"
refused "another audience's" "https://other.example.com/mcp" 300 "not for this resource"

# The valid call is written to D1 after its response (wait_until): poll for it.
WRANGLER="$WORKERS_CACHE/node/node_modules/.bin/wrangler"
export PATH="$WORKERS_CACHE/node/node_modules/node/bin:$PATH"   # wrangler needs Node 22
for _ in $(seq 1 60); do
  stored="$(cd "$here" && WRANGLER_SEND_METRICS=false "$WRANGLER" d1 execute MCP_ANALYTICS_DB --local --persist-to "$WORKERS_STATE_DIR" --json \
    --command "SELECT tool, user_id FROM tool_calls WHERE user_id = '$subject'" 2>/dev/null || true)"
  grep -q "\"user_id\": *\"$subject\"" <<<"$stored" && break
  sleep 0.5
done
grep -q "\"user_id\": *\"$subject\"" <<<"$stored" || fail "no call of $subject in D1: $stored"
[[ "$(grep -o '"tool":' <<<"$stored" | wc -l)" -eq 1 ]] || fail "refused calls were stored as $subject's: $stored"
say "D1: the call is stored with user_id = $subject"
say "all checks passed"
