//! The fake Stripe server driven by the real async-stripe 1.0.0-rc.10 client: every response
//! parses, idempotency, pagination, meter dedupe, faults, and signed webhooks that
//! `stripe_webhook::Webhook::construct_event` turns into the expected typed events.
#![allow(missing_docs)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::TryStreamExt;
use mcp_analytics_tests::fake_stripe::{FakeStripe, Fault, FaultRule, PriceKind, WebhookDelivery};
use stripe::{Client, ClientBuilder, IdempotencyKey, RequestStrategy, StripeError, StripeRequest};
use stripe_billing::billing_meter::RetrieveBillingMeter;
use stripe_billing::billing_meter_event::CreateBillingMeterEvent;
use stripe_billing::billing_portal_session::CreateBillingPortalSession;
use stripe_billing::invoice::RetrieveInvoice;
use stripe_billing::subscription::{
    ListSubscription, ListSubscriptionStatus, RetrieveSubscription,
};
use stripe_billing::{
    BillingMeterResourceAggregationSettingsFormula,
    BillingMeterResourceCustomerMappingSettingsType, BillingMeterStatus,
};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionSubscriptionData,
    ExpireCheckoutSession, ListCheckoutSession, RetrieveCheckoutSession,
};
use stripe_core::customer::{
    CreateCustomer, DeleteCustomer, ListCustomer, RetrieveCustomer, RetrieveCustomerReturned,
};
use stripe_product::price::RetrievePrice;
use stripe_shared::{
    ApiErrors, ApiErrorsCode, ApiErrorsType, CheckoutSessionMode, CheckoutSessionPaymentStatus,
    CheckoutSessionStatus, Customer, InvoiceStatus, PriceType, RecurringUsageType,
    SubscriptionStatus,
};
use stripe_webhook::{EventObject, Webhook, WebhookError};

fn client(stripe: &FakeStripe) -> Client {
    ClientBuilder::new(stripe.secret_key())
        .url(stripe.base_url())
        .build()
        .expect("client")
}

fn key(k: &str) -> RequestStrategy {
    RequestStrategy::Idempotent(IdempotencyKey::new(k).expect("key"))
}

fn meta(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn line(price: &str, quantity: Option<u64>) -> CreateCheckoutSessionLineItems {
    let mut li = CreateCheckoutSessionLineItems::new();
    li.price = Some(price.into());
    li.quantity = quantity;
    li
}

/// `(status, type, code)` of a Stripe API error, panicking on anything else.
fn api_error<T: std::fmt::Debug>(
    r: Result<T, StripeError>,
) -> (u16, ApiErrorsType, Option<ApiErrorsCode>, String) {
    match r {
        Err(StripeError::Stripe(e, status)) => {
            (status, e.type_, e.code, e.message.unwrap_or_default())
        }
        other => panic!("expected a Stripe API error, got {other:?}"),
    }
}

async fn create_customer(c: &Client, user: &str) -> Customer {
    CreateCustomer::new()
        .email(format!("{user}@example.com"))
        .metadata(meta(&[("mcp_user_id", user)]))
        .customize()
        .request_strategy(key(&format!("mcpcust:{user}")))
        .send(c)
        .await
        .expect("create customer")
}

/// A webhook receiver that records `(body, Stripe-Signature)` and answers 200.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<(String, String)>>>,
}

