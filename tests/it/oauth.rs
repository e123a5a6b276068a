//! OAuth over real HTTP on 127.0.0.1: a test identity provider (issuer metadata, JWKS,
//! introspection) with keys made in the test, the MCP server behind `HttpServer::oauth`, and
//! real rmcp streamable-HTTP clients sending `Authorization: Bearer`.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use aws_lc_rs::{
    encoding::AsDer,
    rsa::{KeyPair as RsaKeyPair, KeySize},
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair},
};
use axum::{
    Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::{get, post},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk};
use mcp_analytics::{Analytics, MemorySink, OAuthConfig};
use mcp_analytics_tests::{
    client::{call, client_info},
    records::analytics,
    server::TestServer,
};
use rmcp::ServiceExt;
use serde_json::{Value, json};

/// A signing key and its public JWK.
struct TestKey {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
}

impl TestKey {
    fn rsa(kid: &str) -> Self {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let der: aws_lc_rs::encoding::Pkcs8V1Der = pair.as_der().unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(der.as_ref())
        );
        Self::new(
            kid,
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
        )
    }

    fn ec(kid: &str) -> Self {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        Self::new(
            kid,
            Algorithm::ES256,
            EncodingKey::from_ec_der(pkcs8.as_ref()),
        )
    }

    fn new(kid: &str, alg: Algorithm, encoding: EncodingKey) -> Self {
        let mut jwk = Jwk::from_encoding_key(&encoding, alg).unwrap();
        jwk.common.key_id = Some(kid.to_owned());
        Self {
            kid: kid.to_owned(),
            alg,
            encoding,
            jwk: serde_json::to_value(jwk).unwrap(),
        }
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The test identity provider's state.
#[derive(Default)]
struct Idp {
    issuer: Mutex<String>,
    jwks: Mutex<Vec<Value>>,
    jwks_hits: AtomicUsize,
    /// Opaque token → introspection answer.
    introspection: Mutex<HashMap<String, Value>>,
    introspection_hits: Mutex<HashMap<String, usize>>,
}

const CLIENT_BASIC: &str = "Basic cnMtY2xpZW50OnJzK3NlY3JldA=="; // rs-client:rs+secret

async fn start_idp() -> (Arc<Idp>, String) {
    let idp = Arc::new(Idp::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    *idp.issuer.lock().unwrap() = issuer.clone();
    let app = Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(|State(idp): State<Arc<Idp>>| async move {
                let issuer = idp.issuer.lock().unwrap().clone();
                json_response(json!({
                    "issuer": issuer,
                    "jwks_uri": format!("{issuer}/jwks"),
                    "introspection_endpoint": format!("{issuer}/introspect"),
                }))
            }),
        )
        .route(
            "/jwks",
            get(|State(idp): State<Arc<Idp>>| async move {
                idp.jwks_hits.fetch_add(1, Ordering::SeqCst);
                json_response(json!({ "keys": idp.jwks.lock().unwrap().clone() }))
            }),
        )
        .route("/introspect", post(introspect))
        .with_state(idp.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (idp, issuer)
}

async fn introspect(
    State(idp): State<Arc<Idp>>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, String) {
    if headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        != Some(CLIENT_BASIC)
    {
        return (StatusCode::UNAUTHORIZED, "{}".into());
    }
    let token = body
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .unwrap_or_default()
        .to_owned();
    *idp.introspection_hits
        .lock()
        .unwrap()
        .entry(token.clone())
        .or_default() += 1;
    let answer = idp
        .introspection
        .lock()
        .unwrap()
        .get(&token)
        .cloned()
        .unwrap_or(json!({"active": false}));
    (StatusCode::OK, answer.to_string())
}

fn json_response(value: Value) -> ([(&'static str, &'static str); 1], String) {
    ([("content-type", "application/json")], value.to_string())
}

/// Where the server publishes its protected-resource metadata.
fn metadata_url(server: &TestServer) -> String {
    server.url("/.well-known/oauth-protected-resource/mcp")
}

/// An identity provider publishing one P-256 key, and an MCP server taking its JWTs (with
/// `configure`'s settings) that records calls into the returned sink.
async fn ec_server(
    configure: impl FnOnce(OAuthConfig) -> OAuthConfig + 'static,
) -> (String, TestKey, MemorySink, TestServer) {
    let (idp, issuer) = start_idp().await;
    let key = TestKey::ec("ec-1");
    idp.jwks.lock().unwrap().push(key.jwk.clone());
    let sink = MemorySink::new();
    let analytics = Analytics::builder().sink(sink.clone()).build().unwrap();
    let idp_issuer = issuer.clone();
    let server = TestServer::demo()
        .analytics(analytics)
        .oauth(move |resource| configure(OAuthConfig::jwt(idp_issuer, resource)))
        .start()
        .await;
    (issuer, key, sink, server)
}

/// POSTs an `initialize` to `/mcp` with `authorization`; returns the status and the
/// `WWW-Authenticate` header.
async fn raw_initialize(addr: SocketAddr, authorization: Option<&str>) -> (u16, Option<String>) {
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}
    });
    let mut request = reqwest::Client::new()
        .post(format!("http://{addr}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_string());
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    let response = request.send().await.unwrap();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|value| value.to_str().unwrap().to_owned());
    (response.status().as_u16(), challenge)
}

