// The dashboard: fetches api/overview and api/errors for the selected range, renders cards,
// charts (uPlot), tables; refreshes every 10 s. No build step, no framework.
(function () {
  "use strict";
  const base = location.pathname.endsWith("/") ? location.pathname : location.pathname + "/";
  const $ = (id) => document.getElementById(id);
  const fmt = new Intl.NumberFormat("en-US");
  const charts = {};
  let sort = { key: "calls", desc: true };
  let lastTools = [];
  // The rollup row of unknown tool names past 100 distinct ones per server and hour.
  const OTHER_UNKNOWN_TOOLS = "(other unknown tools)";
  // The rollup row of prompt names or resource URIs past 100 distinct ones per server, method and hour.
  const OTHER_TARGETS = "(other targets)";
  // The rollup row of clients past 100 distinct (name, version, protocol version) per server and hour.
  const OTHER_CLIENTS = "(other clients)";

  async function get(path) {
    const response = await fetch(base + path, { credentials: "same-origin" });
    if (response.status === 401) { location.reload(); throw new Error("signed out"); }
    if (!response.ok) throw new Error(path + ": HTTP " + response.status);
    return response.json();
  }

  function text(value) { return value === null || value === undefined ? "–" : String(value); }
  function ms(value) { return value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : fmt.format(Math.round(value)); }
  function pct(value) { return (value * 100).toFixed(1) + " %"; }
  function cell(row, value, numeric) {
    const td = document.createElement("td");
    td.textContent = text(value);
    if (numeric) td.className = "num";
    row.appendChild(td);
    return td;
  }
  function header(table, columns) {
    table.innerHTML = "";
    const row = table.createTHead().insertRow();
    for (const [key, label, numeric] of columns) {
      const th = document.createElement("th");
      th.textContent = label;
      if (numeric) th.className = "num";
      th.dataset.key = key;
      row.appendChild(th);
    }
    return table.createTBody();
  }
  function sessionLink(td, id) {
    if (!id) return;
    td.textContent = "";
    const a = document.createElement("a");
    a.className = "session";
    a.textContent = id;
    a.onclick = () => { $("session-id").value = id; showSession(id); };
    td.appendChild(a);
  }

  function renderCards(overview) {
    const report = overview.report;
    $("card-calls").textContent = fmt.format(report.calls);
    $("card-error-rate").textContent = report.calls ? pct(report.errors / report.calls) : "–";
    $("card-p95").textContent = overview.p95_ms === null ? "–" : ms(overview.p95_ms) + " ms";
    $("card-users").textContent = fmt.format(overview.users);
    $("card-sessions").textContent = fmt.format(report.sessions.count);
  }

  function money(rows) {
    const totals = {};
    for (const row of rows) totals[row.currency] = (totals[row.currency] || 0) + row.amount;
    const parts = Object.entries(totals).map(([currency, amount]) =>
      (amount / 100).toFixed(2) + " " + currency.toUpperCase());
    return parts.length ? parts.join(" + ") : "–";
  }

  function renderPayments(payments) {
    $("card-revenue").textContent = money(payments.by_tool);
    const any = payments.by_tool.length || payments.conversion.length || payments.checkouts_created || payments.active_subscriptions;
    $("payments-facts").textContent = any
      ? `${fmt.format(payments.active_subscriptions)} active subscriptions · ${fmt.format(payments.checkouts_created)} checkouts created · ${fmt.format(payments.meter_events_sent)} usage events billed · ${fmt.format(payments.failures)} payment failures`
      : "No payment events recorded.";
    const revenue = (table, rows, title) => {
      const body = header($(table), [["key", title], ["revenue", "Revenue", 1], ["payments", "Payments", 1]]);
      for (const row of rows) {
        const tr = body.insertRow();
        cell(tr, row.key || "–");
        cell(tr, (row.amount / 100).toFixed(2) + " " + row.currency.toUpperCase(), true);
        cell(tr, fmt.format(row.payments), true);
      }
    };
    revenue("revenue-tools", payments.by_tool, "Tool");
    revenue("revenue-users", payments.by_user, "User");
    const body = header($("conversion"), [["tool", "Paid tool"], ["asked", "Asked to pay", 1], ["paid", "Paid", 1], ["rate", "Conversion", 1]]);
    for (const row of payments.conversion) {
      const tr = body.insertRow();
      cell(tr, row.tool);
      cell(tr, fmt.format(row.asked), true);
      cell(tr, fmt.format(row.paid), true);
      cell(tr, row.asked ? pct(row.paid / row.asked) : "–", true);
    }
  }

  function renderTools(tools) {
    lastTools = tools;
    const columns = [["tool", "Tool"], ["calls", "Calls", 1], ["success_rate", "Success", 1], ["errors", "Errors", 1],
      ["p50_ms", "p50 ms", 1], ["p95_ms", "p95 ms", 1], ["p99_ms", "p99 ms", 1], ["users", "Users", 1],
      ["sessions", "Called in", 1], ["listed_sessions", "Listed in", 1]];
    const body = header($("tools"), columns);
    $("tools").tHead.rows[0].cells[8].title = "Sessions that called the tool";
    $("tools").tHead.rows[0].cells[9].title = "Sessions that listed the tools (tools/list)";
    $("tools").tHead.onclick = (event) => {
      const key = event.target.dataset.key;
      if (!key) return;
      sort = { key, desc: sort.key === key ? !sort.desc : true };
      renderTools(lastTools);
    };
    const real = tools.filter((t) => t.tool !== OTHER_UNKNOWN_TOOLS);
    const slowest = real.reduce((best, t) => (!best || t.p95_ms > best.p95_ms ? t : best), null);
    const failing = real.reduce((best, t) => (t.errors && (!best || 1 - t.success_rate > 1 - best.success_rate) ? t : best), null);
    const sorted = [...tools].sort((a, b) => {
      const x = a[sort.key], y = b[sort.key];
      const order = typeof x === "string" ? x.localeCompare(y) : x - y;
      return sort.desc ? -order : order;
    });
    for (const tool of sorted) {
      const row = body.insertRow();
      if (tools.length > 1 && tool === slowest) row.classList.add("slowest");
      if (tool === failing) row.classList.add("failing");
      if (tool.tool === OTHER_UNKNOWN_TOOLS) {
        row.classList.add("bucket");
        row.title = "Calls to unknown tool names past the first 100 distinct ones per server and hour";
      }
      cell(row, tool.tool);
      cell(row, fmt.format(tool.calls), 1);
      cell(row, pct(tool.success_rate), 1);
      cell(row, fmt.format(tool.errors), 1);
      cell(row, ms(tool.p50_ms), 1);
      cell(row, ms(tool.p95_ms), 1);
      cell(row, ms(tool.p99_ms), 1);
      cell(row, fmt.format(tool.users), 1);
      cell(row, fmt.format(tool.sessions), 1);
      cell(row, fmt.format(tool.listed_sessions), 1);
    }
    if (!tools.length) body.insertRow().insertCell().textContent = "No calls in this range.";
  }

  // Requests other than tools/call: per method, and per prompt and resource.
  function renderRequests(report) {
    let body = header($("methods"), [["method", "Method"], ["calls", "Calls", 1], ["errors", "Errors", 1],
      ["p50_ms", "p50 ms", 1], ["p95_ms", "p95 ms", 1], ["sessions", "Sessions", 1]]);
    for (const method of report.requests) {
      const row = body.insertRow();
      cell(row, method.method);
      cell(row, fmt.format(method.calls), 1);
      cell(row, fmt.format(method.errors), 1);
      cell(row, ms(method.p50_ms), 1);
      cell(row, ms(method.p95_ms), 1);
      cell(row, fmt.format(method.sessions), 1);
    }
    if (!report.requests.length) body.insertRow().insertCell().textContent = "No other requests in this range.";
    const targets = (table, rows, label, key, empty) => {
      const body = header($(table), [[key, label], ["calls", "Calls", 1], ["errors", "Errors", 1],
        ["p50_ms", "p50 ms", 1], ["p95_ms", "p95 ms", 1]]);
      for (const target of rows) {
        const row = body.insertRow();
        if (target[key] === OTHER_TARGETS) {
          row.classList.add("bucket");
          row.title = "Past the first 100 distinct ones per server and hour";
        }
        cell(row, target[key]);
        cell(row, fmt.format(target.calls), 1);
        cell(row, fmt.format(target.errors), 1);
        cell(row, ms(target.p50_ms), 1);
        cell(row, ms(target.p95_ms), 1);
      }
      if (!rows.length) body.insertRow().insertCell().textContent = empty;
    };
    targets("prompts", report.prompts, "Prompt", "name", "No prompts read in this range.");
    targets("resources", report.resources, "Resource", "uri", "No resources read in this range.");
  }

  // Tool calls per client (name, version, protocol version) and per protocol version, and the
  // tool names agents called that the server does not have.
  function renderClients(report) {
    const usage = (row, entry) => {
      cell(row, fmt.format(entry.calls), 1);
      cell(row, fmt.format(entry.errors), 1);
      cell(row, ms(entry.p50_ms), 1);
      cell(row, ms(entry.p95_ms), 1);
      cell(row, fmt.format(entry.sessions), 1);
    };
    const figures = [["calls", "Calls", 1], ["errors", "Errors", 1], ["p50_ms", "p50 ms", 1], ["p95_ms", "p95 ms", 1], ["sessions", "Sessions", 1]];
    let body = header($("clients"), [["client_name", "Client"], ["client_version", "Version"], ["protocol_version", "Protocol"]].concat(figures));
    for (const client of report.clients) {
      const row = body.insertRow();
      if (client.client_name === OTHER_CLIENTS) {
        row.classList.add("bucket");
        row.title = "Past the first 100 distinct clients per server and hour (their protocol versions are not kept)";
      }
      cell(row, client.client_name);
      cell(row, client.client_version);
      cell(row, client.protocol_version);
      usage(row, client);
    }
    if (!report.clients.length) body.insertRow().insertCell().textContent = "No calls in this range.";
    body = header($("protocols"), [["protocol_version", "Protocol"]].concat(figures));
    for (const protocol of report.protocol_versions) {
      const row = body.insertRow();
      cell(row, protocol.protocol_version);
      usage(row, protocol);
    }
    if (!report.protocol_versions.length) body.insertRow().insertCell().textContent = "No calls in this range.";
    body = header($("missing-tools"), [["tool", "Tool"], ["calls", "Calls", 1], ["sessions", "Sessions", 1], ["clients", "Clients"]]);
    for (const tool of report.missing_tools) {
      const row = body.insertRow();
      if (tool.tool === OTHER_UNKNOWN_TOOLS) {
        row.classList.add("bucket");
        row.title = "Calls to unknown tool names past the first 100 distinct ones per server and hour";
      }
      cell(row, tool.tool);
      cell(row, fmt.format(tool.calls), 1);
      cell(row, fmt.format(tool.sessions), 1);
      cell(row, tool.clients.map((client) =>
        ([client.client_name, client.client_version].filter(Boolean).join(" ") || "–") + " (" + fmt.format(client.calls) + ")").join(", "));
    }
    if (!report.missing_tools.length) body.insertRow().insertCell().textContent = "No unknown tools called in this range.";
  }

  // Each tool's definition as tools/list serves it, in bytes and estimated tokens (bytes / 4),
  // per server: what every connection that lists the tools puts into the model's context.
  function renderContextCost(catalogs) {
    const body = header($("context-cost"), [["server", "Server"], ["tool", "Tool"], ["bytes", "Bytes", 1], ["tokens", "≈ Tokens", 1], ["share", "Share", 1]]);
    for (const catalog of catalogs) {
      const tools = [...catalog.tools].sort((a, b) => b.bytes - a.bytes);
      for (const tool of tools) {
        const row = body.insertRow();
        cell(row, catalog.server_name + " " + catalog.server_version);
        cell(row, tool.tool);
        cell(row, fmt.format(tool.bytes), 1);
        cell(row, fmt.format(tool.tokens), 1);
        cell(row, catalog.list_bytes ? pct(tool.bytes / catalog.list_bytes) : "–", 1);
      }
    }
    $("context-total").textContent = catalogs.map((catalog) =>
      `${catalog.server_name}: tools/list ${fmt.format(catalog.list_bytes)} bytes ≈ ${fmt.format(catalog.list_tokens)} tokens per connection`).join(" · ");
    if (!catalogs.length) body.insertRow().insertCell().textContent = "No tool catalogue recorded yet (servers record theirs when they start).";
  }

  // Tool quality: for calls whose arguments did not deserialize, the field and the problem.
  const PROBLEMS = { missing: "missing", wrong_type: "wrong type", invalid_value: "invalid value",
    unknown_field: "unknown field", duplicate: "given twice", other: "other" };
  function renderInvalidParams(failures) {
    const body = header($("invalid-params"), [["tool", "Tool"], ["field", "Field"], ["problem", "Problem"], ["calls", "Calls", 1]]);
    for (const failure of failures) {
      const row = body.insertRow();
      cell(row, failure.tool);
      cell(row, failure.field);
      cell(row, PROBLEMS[failure.problem] || failure.problem);
      cell(row, fmt.format(failure.calls), 1);
    }
    if (!failures.length) body.insertRow().insertCell().textContent = "No invalid arguments in this range.";
  }

  // A span of milliseconds as "2 h 05 min", "3 min 07 s", "4.2 s" or "310 ms".
  function span(value) {
    const pad = (n) => String(n).padStart(2, "0");
    const s = Math.floor(value / 1000);
    if (value < 1000) return Math.round(value) + " ms";
    if (s < 60) return (value / 1000).toFixed(1) + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + pad(s % 60) + " s";
    return Math.floor(s / 3600) + " h " + pad(Math.floor(s / 60) % 60) + " min";
  }

  // `startMs` (a session's start) adds a column with each row's offset from it.
  function renderCalls(table, rows, withTool, startMs) {
    const columns = [["ts", "Time"], ["tool", "Tool or request"], ["status", "Status"], ["error", "Error"], ["ms", "ms", 1], ["params", "Parameters (redacted)"], ["user", "User"], ["session", "Session"]];
    if (startMs !== undefined) columns.splice(1, 0, ["offset", "After", 1]);
    const body = header(table, columns);
    for (const call of rows) {
      const row = body.insertRow();
      cell(row, new Date(call.ts_ms).toLocaleString());
      if (startMs !== undefined) cell(row, "+" + span(call.ts_ms - startMs), 1);
      // A tool call shows its tool; another request its method and target (prompt, resource).
      cell(row, call.method === "tools/call" ? call.tool : [call.method, call.tool].filter(Boolean).join(" "));
      const status = cell(row, call.status);
      if (call.status !== "ok") status.className = "status-bad";
      // A panic's message ends with the tool's frames of its backtrace: shown folded.
      const message = call.error_message || "";
      const at = message.indexOf("\n\nbacktrace:\n");
      const error = cell(row, [call.error_type, at < 0 ? message : message.slice(0, at)].filter(Boolean).join(": "));
      if (at >= 0) {
        const details = document.createElement("details");
        const summary = document.createElement("summary");
        summary.textContent = "backtrace";
        const frames = document.createElement("pre");
        frames.textContent = message.slice(at + "\n\nbacktrace:\n".length);
        details.append(summary, frames);
        error.appendChild(details);
      }
      cell(row, ms(call.duration_ms), 1);
      const params = cell(row, "");
      const code = document.createElement("code");
      code.textContent = call.params || "";
      params.appendChild(code);
      cell(row, call.user_id);
      sessionLink(cell(row, call.session_id), call.session_id);
    }
    if (!rows.length) body.insertRow().insertCell().textContent = withTool ? "No errors in this range." : "No calls.";
  }

  function renderUsers(users) {
    const body = header($("users"), [["user", "User"], ["name", "Name"], ["email", "Email"], ["calls", "Calls", 1], ["errors", "Errors", 1]]);
    for (const user of users) {
      const row = body.insertRow();
      cell(row, user.user_id);
      cell(row, user.name);
      cell(row, user.email);
      cell(row, fmt.format(user.calls), 1);
      cell(row, fmt.format(user.errors), 1);
    }
    if (!users.length) body.insertRow().insertCell().textContent = "No identified users in this range.";
  }

  function chart(id, series, data, range) {
    const target = $(id);
    const width = Math.max(300, target.clientWidth || 500);
    if (charts[id]) charts[id].destroy();
    const options = { width, height: 220, series: [{}].concat(series), axes: [{}, { size: 60 }],
      scales: { x: { time: true, range: () => range } } };
    charts[id] = new uPlot(options, data, target);
  }

  function renderCharts(series, sinceMs, untilMs) {
    const range = [sinceMs / 1000, untilMs / 1000];
    const t = series.map((p) => p.ts_ms / 1000);
    chart("chart-calls", [{ label: "calls", stroke: "#2f6fde", width: 2 }, { label: "errors", stroke: "#c0392b", width: 2 }],
      [t, series.map((p) => p.calls), series.map((p) => p.errors)], range);
    chart("chart-latency", [{ label: "p50", stroke: "#2e8b57", width: 2 }, { label: "p95", stroke: "#b7791f", width: 2 }, { label: "p99", stroke: "#c0392b", width: 2 }],
      [t, series.map((p) => p.p50_ms), series.map((p) => p.p95_ms), series.map((p) => p.p99_ms)], range);
  }

  async function showSession(id) {
    if (!id) return;
    const session = await get("api/session?id=" + encodeURIComponent(id));
    $("session-summary").textContent = session.start_ms === null ? "Nothing recorded in this session." :
      "Started " + new Date(session.start_ms).toLocaleString() + ", ended " + new Date(session.end_ms).toLocaleString() +
      ", lasted " + span(session.duration_ms) + ": " + fmt.format(session.calls) + " tool calls, " +
      fmt.format(session.requests) + " other requests.";
    renderCalls($("session"), session.timeline, false, session.start_ms === null ? undefined : session.start_ms);
  }

  // Alerts: firing first, then those resolved in the range (a dashboard older than the
  // database may lack the API: the panel stays hidden).
  function renderAlerts(alerts) {
    $("alerts-panel").hidden = false;
    const body = header($("alerts"), [["status", "Status"], ["rule", "Rule"], ["subject", "Subject"],
      ["value", "Value", 1], ["since", "Since"], ["summary", "What"]]);
    for (const alert of alerts) {
      const row = body.insertRow();
      row.className = "alert-" + alert.status;
      cell(row, alert.status === "firing" ? "🔥 firing" : "✅ resolved");
      cell(row, alert.rule);
      const subject = [alert.server, alert.tool, alert.session].filter((part) => part).join(" · ");
      cell(row, subject);
      cell(row, Number.isInteger(alert.value) ? fmt.format(alert.value) : alert.value.toFixed(1), 1);
      cell(row, new Date(alert.since_ms).toLocaleString());
      cell(row, alert.summary + (alert.last_error ? " (not delivered: " + alert.last_error + ")" : ""));
    }
    if (!alerts.length) body.insertRow().insertCell().textContent = "No alert fired in this range.";
  }

  function renderServers(servers) {
    const select = $("server");
    const chosen = select.value;
    $("server-choice").hidden = servers.length < 2 && !chosen;
    select.length = 1;
    for (const name of servers) select.add(new Option(name, name, false, name === chosen));
  }

  async function refresh() {
    const scope = "range=" + $("range").value + "&server=" + encodeURIComponent($("server").value);
    try {
      const [overview, errors, payments] = await Promise.all([
        get("api/overview?" + scope), get("api/errors?" + scope), get("api/payments?" + scope)]);
      renderServers(overview.servers);
      renderCards(overview);
      renderTools(overview.report.tools);
      renderRequests(overview.report);
      renderClients(overview.report);
      renderContextCost(overview.report.context_cost);
      renderInvalidParams(overview.report.invalid_params);
      renderUsers(overview.report.top_users);
      renderCharts(overview.series, overview.since_ms, overview.until_ms);
      renderCalls($("errors"), errors, true);
      renderPayments(payments);
      get("api/alerts?" + scope).then(renderAlerts, () => { $("alerts-panel").hidden = true; });
      $("updated").textContent = "updated " + new Date().toLocaleTimeString();
    } catch (error) {
      $("updated").textContent = "error: " + error.message;
    }
  }

  $("range").onchange = refresh;
  $("server").onchange = refresh;
  $("session-go").onclick = () => showSession($("session-id").value.trim());
  // A link to a session: `#session=<id>`.
  const linked = new URLSearchParams(location.hash.slice(1)).get("session");
  if (linked) { $("session-id").value = linked; showSession(linked); }
  refresh();
  setInterval(refresh, 10000);
})();