async fn receiver() -> Receiver {
    use axum::{Router, http::HeaderMap, routing::post};
    let got: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let sink = got.clone();
    let app = Router::new().route(
        "/stripe/webhook",
        post(move |headers: HeaderMap, body: String| {
            let sink = sink.clone();
            async move {
                let sig = headers
                    .get("stripe-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                sink.lock().unwrap().push((body, sig));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Receiver {
        url: format!("http://{addr}/stripe/webhook"),
        got,
    }
}

/// Verifies every delivery with the real webhook parser and returns the parsed objects.
fn parse_all(stripe: &FakeStripe, deliveries: &[WebhookDelivery]) -> Vec<EventObject> {
    deliveries
        .iter()
        .map(|d| {
            assert_eq!(d.status, Some(200), "delivery failed: {d:?}");
            let event = Webhook::construct_event(&d.body, &d.signature, stripe.webhook_secret())
                .unwrap_or_else(|e| panic!("{} does not parse: {e}\n{}", d.event_type, d.body));
            assert_eq!(event.type_.as_str(), d.event_type);
            assert_eq!(event.id.as_str(), d.event_id);
            event.data.object
        })
        .collect()
}

#[tokio::test]
async fn customers_create_retrieve_and_idempotency() {
    let stripe = FakeStripe::start().await;
    let c = client(&stripe);

    let first = create_customer(&c, "u_1").await;
    assert!(first.id.as_str().starts_with("cus_"));
    assert_eq!(first.email.as_deref(), Some("u_1@example.com"));
    assert_eq!(first.metadata.as_ref().unwrap()["mcp_user_id"], "u_1");

    // Same key, same params: the first answer again, no second customer.
    let replay = create_customer(&c, "u_1").await;
    assert_eq!(replay.id, first.id);
    assert_eq!(stripe.customers().len(), 1);
    let reqs = stripe.requests();
    assert_eq!(reqs.len(), 2);
    assert!(!reqs[0].replayed && reqs[1].replayed);
    assert_eq!(reqs[1].idempotency_key.as_deref(), Some("mcpcust:u_1"));
    assert_eq!(reqs[1].form["metadata"]["mcp_user_id"], "u_1");
    assert_eq!(stripe.count("POST", "/v1/customers"), 2);

    // Same key, other params: idempotency_error.
    let other = CreateCustomer::new()
        .email("someone-else@example.com")
        .customize()
        .request_strategy(key("mcpcust:u_1"))
        .send(&c)
        .await;
    let (status, ty, _, msg) = api_error(other);
    assert_eq!((status, ty), (400, ApiErrorsType::IdempotencyError));
    assert!(msg.contains("same parameters"), "{msg}");
    assert_eq!(stripe.customers().len(), 1);

    // List by email.
    create_customer(&c, "u_2").await;
    let by_email = ListCustomer::new()
        .email("u_1@example.com")
        .limit(10)
        .send(&c)
        .await
        .unwrap();
    assert_eq!(by_email.data.len(), 1);
    assert_eq!(by_email.data[0].id, first.id);
    assert_eq!(ListCustomer::new().send(&c).await.unwrap().data.len(), 2);

    // Retrieve, and a missing one.
    match RetrieveCustomer::new(first.id.clone())
        .send(&c)
        .await
        .unwrap()
    {
        RetrieveCustomerReturned::Customer(got) => assert_eq!(got.id, first.id),
        other => panic!("unexpected {other:?}"),
    }
    let (status, ty, code, _) = api_error(RetrieveCustomer::new("cus_nope").send(&c).await);
    assert_eq!(status, 404);
    assert_eq!(ty, ApiErrorsType::InvalidRequestError);
    assert_eq!(code, Some(ApiErrorsCode::ResourceMissing));
}

#[tokio::test]
async fn wrong_or_missing_key_is_401() {
    let stripe = FakeStripe::start().await;
    let bad = ClientBuilder::new("sk_test_wrong")
        .url(stripe.base_url())
        .build()
        .unwrap();
    let (status, ty, _, msg) = api_error(CreateCustomer::new().send(&bad).await);
    assert_eq!((status, ty), (401, ApiErrorsType::InvalidRequestError));
    assert!(msg.contains("Invalid API Key"), "{msg}");
    assert!(stripe.customers().is_empty());

    let raw = reqwest::Client::new()
        .get(format!("{}v1/customers", stripe.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 401);
    let body: serde_json::Value = raw.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn prices_retrieve_and_missing() {
    let stripe = FakeStripe::start().await;
    stripe.add_price("price_once", 500, "usd", PriceKind::OneTime);
    stripe.add_price("price_sub", 900, "eur", PriceKind::Recurring);
    stripe.add_price(
        "price_meter",
        2,
        "usd",
        PriceKind::Metered {
            meter: "api_call".into(),
        },
    );
    let c = client(&stripe);

    let once = RetrievePrice::new("price_once").send(&c).await.unwrap();
    assert_eq!(once.unit_amount, Some(500));
    assert_eq!(once.type_, PriceType::OneTime);
    assert!(once.recurring.is_none());
    let sub = RetrievePrice::new("price_sub").send(&c).await.unwrap();
    assert_eq!(sub.type_, PriceType::Recurring);
    assert_eq!(sub.currency.to_string(), "eur");
    let metered = RetrievePrice::new("price_meter").send(&c).await.unwrap();
    let rec = metered.recurring.expect("recurring");
    assert_eq!(rec.usage_type, RecurringUsageType::Metered);
    assert!(rec.meter.is_some_and(|m| m.starts_with("mtr_")));

    let (status, _, code, msg) = api_error(RetrievePrice::new("price_missing").send(&c).await);
    assert_eq!(status, 404);
    assert_eq!(code, Some(ApiErrorsCode::ResourceMissing));
    assert!(msg.contains("price_missing"));
}

#[tokio::test]
async fn checkout_session_create_retrieve_replay_and_validation() {
    let stripe = FakeStripe::start().await;
    stripe.add_price("price_a", 500, "usd", PriceKind::OneTime);
    stripe.add_price("price_r", 900, "usd", PriceKind::Recurring);
    let c = client(&stripe);
    let cus = create_customer(&c, "u_1").await;
    let expires = stripe_time() + 3600;

    let create = || {
        CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Payment)
            .success_url("https://example.com/ok?session_id={CHECKOUT_SESSION_ID}")
            .cancel_url("https://example.com/cancel")
            .line_items(vec![line("price_a", Some(3))])
            .customer(cus.id.as_str())
            .client_reference_id("u_1")
            .metadata(meta(&[("mcp_tool", "search"), ("mcp_user_id", "u_1")]))
            .expires_at(expires)
    };
    let session = create()
        .customize()
        .request_strategy(key("mcpcs:u_1:search:1"))
        .send(&c)
        .await
        .unwrap();
    assert!(session.id.as_str().starts_with("cs_test_"));
    assert_eq!(session.status, Some(CheckoutSessionStatus::Open));
    assert_eq!(session.payment_status, CheckoutSessionPaymentStatus::Unpaid);
    assert_eq!(session.mode, CheckoutSessionMode::Payment);
    assert_eq!(session.amount_total, Some(1500));
    assert_eq!(
        session.currency.as_ref().map(|c| c.to_string()).as_deref(),
        Some("usd")
    );
    assert_eq!(session.expires_at, expires);
    assert_eq!(session.client_reference_id.as_deref(), Some("u_1"));
    assert_eq!(session.metadata.as_ref().unwrap()["mcp_tool"], "search");
    assert_eq!(
        session.url.as_deref(),
        Some(format!("{}checkout/pay/{}", stripe.base_url(), session.id).as_str())
    );
    assert_eq!(
        session
            .customer
            .as_ref()
            .map(|c| c.id().as_str().to_owned()),
        Some(cus.id.as_str().to_owned())
    );

    let again = create()
        .customize()
        .request_strategy(key("mcpcs:u_1:search:1"))
        .send(&c)
        .await
        .unwrap();
    assert_eq!(again.id, session.id);
    assert_eq!(stripe.checkout_sessions().len(), 1);

    let got = RetrieveCheckoutSession::new(session.id.clone())
        .send(&c)
        .await
        .unwrap();
    assert_eq!(got.id, session.id);
    assert_eq!(got.amount_total, Some(1500));

    // The hosted page is served.
    let page = reqwest::get(session.url.clone().unwrap()).await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.unwrap().contains(session.id.as_str()));

    // Validation: unknown price, recurring price in payment mode, missing quantity,
    // expires_at out of range.
    let bad = |items: Vec<CreateCheckoutSessionLineItems>, mode| {
        CreateCheckoutSession::new()
            .mode(mode)
            .success_url("https://example.com/ok")
            .line_items(items)
            .customer(cus.id.as_str())
    };
    let (status, _, code, _) = api_error(
        bad(vec![line("price_x", Some(1))], CheckoutSessionMode::Payment)
            .send(&c)
            .await,
    );
    assert_eq!((status, code), (400, Some(ApiErrorsCode::ResourceMissing)));
    let (status, _, _, msg) = api_error(
        bad(vec![line("price_r", Some(1))], CheckoutSessionMode::Payment)
            .send(&c)
            .await,
    );
    assert_eq!(status, 400);
    assert!(msg.contains("recurring"), "{msg}");
    let (status, _, _, _) = api_error(
        bad(vec![line("price_a", None)], CheckoutSessionMode::Payment)
            .send(&c)
            .await,
    );
    assert_eq!(status, 400);
    let (status, _, _, msg) = api_error(
        bad(vec![line("price_a", Some(1))], CheckoutSessionMode::Payment)
            .expires_at(stripe_time() + 60)
            .send(&c)
            .await,
    );
    assert_eq!(status, 400);
    assert!(msg.contains("expires_at"), "{msg}");
    assert_eq!(stripe.checkout_sessions().len(), 1);

    // Expire through the API.
    let expired = ExpireCheckoutSession::new(session.id.clone())
        .send(&c)
        .await
        .unwrap();
    assert_eq!(expired.status, Some(CheckoutSessionStatus::Expired));
    assert!(expired.url.is_none());
}

fn stripe_time() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn list_checkout_sessions_paginates_over_100() {
    let stripe = FakeStripe::start().await;
    stripe.add_price("price_a", 100, "usd", PriceKind::OneTime);
    let c = client(&stripe);
    let cus = create_customer(&c, "u_p").await;
    let other = create_customer(&c, "u_other").await;
    let mut ids = Vec::new();
    for i in 0..105 {
        let who = if i % 50 == 7 { &other } else { &cus };
        let s = CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Payment)
            .success_url("https://example.com/ok")
            .line_items(vec![line("price_a", Some(1))])
            .customer(who.id.as_str())
            .metadata(meta(&[("n", &i.to_string())]))
            .send(&c)
            .await
            .unwrap();
        if who.id == cus.id {
            ids.push(s.id);
        }
    }
    assert_eq!(ids.len(), 103);
    // Complete one so the status filter has something to find.
    stripe.complete_checkout(ids[3].as_str()).await;

    let page1 = ListCheckoutSession::new()
        .customer(cus.id.as_str())
        .limit(100)
        .send(&c)
        .await
        .unwrap();
    assert_eq!(page1.data.len(), 100);
    assert!(page1.has_more);
    assert_eq!(page1.url, "/v1/checkout/sessions");
    // Newest first.
    assert_eq!(page1.data[0].id, ids[102]);
    let last = page1.data.last().unwrap().id.clone();
    let page2 = ListCheckoutSession::new()
        .customer(cus.id.as_str())
        .limit(100)
        .starting_after(last.as_str())
        .send(&c)
        .await
        .unwrap();
    assert_eq!(page2.data.len(), 3);
    assert!(!page2.has_more);
    assert_eq!(page2.data[2].id, ids[0]);

    // The client's own paginator walks every page.
    let all: Vec<_> = ListCheckoutSession::new()
        .customer(cus.id.as_str())
        .limit(40)
        .paginate()
        .stream(&c)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 103);
    let q = stripe
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET")
        .count();
    assert_eq!(q, 2 + 3, "two manual pages + three paginator pages of 40");

    let complete = ListCheckoutSession::new()
        .customer(cus.id.as_str())
        .status(CheckoutSessionStatus::Complete)
        .send(&c)
        .await
        .unwrap();
    assert_eq!(complete.data.len(), 1);
    assert_eq!(complete.data[0].id, ids[3]);
    assert_eq!(
        complete.data[0].payment_status,
        CheckoutSessionPaymentStatus::Paid
    );

    let (status, _, _, _) = api_error(ListCheckoutSession::new().limit(101).send(&c).await);
    assert_eq!(status, 400);
}

#[tokio::test]
async fn subscription_checkout_completes_with_webhooks_and_lists() {
    let stripe = FakeStripe::start().await;
    let rx = receiver().await;
    stripe.set_webhook_url(&rx.url);
    stripe.add_price("price_pro", 900, "usd", PriceKind::Recurring);
    stripe.add_price(
        "price_calls",
        3,
        "usd",
        PriceKind::Metered {
            meter: "api_call".into(),
        },
    );
    let c = client(&stripe);
    let cus = create_customer(&c, "u_s").await;

    let mut sd = CreateCheckoutSessionSubscriptionData::new();
    sd.metadata = Some(meta(&[("mcp_user_id", "u_s"), ("mcp_tool", "pro")]));
    let session = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Subscription)
        .success_url("https://example.com/ok")
        .line_items(vec![line("price_pro", Some(1)), line("price_calls", None)])
        .customer(cus.id.as_str())
        .client_reference_id("u_s")
        .subscription_data(sd)
        .send(&c)
        .await
        .unwrap();
    assert_eq!(session.amount_total, Some(900));

    let deliveries = stripe.complete_checkout(session.id.as_str()).await;
    let types: Vec<_> = deliveries.iter().map(|d| d.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "checkout.session.completed",
            "customer.subscription.created",
            "invoice.paid"
        ]
    );
    // The receiver got exactly what the deliveries report.
    assert_eq!(rx.got.lock().unwrap().len(), 3);
    assert_eq!(rx.got.lock().unwrap()[0].0, deliveries[0].body);
    assert_eq!(rx.got.lock().unwrap()[0].1, deliveries[0].signature);

    let sub_id = stripe.subscriptions()[0].id.clone();
    let objects = parse_all(&stripe, &deliveries);
    match &objects[0] {
        EventObject::CheckoutSessionCompleted(s) => {
            assert_eq!(s.id, session.id);
            assert_eq!(s.status, Some(CheckoutSessionStatus::Complete));
            assert_eq!(s.payment_status, CheckoutSessionPaymentStatus::Paid);
            assert_eq!(
                s.subscription.as_ref().map(|x| x.id().as_str()),
                Some(sub_id.as_str())
            );
            assert_eq!(s.client_reference_id.as_deref(), Some("u_s"));
        }
        other => panic!("unexpected {other:?}"),
    }
    match &objects[1] {
        EventObject::CustomerSubscriptionCreated(s) => {
            assert_eq!(s.id.as_str(), sub_id);
            assert_eq!(s.status, SubscriptionStatus::Active);
            assert_eq!(s.metadata["mcp_tool"], "pro");
            assert_eq!(s.items.data.len(), 2);
            assert_eq!(s.items.data[0].price.id.as_str(), "price_pro");
            assert_eq!(s.items.data[1].plan.id.as_str(), "price_calls");
        }
        other => panic!("unexpected {other:?}"),
    }
    match &objects[2] {
        EventObject::InvoicePaid(i) => {
            assert_eq!(i.amount_paid, 900);
            assert_eq!(
                i.customer.as_ref().map(|c| c.id().as_str()),
                Some(cus.id.as_str())
            );
            let parent = i
                .parent
                .as_ref()
                .unwrap()
                .subscription_details
                .as_ref()
                .unwrap();
            assert_eq!(parent.subscription.id().as_str(), sub_id);
        }
        other => panic!("unexpected {other:?}"),
    }

    // The API agrees.
    let got = RetrieveCheckoutSession::new(session.id.clone())
        .send(&c)
        .await
        .unwrap();
    assert_eq!(got.status, Some(CheckoutSessionStatus::Complete));
    assert_eq!(
        got.subscription.as_ref().map(|x| x.id().as_str()),
        Some(sub_id.as_str())
    );
    let subs = ListSubscription::new()
        .customer(cus.id.as_str())
        .price("price_pro")
        .status(ListSubscriptionStatus::Active)
        .send(&c)
        .await
        .unwrap();
    assert_eq!(subs.data.len(), 1);
    assert_eq!(subs.data[0].items.data[0].price.id.as_str(), "price_pro");
    assert_eq!(subs.data[0].items.data[0].quantity, Some(1));
    let none = ListSubscription::new()
        .customer(cus.id.as_str())
        .price("price_other")
        .send(&c)
        .await
        .unwrap();
    assert!(none.data.is_empty());

    // past_due → updated; failed invoice; renewal; cancel → deleted.
    let upd = stripe.update_subscription_status(&sub_id, "past_due").await;
    match &parse_all(&stripe, &upd)[0] {
        EventObject::CustomerSubscriptionUpdated(s) => {
            assert_eq!(s.status, SubscriptionStatus::PastDue)
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        upd[0]
            .body
            .contains(r#""previous_attributes":{"status":"active"}"#)
    );
    let failed = stripe.fail_invoice(&sub_id).await;
    match &parse_all(&stripe, &failed)[0] {
        EventObject::InvoicePaymentFailed(i) => {
            assert_eq!(i.amount_paid, 0);
            assert_eq!(i.amount_due, 900);
        }
        other => panic!("unexpected {other:?}"),
    }
    // Usage in the period is billed on renewal: 900 licensed + 10 calls × 3.
    for i in 0..2 {
        CreateBillingMeterEvent::new(
            "api_call",
            meta(&[("stripe_customer_id", cus.id.as_str()), ("value", "5")]),
        )
        .identifier(format!("use-{i}"))
        .send(&c)
        .await
        .unwrap();
    }
    let renewed = stripe.renew_subscription(&sub_id).await;
    match &parse_all(&stripe, &renewed)[0] {
        EventObject::InvoicePaid(i) => assert_eq!(i.amount_paid, 930),
        other => panic!("unexpected {other:?}"),
    }
    let del = stripe.cancel_subscription(&sub_id).await;
    match &parse_all(&stripe, &del)[0] {
        EventObject::CustomerSubscriptionDeleted(s) => {
            assert_eq!(s.status, SubscriptionStatus::Canceled);
            assert!(s.canceled_at.is_some());
        }
        other => panic!("unexpected {other:?}"),
    }
    // Default list hides canceled, status=all shows it.
    let default = ListSubscription::new()
        .customer(cus.id.as_str())
        .send(&c)
        .await
        .unwrap();
    assert!(default.data.is_empty());
    let all = ListSubscription::new()
        .customer(cus.id.as_str())
        .status(ListSubscriptionStatus::All)
        .send(&c)
        .await
        .unwrap();
    assert_eq!(all.data[0].status, SubscriptionStatus::Canceled);

    // A duplicate delivery of the first event.
    let again = stripe.redeliver(&deliveries[0].event_id).await;
    assert_eq!(again.body, deliveries[0].body);
    assert_eq!(rx.got.lock().unwrap().len(), 3 + 4 + 1);
}

#[tokio::test]
async fn payment_checkout_completed_and_expired_events() {
    let stripe = FakeStripe::start().await;
    let rx = receiver().await;
    stripe.set_webhook_url(&rx.url);
    stripe.add_price("price_a", 500, "usd", PriceKind::OneTime);
    let c = client(&stripe);
    let cus = create_customer(&c, "u_pay").await;
    let mk = || {
        CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Payment)
            .success_url("https://example.com/ok")
            .line_items(vec![line("price_a", Some(1))])
            .customer(cus.id.as_str())
            .metadata(meta(&[("mcp_tool", "t")]))
    };
    let paid = mk().send(&c).await.unwrap();
    let gone = mk().send(&c).await.unwrap();

    let d = stripe.complete_checkout(paid.id.as_str()).await;
    assert_eq!(d.len(), 1);
    match &parse_all(&stripe, &d)[0] {
        EventObject::CheckoutSessionCompleted(s) => {
            assert_eq!(s.payment_status, CheckoutSessionPaymentStatus::Paid);
            assert_eq!(s.metadata.as_ref().unwrap()["mcp_tool"], "t");
            assert!(s.subscription.is_none());
        }
        other => panic!("unexpected {other:?}"),
    }
    let d = stripe.expire_checkout(gone.id.as_str()).await;
    match &parse_all(&stripe, &d)[0] {
        EventObject::CheckoutSessionExpired(s) => {
            assert_eq!(s.id, gone.id);
            assert_eq!(s.status, Some(CheckoutSessionStatus::Expired));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(stripe.events().len(), 2);
    assert_eq!(
        stripe.checkout_session(paid.id.as_str()).unwrap().status,
        "complete"
    );
}

#[tokio::test]
async fn hosted_page_post_pays_and_redirects() {
    let stripe = FakeStripe::start().await;
    stripe.add_price("price_a", 500, "usd", PriceKind::OneTime);
    let c = client(&stripe);
    let cus = create_customer(&c, "u_h").await;
    let s = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Payment)
        .success_url("https://example.com/ok?session_id={CHECKOUT_SESSION_ID}")
        .line_items(vec![line("price_a", Some(1))])
        .customer(cus.id.as_str())
        .send(&c)
        .await
        .unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = http.post(s.url.clone().unwrap()).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(
        resp.headers()["location"].to_str().unwrap(),
        format!("https://example.com/ok?session_id={}", s.id)
    );
    let got = RetrieveCheckoutSession::new(s.id.clone())
        .send(&c)
        .await
        .unwrap();
    assert_eq!(got.payment_status, CheckoutSessionPaymentStatus::Paid);
    // No webhook URL: the event is still generated.
    assert_eq!(stripe.events()[0].event_type, "checkout.session.completed");
}

#[tokio::test]
async fn meter_events_dedupe_by_identifier_and_idempotency() {
    let stripe = FakeStripe::start().await;
    stripe.add_meter("api_call");
    let c = client(&stripe);
    let cus = create_customer(&c, "u_m").await;
    let event = |id: &str| {
        CreateBillingMeterEvent::new(
            "api_call",
            meta(&[("stripe_customer_id", cus.id.as_str()), ("value", "1")]),
        )
        .identifier(id)
        .timestamp(stripe_time())
    };

    let first = event("call-1")
        .customize()
        .request_strategy(key("meter:call-1"))
        .send(&c)
        .await
        .unwrap();
    assert_eq!(first.identifier, "call-1");
    assert_eq!(first.event_name, "api_call");
    assert_eq!(first.payload["value"], "1");

    // Same key + same params: replayed success, not counted again.
    let replay = event("call-1")
        .customize()
        .request_strategy(key("meter:call-1"))
        .send(&c)
        .await
        .unwrap();
    assert_eq!(replay.identifier, "call-1");
    assert!(stripe.requests().last().unwrap().replayed);

    // Same identifier, new key: rejected like Stripe.
    let (status, ty, code, msg) = api_error(
        event("call-1")
            .customize()
            .request_strategy(key("meter:call-1:retry"))
            .send(&c)
            .await,
    );
    assert_eq!((status, ty), (400, ApiErrorsType::InvalidRequestError));
    assert_eq!(code, Some(ApiErrorsCode::ResourceAlreadyExists));
    assert!(msg.contains("call-1"));

    event("call-2").send(&c).await.unwrap();
    assert_eq!(stripe.meter_events().len(), 2);
    assert_eq!(stripe.meter_total("api_call", cus.id.as_str()), 2.0);

    // Unknown meter.
    let (status, _, _, msg) = api_error(
        CreateBillingMeterEvent::new(
            "no_such_meter",
            meta(&[("stripe_customer_id", cus.id.as_str()), ("value", "1")]),
        )
        .send(&c)
        .await,
    );
    assert_eq!(status, 400);
    assert!(msg.contains("no_such_meter"));
    let rec = stripe.requests().last().unwrap().clone();
    assert_eq!(rec.path, "/v1/billing/meter_events");
    assert_eq!(rec.form["payload"]["stripe_customer_id"], cus.id.as_str());
    assert_eq!(stripe.meter_events().len(), 2);
}

#[tokio::test]
async fn faults_map_to_stripe_errors() {
    let stripe = FakeStripe::start().await;
    let c = client(&stripe);

    stripe.fail_next(Fault::Status(500), 1);
    let (status, ty, _, _) = api_error(CreateCustomer::new().send(&c).await);
    assert_eq!((status, ty), (500, ApiErrorsType::ApiError));
    assert!(
        stripe.customers().is_empty(),
        "a 500 fault does not process the request"
    );
    assert!(stripe.requests()[0].faulted);

    // 429 with Stripe-Should-Retry: a retrying client gets through on the second attempt.
    stripe.inject(
        FaultRule::new(Fault::Status(429))
            .times(1)
            .on("POST", "/v1/customers"),
    );
    let retrying = CreateCustomer::new()
        .email("r@example.com")
        .customize()
        .request_strategy(RequestStrategy::Retry(3))
        .send(&c)
        .await
        .unwrap();
    assert_eq!(retrying.email.as_deref(), Some("r@example.com"));
    // The 500 above, the 429, the successful retry.
    assert_eq!(stripe.count("POST", "/v1/customers"), 3);

    // 429 on another path does not hit customers.
    stripe.inject(
        FaultRule::new(Fault::Status(429))
            .times(1)
            .path("/v1/billing"),
    );
    create_customer(&c, "u_f").await;
    stripe.clear_faults();

    // Slow Stripe: the client times out, the server still creates the customer, and the
    // idempotent retry replays it.
    stripe.fail_next(Fault::Delay(Duration::from_millis(700)), 1);
    let slow = CreateCustomer::new()
        .email("slow@example.com")
        .customize()
        .request_strategy(key("slow-1"))
        .timeout(Duration::from_millis(200))
        .send(&c)
        .await;
    assert!(matches!(slow, Err(StripeError::Timeout)), "{slow:?}");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let before = stripe.customers().len();
    let retry = CreateCustomer::new()
        .email("slow@example.com")
        .customize()
        .request_strategy(key("slow-1"))
        .send(&c)
        .await
        .unwrap();
    assert_eq!(stripe.customers().len(), before);
    assert_eq!(retry.email.as_deref(), Some("slow@example.com"));
    assert!(stripe.customers().iter().any(|c| c.id == retry.id.as_str()));

    // Outage on and off.
    stripe.set_outage(true);
    let (status, _, _, _) = api_error(RetrievePrice::new("price_x").send(&c).await);
    assert_eq!(status, 500);
    stripe.set_outage(false);
    let (status, _, _, _) = api_error(RetrievePrice::new("price_x").send(&c).await);
    assert_eq!(status, 404);
}

#[tokio::test]
async fn forged_tampered_and_stale_webhooks_are_rejected() {
    let stripe = FakeStripe::start().await;
    stripe.add_price("price_a", 500, "usd", PriceKind::OneTime);
    let c = client(&stripe);
    let cus = create_customer(&c, "u_w").await;
    let s = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Payment)
        .success_url("https://example.com/ok")
        .line_items(vec![line("price_a", Some(1))])
        .customer(cus.id.as_str())
        .send(&c)
        .await
        .unwrap();
    let object = stripe.checkout_session_json(s.id.as_str()).unwrap();
    let (body, header) = stripe.signed_event("checkout.session.completed", object);
    let secret = stripe.webhook_secret();

    let ok = Webhook::construct_event(&body, &header, secret).unwrap();
    assert!(matches!(
        ok.data.object,
        EventObject::CheckoutSessionCompleted(_)
    ));

    let tampered = body.replace("\"unpaid\"", "\"paid\"");
    assert_ne!(tampered, body);
    assert!(matches!(
        Webhook::construct_event(&tampered, &header, secret),
        Err(WebhookError::BadSignature)
    ));
    let forged = stripe.sign_with(&body, "whsec_attacker", stripe_time());
    assert!(matches!(
        Webhook::construct_event(&body, &forged, secret),
        Err(WebhookError::BadSignature)
    ));
    let stale = stripe.sign_with(&body, secret, stripe_time() - 301);
    assert!(matches!(
        Webhook::construct_event(&body, &stale, secret),
        Err(WebhookError::BadTimestamp(_))
    ));
    // And the raw post helper sends whatever it is given.
    let rx = receiver().await;
    stripe.set_webhook_url(&rx.url);
    let d = stripe.post_webhook(&body, &forged).await;
    assert_eq!(d.status, Some(200));
    assert_eq!(rx.got.lock().unwrap()[0].1, forged);
}

#[tokio::test]
async fn metered_only_subscription_needs_no_payment() {
    let stripe = FakeStripe::start().await;
    stripe.add_price(
        "price_calls",
        3,
        "usd",
        PriceKind::Metered {
            meter: "api_call".into(),
        },
    );
    let c = client(&stripe);
    let cus = create_customer(&c, "u_mo").await;
    let s = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Subscription)
        .success_url("https://example.com/ok")
        .line_items(vec![line("price_calls", None)])
        .customer(cus.id.as_str())
        .send(&c)
        .await
        .unwrap();
    assert_eq!(s.amount_total, Some(0));
    // A quantity on a metered price is refused, like Stripe.
    let (status, _, _, msg) = api_error(
        CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Subscription)
            .success_url("https://example.com/ok")
            .line_items(vec![line("price_calls", Some(1))])
            .customer(cus.id.as_str())
            .send(&c)
            .await,
    );
    assert_eq!(status, 400);
    assert!(msg.contains("metered"), "{msg}");

    let d = stripe.complete_checkout(s.id.as_str()).await;
    assert_eq!(d.len(), 3);
    assert!(d.iter().all(|d| d.status.is_none()), "no webhook URL set");
    let got = RetrieveCheckoutSession::new(s.id.clone())
        .send(&c)
        .await
        .unwrap();
    assert_eq!(got.status, Some(CheckoutSessionStatus::Complete));
    assert_eq!(
        got.payment_status,
        CheckoutSessionPaymentStatus::NoPaymentRequired
    );
    let subs = ListSubscription::new()
        .customer(cus.id.as_str())
        .price("price_calls")
        .send(&c)
        .await
        .unwrap();
    assert_eq!(subs.data.len(), 1);
    assert_eq!(subs.data[0].items.data[0].quantity, None);
    assert_eq!(
        subs.data[0].items.data[0]
            .price
            .recurring
            .as_ref()
            .unwrap()
            .usage_type,
        RecurringUsageType::Metered
    );
}