fn claims(issuer: &str, audience: &str, sub: &str) -> Value {
    json!({
        "iss": issuer, "aud": audience, "sub": sub, "exp": now() + 600, "iat": now(),
        "email": format!("{sub}@example.com"), "name": "Alice Liddell", "scope": "mcp:tools"
    })
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// Asserts a 401 with `error="invalid_token"` pointing at the metadata.
async fn assert_invalid(server: &TestServer, token: &str, what: &str) {
    let (status, challenge) = raw_initialize(server.addr, Some(&format!("Bearer {token}"))).await;
    assert_eq!(status, 401, "{what}: status");
    let challenge = challenge.unwrap_or_else(|| panic!("{what}: no WWW-Authenticate"));
    assert!(
        challenge.starts_with("Bearer ")
            && challenge.contains("error=\"invalid_token\"")
            && challenge.contains(&format!("resource_metadata=\"{}\"", metadata_url(server))),
        "{what}: {challenge}"
    );
}

#[tokio::test]
async fn jwt_access_tokens_identify_users_and_bad_ones_are_refused() {
    let (idp, issuer) = start_idp().await;
    let rsa = TestKey::rsa("rsa-1");
    idp.jwks.lock().unwrap().push(rsa.jwk.clone());
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("oauth.db");
    let sink = MemorySink::new();
    let analytics = analytics(&sink, &db);
    let idp_issuer = issuer.clone();
    let server = TestServer::demo()
        .analytics(analytics.clone())
        .oauth(move |resource| {
            OAuthConfig::jwt(idp_issuer, resource)
                .jwks_refresh_cooldown(Duration::from_millis(1000))
        })
        .start()
        .await;
    let audience = server.mcp_url();

    // A valid token: the call is recorded under its subject, email and name masked.
    let valid = rsa.sign(&claims(&issuer, &audience, "alice"));
    let client = client_info()
        .serve(server.transport(Some(&valid)))
        .await
        .unwrap();
    let whoami = call(&client, "whoami", json!({})).await.unwrap();
    assert!(
        format!("{:?}", whoami.content).contains("alice|"),
        "{whoami:?}"
    );
    call(&client, "add", json!({"a": 1, "b": 2})).await.unwrap();
    client.cancel().await.unwrap();

    // No token: 401 pointing at the metadata, without an error code.
    let (status, challenge) = raw_initialize(server.addr, None).await;
    assert_eq!(status, 401);
    assert_eq!(
        challenge.as_deref(),
        Some(format!("Bearer resource_metadata=\"{}\"", metadata_url(&server)).as_str())
    );
    let (status, _) = raw_initialize(server.addr, Some("Basic YWxpY2U6cHc=")).await;
    assert_eq!(status, 401, "other schemes are not tokens");

    // Every kind of bad token: 401 invalid_token.
    let mut expired = claims(&issuer, &audience, "mallory");
    expired["exp"] = json!(now() - 3600);
    assert_invalid(&server, &rsa.sign(&expired), "expired").await;
    let mut early = claims(&issuer, &audience, "mallory");
    early["nbf"] = json!(now() + 3600);
    assert_invalid(&server, &rsa.sign(&early), "not yet valid").await;
    assert_invalid(
        &server,
        &rsa.sign(&claims(&issuer, "https://other.example/mcp", "mallory")),
        "wrong audience",
    )
    .await;
    assert_invalid(
        &server,
        &rsa.sign(&claims("http://127.0.0.1:1", &audience, "mallory")),
        "wrong issuer",
    )
    .await;
    let mut no_audience = claims(&issuer, &audience, "mallory");
    no_audience.as_object_mut().unwrap().remove("aud");
    assert_invalid(&server, &rsa.sign(&no_audience), "no audience").await;
    // A JWT names its user in `sub`; `username` (an introspection field) does not stand in.
    let mut no_subject = claims(&issuer, &audience, "mallory");
    no_subject.as_object_mut().unwrap().remove("sub");
    no_subject["username"] = json!("mallory");
    assert_invalid(&server, &rsa.sign(&no_subject), "no sub, a username").await;
    // Tampered payload, original signature.
    let parts: Vec<&str> = valid.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(&claims(&issuer, &audience, "mallory")),
        parts[2]
    );
    assert_invalid(&server, &tampered, "tampered payload").await;
    // Signed by another key that claims the known kid.
    let impostor = TestKey::ec("rsa-1");
    assert_invalid(
        &server,
        &impostor.sign(&claims(&issuer, &audience, "mallory")),
        "wrong key, known kid",
    )
    .await;
    // `alg: none`.
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims(&issuer, &audience, "mallory"))
    );
    assert_invalid(&server, &none, "alg none").await;
    // HS256 "signed" with the RSA public key (algorithm confusion).
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("rsa-1".into());
    let public = rsa.jwk["n"].as_str().unwrap().as_bytes().to_vec();
    let confused = jsonwebtoken::encode(
        &header,
        &claims(&issuer, &audience, "mallory"),
        &EncodingKey::from_secret(&public),
    )
    .unwrap();
    assert_invalid(&server, &confused, "HS256 with the public key").await;
    assert_invalid(&server, "not-a-jwt", "garbage").await;

    // An unknown kid is refused; a flood of them costs at most one JWKS fetch per cooldown.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let rotated = TestKey::ec("ec-2");
    let before = idp.jwks_hits.load(Ordering::SeqCst);
    let flood = std::time::Instant::now();
    for index in 0..10 {
        let stranger = TestKey::ec(&format!("unknown-{index}"));
        assert_invalid(
            &server,
            &stranger.sign(&claims(&issuer, &audience, "mallory")),
            "unknown kid",
        )
        .await;
    }
    assert_invalid(
        &server,
        &rotated.sign(&claims(&issuer, &audience, "bob")),
        "not yet published kid",
    )
    .await;
    let fetched = idp.jwks_hits.load(Ordering::SeqCst) - before;
    // One fetch per started cooldown (1 s) at most, however long a loaded machine takes for
    // the 11 requests.
    let allowed = 1 + flood.elapsed().as_millis() as usize / 1000;
    assert!(
        fetched <= allowed,
        "11 unknown-kid tokens in {:?} fetched the JWKS {fetched} times (at most {allowed})",
        flood.elapsed()
    );

    // Key rotation: once the new key is published, its tokens are accepted after a refresh.
    idp.jwks.lock().unwrap().push(rotated.jwk.clone());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let rotated_token = rotated.sign(&claims(&issuer, &audience, "bob"));
    let bob = client_info()
        .serve(server.transport(Some(&rotated_token)))
        .await
        .unwrap();
    call(&bob, "add", json!({"a": 2, "b": 2})).await.unwrap();
    bob.cancel().await.unwrap();

    // The dashboard is not behind the token check (it has its own key).
    let dashboard = reqwest::Client::new()
        .get(format!("http://{}/analytics/api/overview", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(dashboard.status().as_u16(), 200);

    // A real client with an expired token cannot even connect.
    assert!(
        client_info()
            .serve(server.transport(Some(&rsa.sign(&expired))))
            .await
            .is_err()
    );

    server.stop().await;
    let events = sink.events();
    let users: Vec<_> = events
        .iter()
        .map(|event| event.user_id.as_deref())
        .collect();
    assert_eq!(
        users,
        [Some("alice"), Some("alice"), Some("bob")],
        "{events:#?}"
    );
    let alice = &events[0];
    assert_eq!(alice.user_email.as_deref(), Some("a***@example.com"));
    assert_eq!(alice.user_name.as_deref(), Some("A*** L***"));
    let connection = rusqlite::Connection::open(&db).unwrap();
    let stored: Vec<(Option<String>, Option<String>)> = connection
        .prepare("SELECT user_id, user_email FROM tool_calls ORDER BY ts_ms, id")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(stored.len(), 3);
    assert_eq!(
        stored[0],
        (Some("alice".into()), Some("a***@example.com".into()))
    );
    assert!(
        stored
            .iter()
            .all(|(user, _)| user.as_deref() != Some("mallory"))
    );
    // The report's top users (dashboard and CLI) name alice by her masked details.
    let report = mcp_analytics::store::SqliteStore::open(&db)
        .unwrap()
        .report(0, None)
        .unwrap();
    let top = &report.top_users[0];
    assert_eq!(
        (
            top.user_id.as_str(),
            top.calls,
            top.email.as_deref(),
            top.name.as_deref()
        ),
        ("alice", 2, Some("a***@example.com"), Some("A*** L***"))
    );
}

/// A session id is not a credential: another user's valid token with it is answered like an
/// unknown session, and nothing runs as the session's owner.
#[tokio::test]
async fn sessions_belong_to_the_user_who_opened_them() {
    let (issuer, key, sink, server) = ec_server(|config| config).await;
    let resource = server.mcp_url();
    let alice = format!("Bearer {}", key.sign(&claims(&issuer, &resource, "alice")));
    let mallory = format!(
        "Bearer {}",
        key.sign(&claims(&issuer, &resource, "mallory"))
    );
    let http = reqwest::Client::new();
    let post = |authorization: &str, session: Option<&str>, body: Value| {
        let mut request = http
            .post(format!("http://{}/mcp", server.addr))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("authorization", authorization)
            .header("mcp-protocol-version", "2025-06-18")
            .body(body.to_string());
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        request.send()
    };
    let opened = post(
        &alice,
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
               "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}}),
    )
    .await
    .unwrap();
    assert_eq!(opened.status(), 200);
    let session = opened.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let hijack = post(&mallory, Some(&session), initialized.clone())
        .await
        .unwrap();
    assert_eq!(hijack.status(), 404, "another user's session");
    let own = post(&alice, Some(&session), initialized).await.unwrap();
    assert_eq!(own.status(), 202, "the owner's session");
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                      "params": {"name": "add", "arguments": {"a": 1, "b": 2}}});
    let hijack = post(&mallory, Some(&session), call.clone()).await.unwrap();
    assert_eq!(hijack.status(), 404);
    let own = post(&alice, Some(&session), call).await.unwrap();
    assert_eq!(own.status(), 200);
    let body = own.text().await.unwrap();
    assert!(body.contains(r#""sum":3"#), "alice's call ran: {body}");
    server.stop().await;
    let users: Vec<_> = sink
        .events()
        .into_iter()
        .map(|event| event.user_id)
        .collect();
    assert_eq!(users, [Some("alice".to_owned())]);
}

/// However many sessions are open, none is forgotten: past the cap new sessions are refused
/// (`503`, retry later) instead of evicting a live session's owner, and a closed session frees
/// its place.
#[tokio::test]
async fn a_full_session_table_refuses_new_sessions_and_forgets_none() {
    let (issuer, key, _sink, server) = ec_server(|config| config.max_sessions(2)).await;
    let resource = server.mcp_url();
    let token = |user: &str| format!("Bearer {}", key.sign(&claims(&issuer, &resource, user)));
    let (alice, bob, mallory) = (token("alice"), token("bob"), token("mallory"));
    let http = reqwest::Client::new();
    let url = format!("http://{}/mcp", server.addr);
    let send = |method: reqwest::Method, authorization: &str, session: Option<&str>, body: &str| {
        let mut request = http
            .request(method, &url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("authorization", authorization)
            .header("mcp-protocol-version", "2025-06-18")
            .body(body.to_owned());
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        request.send()
    };
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}})
    .to_string();
    let open = |authorization: String| {
        let request = send(reqwest::Method::POST, &authorization, None, &initialize);
        async move {
            let response = request.await.unwrap();
            let session = response
                .headers()
                .get("mcp-session-id")
                .map(|value| value.to_str().unwrap().to_owned());
            let retry = response.headers().get("retry-after").is_some();
            (response.status().as_u16(), session, retry)
        }
    };
    let (status, first, _) = open(alice.clone()).await;
    assert_eq!(status, 200);
    let (status, second, _) = open(alice.clone()).await;
    assert_eq!(status, 200);
    let (first, second) = (first.unwrap(), second.unwrap());

    let (status, session, retry) = open(bob.clone()).await;
    assert_eq!(
        (status, session, retry),
        (503, None, true),
        "a full table refuses a new session instead of forgetting a live one"
    );
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string();
    for session in [&first, &second] {
        let hijack = send(reqwest::Method::POST, &mallory, Some(session), &initialized)
            .await
            .unwrap();
        assert_eq!(hijack.status(), 404, "alice's sessions are still hers");
    }
    let own = send(reqwest::Method::POST, &alice, Some(&first), &initialized)
        .await
        .unwrap();
    assert_eq!(own.status(), 202);

    let closed = send(reqwest::Method::DELETE, &alice, Some(&second), "")
        .await
        .unwrap();
    assert!(closed.status().is_success(), "{}", closed.status());
    let (status, session, _) = open(bob).await;
    assert_eq!(status, 200, "a closed session frees its place");
    let hijack = send(
        reqwest::Method::POST,
        &mallory,
        Some(&session.unwrap()),
        &initialized,
    )
    .await
    .unwrap();
    assert_eq!(hijack.status(), 404, "bob's new session is bound to bob");
    server.stop().await;
}

