//! The dashboard in a real browser: headless Chromium loads the page against a database seeded
//! with known calls and must show the right tools, counts and error rate (a screenshot is saved
//! to `target/tmp/dashboard.png`), and the per-client, missing-tool, invalid-argument and
//! context-cost panels, and an alert the evaluator marked firing; access control over real
//! HTTP.

use std::{path::Path, process::Command, time::Duration};

use mcp_analytics::{
    Analytics, Method, RequestEvent, RequestStatus, Status, ToolCallEvent, Transport,
    alerts::{Alerts, ErrorRate, Percent},
    catalog::{ToolCatalog, ToolCost, estimate_tokens},
    dashboard::Dashboard,
    store::SqliteStore,
};
use mcp_analytics_tests::server::Serving;

const CHROMIUM: &str = "/usr/bin/chromium";

fn event(index: usize, tool: &str, user: &str, status: Status, duration_us: u64) -> ToolCallEvent {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    ToolCallEvent {
        id: format!("0190a5c2-0000-7000-8000-{index:012x}"),
        ts_ms: now_ms - 60_000,
        server_name: "seeded".into(),
        server_version: "1".into(),
        tool: tool.into(),
        user_id: Some(user.into()),
        // Ann signed in with OAuth: her details arrive masked.
        user_email: (user == "ann").then(|| "a***@example.com".to_owned()),
        user_name: (user == "ann").then(|| "A*** N***".to_owned()),
        session_id: Some(format!("session-{}", index % 2)),
        client_name: Some("claude".into()),
        client_version: Some("1".into()),
        protocol_version: Some("2025-11-25".into()),
        transport: Transport::Http,
        request_id: Some(index.to_string()),
        duration_us,
        status,
        error_type: status.is_error().then(|| status.as_str().to_owned()),
        error_message: status.is_error().then(|| "upstream unavailable".to_owned()),
        params: Some(r#"{"query":"weather","api_key":"[REDACTED]"}"#.into()),
        result: None,
        ts_ns: None,
        traceparent: None,
        tracestate: None,
    }
}

fn request(index: usize, method: Method, target: Option<&str>, session: usize) -> RequestEvent {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let status = match target {
        Some("docs://missing") => RequestStatus::ResourceNotFound,
        _ => RequestStatus::Ok,
    };
    RequestEvent {
        id: format!("0190a5c2-0000-7000-9000-{index:012x}"),
        ts_ms: now_ms - 90_000,
        server_name: "seeded".into(),
        server_version: "1".into(),
        method,
        target: target.map(str::to_owned),
        user_id: Some("ann".into()),
        session_id: Some(format!("session-{session}")),
        client_name: Some("claude".into()),
        client_version: Some("1".into()),
        protocol_version: Some("2025-11-25".into()),
        transport: Transport::Http,
        request_id: Some(index.to_string()),
        duration_us: 3_000,
        error_type: status.is_error().then(|| "-32002".to_owned()),
        error_message: status
            .is_error()
            .then(|| "no resource docs://missing".to_owned()),
        status,
        client_capabilities: None,
        ts_ns: None,
        traceparent: None,
        tracestate: None,
    }
}

/// 12 calls: `search_docs` 10 (2 tool errors, slow), `translate` 2 (1 panic); the sessions'
/// other requests: three `initialize` (one session never called a tool), two `tools/list`, a
/// prompt and two resource reads (one of a missing resource).
fn seed(path: &Path) {
    let mut store = SqliteStore::open(path).unwrap();
    store
        .append_requests(&[
            request(0, Method::Initialize, None, 0),
            request(1, Method::Initialize, None, 1),
            request(2, Method::Initialize, None, 2),
            request(3, Method::ToolsList, None, 0),
            request(4, Method::ToolsList, None, 2),
            request(5, Method::PromptsGet, Some("summarize_page"), 0),
            request(6, Method::ResourcesRead, Some("docs://guide"), 1),
            request(7, Method::ResourcesRead, Some("docs://missing"), 1),
        ])
        .unwrap();
    drop(store);
    seed_calls(path);
}

/// The calls and payments.
fn seed_calls(path: &Path) {
    let mut store = SqliteStore::open(path).unwrap();
    let mut events = Vec::new();
    for index in 0..10 {
        let status = if index < 2 {
            Status::ToolError
        } else {
            Status::Ok
        };
        events.push(event(
            index,
            "search_docs",
            ["ann", "bob"][index % 2],
            status,
            20_000 + 1_000 * index as u64,
        ));
    }
    events.push(event(10, "translate", "ann", Status::Ok, 900));
    events.push(event(11, "translate", "cid", Status::Panic, 1_100));
    store.append(&events).unwrap();
    drop(store);
    // Payments: building them creates the payment tables; then one one-time purchase and one
    // paid subscription invoice.
    drop(
        mcp_analytics::Payments::builder()
            .database(path)
            .build()
            .unwrap(),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let connection = rusqlite::Connection::open(path).unwrap();
    connection
        .execute_batch(&format!(
            "INSERT INTO payment_events (ts_ms, kind, user_id, tool, amount, currency) VALUES
                 ({now}, 'checkout_completed', 'ann', 'translate', 1500, 'usd'),
                 ({now}, 'invoice_paid', 'bob', 'search_docs', 2000, 'usd');
             INSERT INTO payment_subscriptions (subscription_id, user_id, tool, status, updated_ms)
                 VALUES ('sub_1', 'bob', 'search_docs', 'active', {now});"
        ))
        .unwrap();
}

/// Runs headless Chromium on `url`: the DOM after scripts ran, and a screenshot.
fn chromium(url: &str, screenshot: &Path) -> String {
    assert!(
        Path::new(CHROMIUM).exists(),
        "the browser tests need Chromium at {CHROMIUM} (apt-get install chromium; .ci/run installs it)"
    );
    let profile = tempfile::tempdir().unwrap();
    let flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        "--window-size=1280,1400",
        "--virtual-time-budget=8000",
    ];
    let user_data = format!("--user-data-dir={}", profile.path().display());
    let shot = Command::new(CHROMIUM)
        .args(flags)
        .arg(&user_data)
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg(url)
        .output()
        .unwrap();
    assert!(
        shot.status.success(),
        "{}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let dom = Command::new(CHROMIUM)
        .args(flags)
        .arg(&user_data)
        .arg("--dump-dom")
        .arg(url)
        .output()
        .unwrap();
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    String::from_utf8(dom.stdout).unwrap()
}

/// The text of the element with `id` in a dumped DOM.
fn text_of<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in the page"));
    let open = start + dom[start..].find('>').unwrap() + 1;
    let close = open + dom[open..].find('<').unwrap();
    &dom[open..close]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_shows_the_seeded_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("seeded.db");
    seed(&db);
    let dashboard = Dashboard::new(&db);
    let served = Serving::start(|listener, shutdown| dashboard.serve_on(listener, shutdown)).await;
    let addr = served.addr;
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let url = format!("http://{addr}/");
    let dom = tokio::task::spawn_blocking(move || chromium(&url, &screenshot))
        .await
        .unwrap();

    assert_eq!(text_of(&dom, "card-calls"), "12");
    assert_eq!(text_of(&dom, "card-error-rate"), "25.0 %");
    assert_eq!(text_of(&dom, "card-users"), "3");
    assert_eq!(text_of(&dom, "card-sessions"), "2");
    assert_eq!(text_of(&dom, "card-revenue"), "35.00 USD");
    assert!(
        text_of(&dom, "payments-facts").starts_with("1 active subscriptions"),
        "{}",
        text_of(&dom, "payments-facts")
    );
    let tools = &dom[dom.find("id=\"tools\"").unwrap()..dom.find("id=\"errors\"").unwrap()];
    let search = tools.find("search_docs").expect("search_docs row");
    let translate = tools.find("translate").expect("translate row");
    assert!(search < translate, "busiest first");
    assert!(
        tools.contains("<tr class=\"slowest\"><td>search_docs"),
        "{tools}"
    );
    assert!(
        tools.contains("<tr class=\"failing\"><td>translate"),
        "{tools}"
    );
    assert!(
        tools.contains("80.0 %") && tools.contains("50.0 %"),
        "success rates: {tools}"
    );
    assert!(
        tools.contains("<td class=\"num\">2</td><td class=\"num\">2</td></tr>"),
        "each tool called in 2 sessions, and tools listed in 2: {tools}"
    );
    // Requests by method, prompts and resources.
    let methods = &dom[dom.find("id=\"methods\"").unwrap()..dom.find("id=\"prompts\"").unwrap()];
    for expected in [
        "<td>initialize</td><td class=\"num\">3</td><td class=\"num\">0</td>",
        "<td>resources/read</td><td class=\"num\">2</td><td class=\"num\">1</td>",
        "<td>tools/list</td><td class=\"num\">2</td>",
        "<td>prompts/get</td><td class=\"num\">1</td>",
    ] {
        assert!(methods.contains(expected), "{expected} in {methods}");
    }
    let prompts = &dom[dom.find("id=\"prompts\"").unwrap()..dom.find("id=\"resources\"").unwrap()];
    assert!(
        prompts.contains("<td>summarize_page</td><td class=\"num\">1</td>"),
        "{prompts}"
    );
    let resources = &dom[dom.find("id=\"resources\"").unwrap()..dom.find("id=\"errors\"").unwrap()];
    assert!(
        resources
            .contains("<td>docs://missing</td><td class=\"num\">1</td><td class=\"num\">1</td>"),
        "{resources}"
    );
    let users = &dom[dom.find("id=\"users\"").unwrap()..];
    assert!(
        users.contains("<td>ann</td><td>A*** N***</td><td>a***@example.com</td>"),
        "{users}"
    );
    assert!(
        users.contains("<td>bob</td><td>–</td><td>–</td>"),
        "{users}"
    );
    let errors = &dom[dom.find("id=\"errors\"").unwrap()..];
    assert_eq!(errors.matches("upstream unavailable").count(), 3);
    assert!(
        errors.contains(
            "<td>resources/read docs://missing</td><td class=\"status-bad\">resource_not_found</td>"
        ),
        "failed requests are recent errors too: {errors}"
    );
    assert!(
        errors.contains("[REDACTED]") && !errors.contains("sk_"),
        "redacted parameters are shown"
    );
    drop(served);
}

/// Calls from two clients — one of them an unknown tool, invalid arguments and a panic with its
/// backtrace — and the server's tool catalogue.
fn seed_clients(path: &Path) {
    let mut store = SqliteStore::open(path).unwrap();
    let mut events: Vec<ToolCallEvent> = (0..3)
        .map(|index| event(index, "search_docs", "ann", Status::Ok, 2_000))
        .collect();
    for (index, tool, status, message) in [
        (
            3,
            "search_docs",
            Status::InvalidParams,
            "invalid type: string, expected u32 at `limit`",
        ),
        (4, "delete_all", Status::UnknownTool, "unknown tool"),
        (
            5,
            "search_docs",
            Status::Panic,
            "index out of range\n\nbacktrace:\nseeded::search at src/lib.rs:9:5",
        ),
    ] {
        let mut call = event(index, tool, "bob", status, 500);
        call.client_name = Some("cursor".into());
        call.client_version = Some("0.5".into());
        call.protocol_version = Some("2026-07-28".into());
        call.session_id = Some("session-9".into());
        call.error_message = Some(message.into());
        events.push(call);
    }
    store.append(&events).unwrap();
    let tool = |name: &str, bytes: u64| ToolCost {
        tool: name.into(),
        bytes,
        tokens: estimate_tokens(bytes),
    };
    store
        .write_catalog(&ToolCatalog {
            server_name: "seeded".into(),
            server_version: "1".into(),
            recorded_ms: 0,
            list_bytes: 1_234,
            list_tokens: estimate_tokens(1_234),
            tools: vec![tool("translate", 400), tool("search_docs", 800)],
        })
        .unwrap();
}

/// The part of the dumped DOM from the element with `id` to the next table.
fn table_of<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in the page"));
    let end = dom[start..].find("</table>").unwrap();
    &dom[start..start + end]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_shows_clients_missing_tools_invalid_arguments_and_context_cost() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("clients.db");
    seed_clients(&db);
    // The alert evaluator finds search_docs failing (2 of its 5 calls) and marks it firing.
    let analytics = Analytics::builder()
        .database(&db)
        .alerts(
            Alerts::new()
                .error_rate(
                    ErrorRate::new(Percent::new(30.0), Duration::from_secs(900)).min_calls(1),
                )
                .interval(Duration::from_millis(50)),
        )
        .build()
        .unwrap();
    let connection = rusqlite::Connection::open(&db).unwrap();
    let firing = || {
        connection
            .query_row(
                "SELECT count(*) FROM alert_state WHERE status = 'firing'",
                [],
                |row| row.get::<_, i64>(0),
            )
            .unwrap_or(0)
    };
    while firing() == 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(analytics);
    let dashboard = Dashboard::new(&db);
    let served = Serving::start(|listener, shutdown| dashboard.serve_on(listener, shutdown)).await;
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-clients.png");
    let url = format!("http://{}/", served.addr);
    let dom = tokio::task::spawn_blocking(move || chromium(&url, &screenshot))
        .await
        .unwrap();

    let clients = table_of(&dom, "clients");
    for row in [
        "<td>claude</td><td>1</td><td>2025-11-25</td><td class=\"num\">3</td><td class=\"num\">0</td>",
        "<td>cursor</td><td>0.5</td><td>2026-07-28</td><td class=\"num\">3</td><td class=\"num\">3</td>",
    ] {
        assert!(clients.contains(row), "{row} in {clients}");
    }
    let protocols = table_of(&dom, "protocols");
    assert!(
        protocols.contains("<td>2026-07-28</td><td class=\"num\">3</td>"),
        "{protocols}"
    );
    let missing = table_of(&dom, "missing-tools");
    assert!(
        missing.contains(
            "<td>delete_all</td><td class=\"num\">1</td><td class=\"num\">1</td><td>cursor 0.5 (1)</td>"
        ),
        "{missing}"
    );
    let invalid = table_of(&dom, "invalid-params");
    assert!(
        invalid.contains(
            "<td>search_docs</td><td>limit</td><td>wrong type</td><td class=\"num\">1</td>"
        ),
        "{invalid}"
    );
    let cost = table_of(&dom, "context-cost");
    let search = cost
        .find("<td>seeded 1</td><td>search_docs</td><td class=\"num\">800</td><td class=\"num\">200</td>")
        .unwrap_or_else(|| panic!("{cost}"));
    assert!(
        search < cost.find("translate").unwrap(),
        "largest first: {cost}"
    );
    assert_eq!(
        text_of(&dom, "context-total"),
        "seeded: tools/list 1,234 bytes ≈ 309 tokens per connection"
    );
    let alerts = table_of(&dom, "alerts");
    assert!(
        alerts.contains(
            "<tr class=\"alert-firing\"><td>🔥 firing</td><td>error_rate&gt;30%/15m/1</td><td>seeded · search_docs</td><td class=\"num\">40</td>"
        ),
        "{alerts}"
    );
    assert!(
        alerts.contains("error rate of `search_docs` is 40% (2/5 calls) over 15m, threshold 30%"),
        "{alerts}"
    );
    let errors = table_of(&dom, "errors");
    assert!(
        errors.contains(
            "<td class=\"status-bad\">panic</td><td>panic: index out of range<details><summary>backtrace</summary><pre>seeded::search at src/lib.rs:9:5</pre></details></td>"
        ),
        "{errors}"
    );
    drop(served);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_to_a_session_shows_its_span_counts_and_timeline_in_the_browser() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("seeded.db");
    seed(&db);
    let dashboard = Dashboard::new(&db);
    let served = Serving::start(|listener, shutdown| dashboard.serve_on(listener, shutdown)).await;
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-session.png");
    let url = format!("http://{}/#session=session-1", served.addr);
    let dom = tokio::task::spawn_blocking(move || chromium(&url, &screenshot))
        .await
        .unwrap();

    // Its requests 90 s ago, its calls (the longest 29 ms) 60 s ago, by the seed's clock
    // (read per event, so a busy machine adds a few tenths).
    let summary = text_of(&dom, "session-summary");
    assert!(
        summary.starts_with("Started ")
            && summary.contains(", lasted 30.")
            && summary.ends_with(" s: 6 tool calls, 3 other requests."),
        "{summary}"
    );
    let timeline = &dom[dom.find("id=\"session\"").unwrap()..];
    assert!(
        timeline.contains("<th class=\"num\" data-key=\"offset\">After</th>"),
        "{timeline}"
    );
    // Each row: its time, then its offset from the start and what it was.
    let rows = |offset: &str, what: &str| {
        timeline
            .split("<tr>")
            .filter(|row| {
                row.contains(&format!("<td class=\"num\">+{offset}"))
                    && row.contains(&format!("</td><td>{what}</td>"))
            })
            .count()
    };
    assert_eq!(rows("0 ms", "initialize"), 1, "{timeline}");
    assert_eq!(rows("30.", "search_docs"), 5, "{timeline}");
    assert_eq!(rows("30.", "translate"), 1, "{timeline}");
    drop(served);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_protects_the_page_and_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("protected.db");
    seed(&db);
    let dashboard = Dashboard::new(&db).api_key(Some("open sesame".into()));
    let served = Serving::start(|listener, shutdown| dashboard.serve_on(listener, shutdown)).await;
    let addr = served.addr;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let base = format!("http://{addr}");

    let page = client.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(page.status(), 401);
    assert!(page.text().await.unwrap().contains("Sign in"));
    assert_eq!(
        client
            .get(format!("{base}/api/overview"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let wrong = client
        .get(format!("{base}/api/overview"))
        .bearer_auth("open sesam")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let api = client
        .get(format!("{base}/api/overview?range=1h"))
        .bearer_auth("open sesame")
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200);
    let overview: serde_json::Value = api.json().await.unwrap();
    assert_eq!(overview["report"]["calls"], 12);

    let refused = client
        .post(format!("{base}/"))
        .body("key=nope")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let login = client
        .post(format!("{base}/"))
        .body("key=open+sesame")
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert!(
        !cookie.contains("sesame"),
        "the cookie does not carry the key"
    );
    let signed_in = client
        .get(format!("{base}/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 200);
    assert!(signed_in.text().await.unwrap().contains("MCP analytics"));
    let session = client
        .get(format!("{base}/api/session?id=session-1"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let session: serde_json::Value = session.json().await.unwrap();
    assert_eq!(
        (&session["calls"], &session["requests"]),
        (&serde_json::json!(6), &serde_json::json!(3)),
        "{session}"
    );
    let methods: Vec<&str> = session["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["method"].as_str().unwrap())
        .collect();
    assert_eq!(
        methods.len(),
        9,
        "6 calls and 3 other requests: {methods:?}"
    );
    assert_eq!(
        methods[..3],
        ["initialize", "resources/read", "resources/read"]
    );

    let error = Dashboard::new(&db)
        .serve("0.0.0.0:0".parse().unwrap())
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("MCP_ANALYTICS_API_KEY"), "{error}");
    drop(served);
}

/// The rollup row of unknown tool names past 100 an hour reads as a bucket (muted, explained on
/// hover) and never takes the "slowest" or "most failing" mark from a tool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_marks_the_row_of_other_unknown_tools_as_a_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("unknown.db");
    let mut store = SqliteStore::open(&db).unwrap();
    let mut events: Vec<ToolCallEvent> = (0..103)
        .map(|index| {
            event(
                index,
                &format!("guess_{index:03}"),
                "ann",
                Status::UnknownTool,
                9_000,
            )
        })
        .collect();
    events.push(event(103, "translate", "bob", Status::Panic, 1_000));
    events.push(event(104, "translate", "bob", Status::Ok, 1_000));
    store.append(&events).unwrap();
    drop(store);
    let dashboard = Dashboard::new(&db);
    let served = Serving::start(|listener, shutdown| dashboard.serve_on(listener, shutdown)).await;
    let addr = served.addr;
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-unknown.png");
    let url = format!("http://{addr}/");
    let dom = tokio::task::spawn_blocking(move || chromium(&url, &screenshot))
        .await
        .unwrap();

    assert_eq!(text_of(&dom, "card-calls"), "105");
    let tools = &dom[dom.find("id=\"tools\"").unwrap()..dom.find("id=\"errors\"").unwrap()];
    let bucket = tools
        .find("<td>(other unknown tools)</td>")
        .expect("the bucket row");
    let row = &tools[tools[..bucket].rfind("<tr").unwrap()..bucket];
    assert_eq!(
        row,
        "<tr class=\"bucket\" title=\"Calls to unknown tool names past the first 100 distinct ones per server and hour\">"
    );
    drop(served);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markup_in_stored_names_is_shown_as_text_never_run() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hostile.db");
    let tool = "<img src=x onerror=\"document.title='owned'\">";
    let user = "<b id=\"injected\">bold</b>";
    let mut hostile = event(0, tool, user, Status::ToolError, 1_000);
    hostile.error_message = Some("<script>document.title='owned'</script>".into());
    let mut store = SqliteStore::open(&db).unwrap();
    store.append(&[hostile]).unwrap();
    drop(store);
    let dashboard = Dashboard::new(&db);
    let served = Serving::start(|listener, shutdown| dashboard.serve_on(listener, shutdown)).await;
    let addr = served.addr;
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-markup.png");
    let url = format!("http://{addr}/");
    let dom = tokio::task::spawn_blocking(move || chromium(&url, &screenshot))
        .await
        .unwrap();
    let tools = &dom[dom.find("id=\"tools\"").unwrap()..];
    assert!(
        tools.contains("&lt;img src=x onerror=\"document.title='owned'\"&gt;"),
        "the name is shown as text: {tools}"
    );
    assert!(
        !dom.contains("<img src=") && !dom.contains("<b id=\"injected\""),
        "stored markup became elements: {dom}"
    );
    assert!(
        dom.contains("&lt;b id=\"injected\"&gt;bold&lt;/b&gt;"),
        "{dom}"
    );
    assert!(!dom.contains("<title>owned"), "a stored script ran");
    drop(served);
}