/// The whole Stripe API error (status and body), panicking on anything else.
fn api_error_full<T: std::fmt::Debug>(r: Result<T, StripeError>) -> (u16, ApiErrors) {
    match r {
        Err(StripeError::Stripe(e, status)) => (status, *e),
        other => panic!("expected a Stripe API error, got {other:?}"),
    }
}

/// Asserts Stripe's answer for a customer it does not know: 400 (404 without a param)
/// `invalid_request_error` `resource_missing` naming `param` and the customer.
fn assert_no_such_customer<T: std::fmt::Debug>(
    r: Result<T, StripeError>,
    customer: &str,
    param: &str,
) {
    let (status, e) = api_error_full(r);
    assert_eq!(status, 400, "{e:?}");
    assert_eq!(e.type_, ApiErrorsType::InvalidRequestError);
    assert_eq!(e.code, Some(ApiErrorsCode::ResourceMissing));
    assert_eq!(e.param.as_deref(), Some(param));
    assert_eq!(
        e.message.as_deref(),
        Some(format!("No such customer: '{customer}'").as_str())
    );
}

/// A completed (paid) subscription checkout for `customer`; returns the subscription id.
async fn subscribe(stripe: &FakeStripe, c: &Client, customer: &str, price: &str) -> String {
    let s = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Subscription)
        .success_url("https://example.com/ok")
        .line_items(vec![line(price, Some(1))])
        .customer(customer)
        .send(c)
        .await
        .unwrap();
    stripe.complete_checkout(s.id.as_str()).await;
    stripe
        .checkout_session(s.id.as_str())
        .unwrap()
        .subscription
        .expect("subscription created")
}