#[tokio::test]
async fn protected_resource_metadata_is_public_and_scopes_are_enforced() {
    let (issuer, key, sink, server) = ec_server(|config| {
        config
            .required_scopes(["mcp:tools"])
            .scopes_supported(["mcp:tools", "mcp:admin"])
    })
    .await;

    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let response = reqwest::Client::new()
            .get(format!("http://{}{path}", server.addr))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path} needs no token");
        let document: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
        assert_eq!(
            document,
            json!({
                "resource": server.mcp_url(),
                "authorization_servers": [issuer],
                "scopes_supported": ["mcp:tools", "mcp:admin"],
                "bearer_methods_supported": ["header"],
            })
        );
    }

    let (status, challenge) = raw_initialize(server.addr, None).await;
    assert_eq!(status, 401);
    assert!(challenge.unwrap().contains("scope=\"mcp:tools\""));

    let mut narrow = claims(&issuer, &server.mcp_url(), "carol");
    narrow["scope"] = json!("mcp:read");
    let (status, challenge) =
        raw_initialize(server.addr, Some(&format!("Bearer {}", key.sign(&narrow)))).await;
    assert_eq!(status, 403);
    let challenge = challenge.unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\"")
            && challenge.contains("scope=\"mcp:tools\"")
            && challenge.contains(&format!("resource_metadata=\"{}\"", metadata_url(&server))),
        "{challenge}"
    );

    let mut wide = claims(&issuer, &server.mcp_url(), "carol");
    wide["scp"] = json!(["mcp:read", "mcp:tools"]);
    wide.as_object_mut().unwrap().remove("scope");
    let client = client_info()
        .serve(server.transport(Some(&key.sign(&wide))))
        .await
        .unwrap();
    call(&client, "add", json!({"a": 1, "b": 1})).await.unwrap();
    client.cancel().await.unwrap();

    server.stop().await;
    let users: Vec<_> = sink
        .events()
        .into_iter()
        .map(|event| event.user_id)
        .collect();
    assert_eq!(users, [Some("carol".to_owned())]);
}

