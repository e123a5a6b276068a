// Times N sequential `tools/call add` requests against a running Worker (after one
// `tools/list`, whose time is `first_ms`), GAP ms apart (default 0: back to back). Prints JSON:
// { first_ms, n, p50_ms, p95_ms, mean_ms }.
//   node bench/calls.mjs http://127.0.0.1:8787/mcp 500 [GAP]
const [url, count = "500", gap = "0"] = process.argv.slice(2);
const n = Number(count);
const gapMs = Number(gap);
const headers = {
  "content-type": "application/json",
  accept: "application/json, text/event-stream",
  "mcp-protocol-version": "2025-11-25",
};
let id = 0;
async function call(method, params) {
  const started = performance.now();
  const response = await fetch(url, {
    method: "POST",
    headers,
    body: JSON.stringify({ jsonrpc: "2.0", id: ++id, method, params }),
  });
  const body = await response.json();
  if (!response.ok || body.error) throw new Error(JSON.stringify(body));
  return performance.now() - started;
}
const first = await call("tools/list", {});
const times = [];
for (let i = 0; i < n; i++) {
  times.push(await call("tools/call", { name: "add", arguments: { a: i, b: 1 } }));
  if (gapMs > 0) await new Promise((resolve) => setTimeout(resolve, gapMs));
}
times.sort((a, b) => a - b);
const at = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))];
const round = (ms) => Math.round(ms * 100) / 100;
console.log(JSON.stringify({
  first_ms: round(first),
  n,
  p50_ms: round(at(0.5)),
  p95_ms: round(at(0.95)),
  mean_ms: round(times.reduce((a, b) => a + b, 0) / n),
}));