#[tokio::test]
async fn billing_portal_sessions_are_created_for_known_customers_only() {
    let stripe = FakeStripe::start().await;
    let c = client(&stripe);
    let cus = create_customer(&c, "u_portal").await;

    let portal = CreateBillingPortalSession::new()
        .customer(cus.id.as_str())
        .return_url("https://example.com/back")
        .send(&c)
        .await
        .unwrap();
    assert!(portal.id.as_str().starts_with("bps_"), "{}", portal.id);
    assert_eq!(portal.customer, cus.id.as_str());
    assert_eq!(
        portal.return_url.as_deref(),
        Some("https://example.com/back")
    );
    assert_eq!(
        portal.url,
        format!("{}billing_portal/{}", stripe.base_url(), portal.id)
    );
    assert!(portal.configuration.id().as_str().starts_with("bpc_"));
    assert!(portal.flow.is_none() && portal.locale.is_none() && !portal.livemode);
    let recorded = stripe.portal_sessions();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].id, portal.id.as_str());
    assert_eq!(recorded[0].customer, cus.id.as_str());

    // The hosted page is served.
    let page = reqwest::get(&portal.url).await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.unwrap().contains(portal.id.as_str()));

    // Without return_url (optional).
    let bare = CreateBillingPortalSession::new()
        .customer(cus.id.as_str())
        .send(&c)
        .await
        .unwrap();
    assert!(bare.return_url.is_none());

    // Unknown and missing customer.
    assert_no_such_customer(
        CreateBillingPortalSession::new()
            .customer("cus_nope")
            .send(&c)
            .await,
        "cus_nope",
        "customer",
    );
    let (status, e) = api_error_full(CreateBillingPortalSession::new().send(&c).await);
    assert_eq!(
        (status, e.code),
        (400, Some(ApiErrorsCode::ParameterMissing))
    );
    assert_eq!(stripe.portal_sessions().len(), 2);
}