/// The audience introspected tokens must name.
const AUDIENCE: &str = "https://mcp.example.com/mcp";

#[tokio::test]
async fn opaque_tokens_are_introspected_and_cached() {
    let (idp, issuer) = start_idp().await;
    idp.introspection.lock().unwrap().insert(
        "opaque-active".into(),
        json!({"active": true, "sub": "ivan", "scope": "mcp:tools", "exp": now() + 600, "iss": issuer, "aud": ["other", AUDIENCE], "email": "ivan@example.com"}),
    );
    for (token, answer) in [
        (
            "opaque-other-issuer",
            json!({"active": true, "sub": "mallory", "iss": "https://evil.example", "aud": AUDIENCE}),
        ),
        // Issued for another service (token passthrough): active, but not for us.
        (
            "opaque-other-audience",
            json!({"active": true, "sub": "mallory", "iss": issuer, "aud": "https://other.example/api"}),
        ),
        (
            "opaque-no-audience",
            json!({"active": true, "sub": "mallory", "iss": issuer}),
        ),
    ] {
        idp.introspection
            .lock()
            .unwrap()
            .insert(token.into(), answer);
    }
    let sink = MemorySink::new();
    let analytics = Analytics::builder()
        .sink(sink.clone())
        .user_details(mcp_analytics::UserDetails::Full)
        .build()
        .unwrap();
    let endpoint = format!("{issuer}/introspect");
    let idp_issuer = issuer.clone();
    let server = TestServer::demo()
        .analytics(analytics.clone())
        .oauth(move |_| {
            OAuthConfig::introspection(idp_issuer, endpoint, AUDIENCE)
                .client_credentials("rs-client", "rs secret")
        })
        .start()
        .await;

    let client = client_info()
        .serve(server.transport(Some("opaque-active")))
        .await
        .unwrap();
    call(&client, "add", json!({"a": 1, "b": 1})).await.unwrap();
    call(&client, "add", json!({"a": 2, "b": 1})).await.unwrap();
    client.cancel().await.unwrap();
    assert_eq!(
        idp.introspection_hits.lock().unwrap().get("opaque-active"),
        Some(&1),
        "answers are cached"
    );

    assert_invalid(&server, "opaque-inactive", "inactive").await;
    assert_invalid(&server, "opaque-other-issuer", "other issuer").await;
    assert_invalid(&server, "opaque-other-audience", "not for this resource").await;
    assert_invalid(&server, "opaque-no-audience", "not for this resource").await;
    assert!(
        client_info()
            .serve(server.transport(Some("opaque-inactive")))
            .await
            .is_err()
    );

    server.stop().await;
    let events = sink.events();
    assert_eq!(events.len(), 2);
    assert!(
        events
            .iter()
            .all(|event| event.user_id.as_deref() == Some("ivan"))
    );
    assert_eq!(
        events[0].user_email.as_deref(),
        Some("ivan@example.com"),
        "UserDetails::Full"
    );
}

#[tokio::test]
async fn an_unreachable_identity_provider_is_a_503_not_a_401() {
    // Nothing listens on the issuer: the token may be fine, so it is not declared invalid.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let analytics = Analytics::builder().build().unwrap();
    let server = TestServer::demo()
        .analytics(analytics)
        .oauth(move |resource| OAuthConfig::jwt(issuer, resource))
        .start()
        .await;
    let (status, _) = raw_initialize(server.addr, Some("Bearer a.b.c")).await;
    assert_ne!(status, 200);
    let key = TestKey::ec("k");
    let token = key.sign(&claims("http://x", &server.mcp_url(), "z"));
    let (status, _) = raw_initialize(server.addr, Some(&format!("Bearer {token}"))).await;
    assert_eq!(status, 503);
    server.stop().await;
}