#[tokio::test]
async fn delayed_payment_checkout_completes_unpaid_then_succeeds_or_fails() {
    let stripe = FakeStripe::start().await;
    let rx = receiver().await;
    stripe.set_webhook_url(&rx.url);
    stripe.add_price("price_a", 500, "usd", PriceKind::OneTime);
    let c = client(&stripe);
    let cus = create_customer(&c, "u_sepa").await;
    let mk = || {
        CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Payment)
            .success_url("https://example.com/ok")
            .line_items(vec![line("price_a", Some(2))])
            .customer(cus.id.as_str())
            .metadata(meta(&[("mcp_tool", "t")]))
    };
    let good = mk().send(&c).await.unwrap();
    let bad = mk().send(&c).await.unwrap();

    // Completed while the debit is processing: complete but unpaid.
    let d = stripe.complete_checkout_pending(good.id.as_str()).await;
    assert_eq!(d.len(), 1);
    match &parse_all(&stripe, &d)[0] {
        EventObject::CheckoutSessionCompleted(s) => {
            assert_eq!(s.id, good.id);
            assert_eq!(s.status, Some(CheckoutSessionStatus::Complete));
            assert_eq!(s.payment_status, CheckoutSessionPaymentStatus::Unpaid);
            assert!(s.payment_intent.is_some());
            assert_eq!(s.metadata.as_ref().unwrap()["mcp_tool"], "t");
        }
        other => panic!("unexpected {other:?}"),
    }
    let got = RetrieveCheckoutSession::new(good.id.clone())
        .send(&c)
        .await
        .unwrap();
    assert_eq!(got.status, Some(CheckoutSessionStatus::Complete));
    assert_eq!(got.payment_status, CheckoutSessionPaymentStatus::Unpaid);
    assert!(got.url.is_none());

    let d = stripe.async_payment_succeeded(good.id.as_str()).await;
    assert_eq!(d.len(), 1);
    match &parse_all(&stripe, &d)[0] {
        EventObject::CheckoutSessionAsyncPaymentSucceeded(s) => {
            assert_eq!(s.id, good.id);
            assert_eq!(s.payment_status, CheckoutSessionPaymentStatus::Paid);
            assert_eq!(s.amount_total, Some(1000));
        }
        other => panic!("unexpected {other:?}"),
    }
    let got = RetrieveCheckoutSession::new(good.id.clone())
        .send(&c)
        .await
        .unwrap();
    assert_eq!(got.payment_status, CheckoutSessionPaymentStatus::Paid);
    // A settled payment can be refunded like any other.
    let r = stripe.refund_checkout(good.id.as_str(), None).await;
    assert!(matches!(
        &parse_all(&stripe, &r)[0],
        EventObject::RefundCreated(_)
    ));

    stripe.complete_checkout_pending(bad.id.as_str()).await;
    let d = stripe.async_payment_failed(bad.id.as_str()).await;
    assert_eq!(d.len(), 1);
    match &parse_all(&stripe, &d)[0] {
        EventObject::CheckoutSessionAsyncPaymentFailed(s) => {
            assert_eq!(s.id, bad.id);
            assert_eq!(s.status, Some(CheckoutSessionStatus::Complete));
            assert_eq!(s.payment_status, CheckoutSessionPaymentStatus::Unpaid);
        }
        other => panic!("unexpected {other:?}"),
    }
    let got = RetrieveCheckoutSession::new(bad.id.clone())
        .send(&c)
        .await
        .unwrap();
    assert_eq!(got.status, Some(CheckoutSessionStatus::Complete));
    assert_eq!(got.payment_status, CheckoutSessionPaymentStatus::Unpaid);

    let types: Vec<String> = stripe.events().into_iter().map(|e| e.event_type).collect();
    assert_eq!(
        types,
        [
            "checkout.session.completed",
            "checkout.session.async_payment_succeeded",
            "refund.created",
            "checkout.session.completed",
            "checkout.session.async_payment_failed",
        ]
    );
}

#[tokio::test]
async fn delayed_payment_subscription_is_incomplete_until_the_payment_succeeds() {
    let stripe = FakeStripe::start().await;
    let rx = receiver().await;
    stripe.set_webhook_url(&rx.url);
    stripe.add_price("price_pro", 900, "usd", PriceKind::Recurring);
    let c = client(&stripe);
    let cus = create_customer(&c, "u_ach").await;
    let s = CreateCheckoutSession::new()
        .mode(CheckoutSessionMode::Subscription)
        .success_url("https://example.com/ok")
        .line_items(vec![line("price_pro", Some(1))])
        .customer(cus.id.as_str())
        .send(&c)
        .await
        .unwrap();

    let d = stripe.complete_checkout_pending(s.id.as_str()).await;
    let parsed = parse_all(&stripe, &d);
    assert_eq!(parsed.len(), 2);
    assert!(
        matches!(&parsed[0], EventObject::CheckoutSessionCompleted(s)
        if s.payment_status == CheckoutSessionPaymentStatus::Unpaid)
    );
    let sub_id = match &parsed[1] {
        EventObject::CustomerSubscriptionCreated(sub) => {
            assert_eq!(sub.status, SubscriptionStatus::Incomplete);
            sub.id.clone()
        }
        other => panic!("unexpected {other:?}"),
    };
    let sub = RetrieveSubscription::new(sub_id.clone())
        .expand(vec!["latest_invoice".to_owned()])
        .send(&c)
        .await
        .unwrap();
    let invoice = sub.latest_invoice.as_ref().unwrap().as_object().unwrap();
    assert_eq!(invoice.status, Some(InvoiceStatus::Open));
    assert_eq!(invoice.amount_paid, 0);

    let d = stripe.async_payment_succeeded(s.id.as_str()).await;
    let parsed = parse_all(&stripe, &d);
    assert_eq!(parsed.len(), 3);
    assert!(
        matches!(&parsed[0], EventObject::CheckoutSessionAsyncPaymentSucceeded(s)
        if s.payment_status == CheckoutSessionPaymentStatus::Paid)
    );
    assert!(
        matches!(&parsed[1], EventObject::CustomerSubscriptionUpdated(sub)
        if sub.status == SubscriptionStatus::Active)
    );
    assert!(
        d[1].body
            .contains(r#""previous_attributes":{"status":"incomplete"}"#)
    );
    match &parsed[2] {
        EventObject::InvoicePaid(inv) => {
            assert_eq!(inv.id.as_ref(), Some(&invoice.id.clone().unwrap()));
            assert_eq!(inv.amount_paid, 900);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        stripe.subscription(sub_id.as_str()).unwrap().status,
        "active"
    );
}

#[tokio::test]
async fn deleted_customers_are_missing_everywhere_they_are_named() {
    let stripe = FakeStripe::start().await;
    let rx = receiver().await;
    stripe.set_webhook_url(&rx.url);
    stripe.add_price("price_a", 500, "usd", PriceKind::OneTime);
    stripe.add_price("price_pro", 900, "usd", PriceKind::Recurring);
    stripe.add_meter("api_call");
    let c = client(&stripe);
    let gone = create_customer(&c, "u_gone").await;
    let id = gone.id.as_str().to_owned();

    // Through the API: Stripe's deleted stub, and GET answers it too.
    let deleted = DeleteCustomer::new(gone.id.clone()).send(&c).await.unwrap();
    assert_eq!(deleted.id, gone.id);
    match RetrieveCustomer::new(gone.id.clone())
        .send(&c)
        .await
        .unwrap()
    {
        RetrieveCustomerReturned::DeletedCustomer(d) => assert_eq!(d.id, gone.id),
        other => panic!("expected the deleted stub, got {other:?}"),
    }
    assert!(ListCustomer::new().send(&c).await.unwrap().data.is_empty());
    let (status, e) = api_error_full(DeleteCustomer::new(gone.id.clone()).send(&c).await);
    assert_eq!(
        (status, e.code),
        (404, Some(ApiErrorsCode::ResourceMissing))
    );

    // Everywhere the customer is named afterwards.
    assert_no_such_customer(
        CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Payment)
            .success_url("https://example.com/ok")
            .line_items(vec![line("price_a", Some(1))])
            .customer(id.as_str())
            .send(&c)
            .await,
        &id,
        "customer",
    );
    assert_no_such_customer(
        ListSubscription::new().customer(id.as_str()).send(&c).await,
        &id,
        "customer",
    );
    assert_no_such_customer(
        ListCheckoutSession::new()
            .customer(id.as_str())
            .send(&c)
            .await,
        &id,
        "customer",
    );
    assert_no_such_customer(
        CreateBillingMeterEvent::new(
            "api_call",
            meta(&[("stripe_customer_id", id.as_str()), ("value", "1")]),
        )
        .send(&c)
        .await,
        &id,
        "payload[stripe_customer_id]",
    );
    assert_no_such_customer(
        CreateBillingPortalSession::new()
            .customer(id.as_str())
            .send(&c)
            .await,
        &id,
        "customer",
    );
    assert!(stripe.checkout_sessions().is_empty() && stripe.meter_events().is_empty());

    // A customer that never existed gets the same answers from the lists.
    assert_no_such_customer(
        ListSubscription::new().customer("cus_never").send(&c).await,
        "cus_never",
        "customer",
    );
    assert_no_such_customer(
        ListCheckoutSession::new()
            .customer("cus_never")
            .send(&c)
            .await,
        "cus_never",
        "customer",
    );

    // Unknown Checkout Sessions: 404 resource_missing on retrieve and expire.
    for r in [
        RetrieveCheckoutSession::new("cs_test_nope").send(&c).await,
        ExpireCheckoutSession::new("cs_test_nope").send(&c).await,
    ] {
        let (status, e) = api_error_full(r);
        assert_eq!(
            (status, e.code),
            (404, Some(ApiErrorsCode::ResourceMissing))
        );
        assert!(e.message.unwrap().contains("cs_test_nope"));
    }

    // The control: a subscriber deleted from the Dashboard loses the subscription first.
    let subscriber = create_customer(&c, "u_sub").await;
    let sub = subscribe(&stripe, &c, subscriber.id.as_str(), "price_pro").await;
    let d = stripe.delete_customer(subscriber.id.as_str()).await;
    let parsed = parse_all(&stripe, &d);
    assert_eq!(parsed.len(), 2);
    match &parsed[0] {
        EventObject::CustomerSubscriptionDeleted(s) => {
            assert_eq!(s.id.as_str(), sub);
            assert_eq!(s.status, SubscriptionStatus::Canceled);
        }
        other => panic!("unexpected {other:?}"),
    }
    match &parsed[1] {
        EventObject::CustomerDeleted(cu) => assert_eq!(cu.id, subscriber.id),
        other => panic!("unexpected {other:?}"),
    }
    assert!(stripe.customers().iter().all(|c| c.deleted));
    assert_no_such_customer(
        ListSubscription::new()
            .customer(subscriber.id.as_str())
            .send(&c)
            .await,
        subscriber.id.as_str(),
        "customer",
    );
}

#[tokio::test]
async fn metered_prices_reference_their_meter_which_retrieves_renames_and_deactivates() {
    let stripe = FakeStripe::start().await;
    let metered = |event: &str| PriceKind::Metered {
        meter: event.into(),
    };
    stripe.add_price("price_calls", 3, "usd", metered("api_call"));
    stripe.add_price("price_calls_eur", 3, "eur", metered("api_call"));
    let meters = stripe.meters();
    assert_eq!(meters.len(), 1, "the second price reuses the meter");
    let meter_id = meters[0].id.clone();
    assert_eq!(stripe.add_meter("api_call"), meter_id);
    let c = client(&stripe);
    let cus = create_customer(&c, "u_meter").await;

    for price in ["price_calls", "price_calls_eur"] {
        let p = RetrievePrice::new(price).send(&c).await.unwrap();
        let rec = p.recurring.unwrap();
        assert_eq!(rec.meter.as_deref(), Some(meter_id.as_str()));
        assert_eq!(rec.usage_type, RecurringUsageType::Metered);
    }
    assert_eq!(stripe.prices()[0].meter.as_deref(), Some(meter_id.as_str()));

    let m = RetrieveBillingMeter::new(meter_id.as_str())
        .send(&c)
        .await
        .unwrap();
    assert_eq!(m.id.as_str(), meter_id);
    assert_eq!(m.event_name, "api_call");
    assert_eq!(m.status, BillingMeterStatus::Active);
    assert_eq!(m.customer_mapping.event_payload_key, "stripe_customer_id");
    assert_eq!(
        m.customer_mapping.type_,
        BillingMeterResourceCustomerMappingSettingsType::ById
    );
    assert_eq!(
        m.default_aggregation.formula,
        BillingMeterResourceAggregationSettingsFormula::Sum
    );
    assert_eq!(m.value_settings.event_payload_key, "value");
    assert!(m.status_transitions.deactivated_at.is_none());
    assert!(m.event_time_window.is_none());
    let (status, e) = api_error_full(RetrieveBillingMeter::new("mtr_nope").send(&c).await);
    assert_eq!(
        (status, e.code),
        (404, Some(ApiErrorsCode::ResourceMissing))
    );

    let event = |name: &str| {
        CreateBillingMeterEvent::new(
            name,
            meta(&[("stripe_customer_id", cus.id.as_str()), ("value", "2")]),
        )
    };
    event("api_call").send(&c).await.unwrap();

    // Renamed: the old name is refused like an unknown one, the price keeps the meter.
    stripe.rename_meter(&meter_id, "tool_call");
    let (status, e) = api_error_full(event("api_call").send(&c).await);
    assert_eq!((status, e.type_), (400, ApiErrorsType::InvalidRequestError));
    assert_eq!(e.param.as_deref(), Some("event_name"));
    assert!(e.message.unwrap().contains("api_call"));
    event("tool_call").send(&c).await.unwrap();
    let m = RetrieveBillingMeter::new(meter_id.as_str())
        .send(&c)
        .await
        .unwrap();
    assert_eq!(m.event_name, "tool_call");
    let p = RetrievePrice::new("price_calls").send(&c).await.unwrap();
    assert_eq!(
        p.recurring.unwrap().meter.as_deref(),
        Some(meter_id.as_str())
    );
    assert!(stripe.meter_events().iter().all(|e| e.meter == meter_id));

    // Deactivated: no more events.
    stripe.deactivate_meter(&meter_id);
    let (status, _) = api_error_full(event("tool_call").send(&c).await);
    assert_eq!(status, 400);
    let m = RetrieveBillingMeter::new(meter_id.as_str())
        .send(&c)
        .await
        .unwrap();
    assert_eq!(m.status, BillingMeterStatus::Inactive);
    assert!(m.status_transitions.deactivated_at.is_some());
    assert_eq!(stripe.meter_events().len(), 2);
    // A new price for the old event name gets a new, active meter.
    stripe.add_price("price_new", 1, "usd", metered("tool_call"));
    assert_eq!(stripe.meters().len(), 2);
    event("tool_call").send(&c).await.unwrap();
}

#[tokio::test]
async fn past_due_subscriptions_expand_an_open_latest_invoice_with_its_hosted_page() {
    let stripe = FakeStripe::start().await;
    let rx = receiver().await;
    stripe.set_webhook_url(&rx.url);
    stripe.add_price("price_pro", 900, "usd", PriceKind::Recurring);
    let c = client(&stripe);
    let cus = create_customer(&c, "u_dunning").await;
    let sub_id = subscribe(&stripe, &c, cus.id.as_str(), "price_pro").await;
    let expanded = |id: &str| {
        RetrieveSubscription::new(id.to_owned()).expand(vec!["latest_invoice".to_owned()])
    };

    let sub = expanded(&sub_id).send(&c).await.unwrap();
    let first = sub.latest_invoice.unwrap().into_object().expect("expanded");
    assert_eq!(first.status, Some(InvoiceStatus::Paid));

    for status in ["past_due", "unpaid", "incomplete"] {
        let d = stripe.update_subscription_status(&sub_id, status).await;
        let parsed = parse_all(&stripe, &d);
        assert_eq!(parsed.len(), 1);
        assert!(matches!(
            &parsed[0],
            EventObject::CustomerSubscriptionUpdated(_)
        ));
        let sub = expanded(&sub_id).send(&c).await.unwrap();
        assert_eq!(sub.status.as_str(), status);
        let open = sub.latest_invoice.unwrap().into_object().expect("expanded");
        assert_eq!(open.status, Some(InvoiceStatus::Open), "{status}");
        assert_ne!(open.id, first.id);
        let id = open.id.clone().unwrap();
        assert_eq!(
            open.hosted_invoice_url.as_deref(),
            Some(format!("{}invoice/{id}", stripe.base_url()).as_str())
        );
        let page = reqwest::get(open.hosted_invoice_url.unwrap())
            .await
            .unwrap();
        assert_eq!(page.status().as_u16(), 200);
        assert!(page.text().await.unwrap().contains(id.as_str()));
        let got = RetrieveInvoice::new(id.clone()).send(&c).await.unwrap();
        assert_eq!(got.status, Some(InvoiceStatus::Open));
    }
    // One open invoice serves every dunning status (no new one while it is open).
    let open: Vec<_> = stripe
        .invoices()
        .into_iter()
        .filter(|i| i.status == "open")
        .collect();
    assert_eq!(open.len(), 1);
    assert_eq!(
        stripe.subscription(&sub_id).unwrap().latest_invoice,
        Some(open[0].id.clone())
    );

    // Not expanded: the id only. Listed with `data.latest_invoice`: expanded.
    let plain = RetrieveSubscription::new(sub_id.clone())
        .send(&c)
        .await
        .unwrap();
    let latest = plain.latest_invoice.unwrap();
    assert!(!latest.is_object());
    assert_eq!(
        latest.id().as_ref().map(|i| i.as_str()),
        Some(open[0].id.as_str())
    );
    let listed = ListSubscription::new()
        .customer(cus.id.as_str())
        .expand(vec!["data.latest_invoice".to_owned()])
        .send(&c)
        .await
        .unwrap();
    assert!(listed.data[0].latest_invoice.as_ref().unwrap().is_object());

    // A failed renewal's open invoice is the one dunning points at.
    let other = create_customer(&c, "u_dunning_2").await;
    let sub2 = subscribe(&stripe, &c, other.id.as_str(), "price_pro").await;
    stripe.fail_invoice(&sub2).await;
    let failed = stripe.subscription(&sub2).unwrap().latest_invoice.unwrap();
    stripe.update_subscription_status(&sub2, "past_due").await;
    assert_eq!(
        stripe.subscription(&sub2).unwrap().latest_invoice,
        Some(failed)
    );
}

#[tokio::test]
async fn auth_faults_on_one_path_answer_stripe_401_and_403() {
    let stripe = FakeStripe::start().await;
    stripe.add_meter("api_call");
    let c = client(&stripe);
    let cus = create_customer(&c, "u_auth").await;
    let event = || {
        CreateBillingMeterEvent::new(
            "api_call",
            meta(&[("stripe_customer_id", cus.id.as_str()), ("value", "1")]),
        )
    };

    stripe.inject(FaultRule::new(Fault::Status(401)).path("/v1/billing/meter_events"));
    // Not retried by a retrying client (Stripe-Should-Retry: false).
    let (status, e) = api_error_full(
        event()
            .customize()
            .request_strategy(RequestStrategy::Retry(3))
            .send(&c)
            .await,
    );
    assert_eq!((status, e.type_), (401, ApiErrorsType::InvalidRequestError));
    assert!(e.message.unwrap().contains("Invalid API Key"));
    assert_eq!(stripe.count("POST", "/v1/billing/meter_events"), 1);
    // Other paths still work.
    create_customer(&c, "u_auth_2").await;
    stripe.clear_faults();

    stripe.inject(
        FaultRule::new(Fault::Status(403))
            .on("POST", "/v1/billing/meter_events")
            .times(1),
    );
    let (status, e) = api_error_full(event().send(&c).await);
    assert_eq!((status, e.type_), (403, ApiErrorsType::InvalidRequestError));
    assert!(e.message.unwrap().contains("permissions"));
    assert!(stripe.meter_events().is_empty());
    // The rule was for one request: the retry goes through.
    event().send(&c).await.unwrap();
    assert_eq!(stripe.meter_events().len(), 1);
}

#[tokio::test]
async fn checkout_idempotency_key_replayed_with_other_parameters_is_refused_and_a_timed_out_create_replays()
 {
    let stripe = FakeStripe::start().await;
    stripe.add_price("price_a", 500, "usd", PriceKind::OneTime);
    let c = client(&stripe);
    let cus = create_customer(&c, "u_idem").await;
    let expires = stripe_time() + 3600;
    let create = |expires_at: i64| {
        CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Payment)
            .success_url("https://example.com/ok")
            .line_items(vec![line("price_a", Some(1))])
            .customer(cus.id.as_str())
            .expires_at(expires_at)
    };
    let first = create(expires)
        .customize()
        .request_strategy(key("mcpcs:u_idem:t:1"))
        .send(&c)
        .await
        .unwrap();
    // The same key with `expires_at` moved: Stripe's idempotency_error, nothing created.
    let (status, e) = api_error_full(
        create(expires + 60)
            .customize()
            .request_strategy(key("mcpcs:u_idem:t:1"))
            .send(&c)
            .await,
    );
    assert_eq!((status, e.type_), (400, ApiErrorsType::IdempotencyError));
    assert!(e.message.unwrap().contains("same parameters"));
    assert_eq!(stripe.checkout_sessions().len(), 1);
    assert_eq!(stripe.checkout_sessions()[0].id, first.id.as_str());

    // A slow Stripe: the client times out, the session is still created, and the retry with
    // the same key and parameters replays it.
    stripe.inject(
        FaultRule::new(Fault::Delay(Duration::from_millis(700)))
            .on("POST", "/v1/checkout/sessions")
            .times(1),
    );
    let slow = create(expires)
        .customize()
        .request_strategy(key("mcpcs:u_idem:t:2"))
        .timeout(Duration::from_millis(200))
        .send(&c)
        .await;
    assert!(matches!(slow, Err(StripeError::Timeout)), "{slow:?}");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(stripe.checkout_sessions().len(), 2);
    let retry = create(expires)
        .customize()
        .request_strategy(key("mcpcs:u_idem:t:2"))
        .send(&c)
        .await
        .unwrap();
    assert_eq!(retry.id.as_str(), stripe.checkout_sessions()[1].id);
    assert!(stripe.requests().last().unwrap().replayed);
    assert_eq!(stripe.checkout_sessions().len(), 2);
}
