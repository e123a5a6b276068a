//! Delayed payment methods and subscriptions whose payment needs fixing.

use super::*;

/// The checkout sessions the fake Stripe holds for `customer`.
fn checkouts_of(stripe: &FakeStripe, customer: &str) -> usize {
    stripe
        .checkout_sessions()
        .iter()
        .filter(|session| session.customer.as_deref() == Some(customer))
        .count()
}

/// The fake's customer for the one session it holds with this id.
fn customer_of(stripe: &FakeStripe, session: &str) -> String {
    stripe
        .checkout_session(session)
        .and_then(|session| session.customer)
        .expect("the checkout names its customer")
}

/// `payment_processing`: an error result naming the checkout being paid, with no link to pay
/// again.
fn assert_payment_processing(result: &CallToolResult, tool: &str, session: &str) {
    assert_eq!(result.is_error, Some(true), "{result:?}");
    let body = structured(result);
    assert_eq!(body["status"], "payment_processing", "{body}");
    assert_eq!(body["tool"], tool);
    assert_eq!(body["checkout_session_id"], session, "{body}");
    assert!(
        body.get("checkout_url").is_none(),
        "no link to pay twice: {body}"
    );
    assert!(!text(result).contains("http"), "{}", text(result));
}

/// `payment_method_required` for `customer`: the link is a Billing Portal session the fake
/// created for that customer; returns the link.
fn assert_payment_method_required(
    stripe: &FakeStripe,
    result: &CallToolResult,
    tool: &str,
    customer: &str,
    subscription: &str,
) -> String {
    assert_eq!(result.is_error, Some(true), "{result:?}");
    let body = structured(result);
    assert_eq!(body["status"], "payment_method_required", "{body}");
    assert_eq!(body["tool"], tool);
    assert_eq!(body["subscription_id"], subscription, "{body}");
    assert!(body.get("checkout_url").is_none(), "not sold again: {body}");
    let url = body["update_url"]
        .as_str()
        .expect("an update_url")
        .to_owned();
    assert!(
        text(result).contains(&url),
        "the text carries the link: {}",
        text(result)
    );
    let portal = stripe
        .portal_sessions()
        .into_iter()
        .find(|portal| portal.url == url)
        .unwrap_or_else(|| panic!("{url} is a Billing Portal session of the fake"));
    assert_eq!(portal.customer, customer);
    url
}

/// A checkout paid by bank debit (complete, `unpaid`) is not abandoned: the caller is told the
/// payment is processing, no second checkout is created, and the call runs once it clears.
#[tokio::test]
async fn a_delayed_payment_is_processing_without_a_second_checkout_and_runs_once_it_clears() {
    let (stripe, server) = with_stripe(|payments| payments).await;
    let alice = server.client(Some("alice")).await;
    let session = assert_payment_required(
        &call(&alice, "generate_image", json!({"prompt": "a cat"}))
            .await
            .unwrap(),
        "generate_image",
    );
    let customer = customer_of(&stripe, &session);
    let completed = stripe.complete_checkout_pending(&session).await;
    assert!(
        completed.iter().all(|d| d.status == Some(200)),
        "{completed:?}"
    );
    for _ in 0..2 {
        let waiting = call(&alice, "generate_image", json!({"prompt": "a dog"}))
            .await
            .unwrap();
        assert_payment_processing(&waiting, "generate_image", &session);
    }
    assert_eq!(checkouts_of(&stripe, &customer), 1, "no second checkout");
    assert_eq!(stripe.count("POST", "/v1/checkout/sessions"), 1);
    assert_eq!(server.runs(), 0, "nothing ran unpaid");
    assert_eq!(
        credits(&server.db),
        0,
        "nothing granted before the money arrived"
    );

    let cleared = stripe.async_payment_succeeded(&session).await;
    assert!(cleared.iter().all(|d| d.status == Some(200)), "{cleared:?}");
    let paid = call(&alice, "generate_image", json!({"prompt": "a dog"}))
        .await
        .unwrap();
    assert_eq!(text(&paid), "image of a dog", "{paid:?}");
    assert_eq!(credits(&server.db), 1, "two credits bought, one used");
    // Redelivered, the success grants nothing more.
    assert_eq!(
        stripe.redeliver(&cleared[0].event_id).await.status,
        Some(200)
    );
    assert_eq!(credits(&server.db), 1);
    assert_eq!(checkouts_of(&stripe, &customer), 1);
    assert_eq!(server.runs(), 1);
}

/// A bank debit that fails grants nothing; the next call offers a new checkout link.
#[tokio::test]
async fn a_failed_delayed_payment_is_asked_for_again_with_a_new_checkout() {
    let (stripe, server) = with_stripe(|payments| payments).await;
    let bob = server.client(Some("bob")).await;
    let session = assert_payment_required(
        &call(&bob, "generate_image", json!({"prompt": "a cat"}))
            .await
            .unwrap(),
        "generate_image",
    );
    stripe.complete_checkout_pending(&session).await;
    let waiting = call(&bob, "generate_image", json!({"prompt": "a cat"}))
        .await
        .unwrap();
    assert_payment_processing(&waiting, "generate_image", &session);

    let failed = stripe.async_payment_failed(&session).await;
    assert!(failed.iter().all(|d| d.status == Some(200)), "{failed:?}");
    let asked = call(&bob, "generate_image", json!({"prompt": "a cat"}))
        .await
        .unwrap();
    let second = assert_payment_required(&asked, "generate_image");
    assert_ne!(second, session, "a new checkout, not the failed one");
    assert_eq!(stripe.checkout_session(&second).unwrap().status, "open");
    assert_eq!(stripe.count("POST", "/v1/checkout/sessions"), 2);
    assert_eq!(credits(&server.db), 0);
    // Paying the new one works as usual.
    stripe.complete_checkout(&second).await;
    let paid = call(&bob, "generate_image", json!({"prompt": "a cat"}))
        .await
        .unwrap();
    assert_eq!(text(&paid), "image of a cat", "{paid:?}");
    assert_eq!(server.runs(), 1);
}

/// A subscription started with a bank debit is `incomplete` while the payment clears: the
/// subscriber is told it is processing (not sent to fix a payment method, not sold a second
/// subscription), and the call runs once it clears.
#[tokio::test]
async fn a_subscription_paid_by_bank_debit_is_processing_until_the_payment_clears() {
    let (stripe, server) = with_stripe(|payments| payments).await;
    let carol = server.client(Some("carol")).await;
    let session = assert_payment_required(
        &call(&carol, "pro_report", json!({})).await.unwrap(),
        "pro_report",
    );
    let customer = customer_of(&stripe, &session);
    let completed = stripe.complete_checkout_pending(&session).await;
    assert!(
        completed.iter().all(|d| d.status == Some(200)),
        "{completed:?}"
    );
    assert_eq!(stripe.subscriptions()[0].status, "incomplete");
    for _ in 0..2 {
        let waiting = call(&carol, "pro_report", json!({})).await.unwrap();
        assert_payment_processing(&waiting, "pro_report", &session);
    }
    assert_eq!(
        checkouts_of(&stripe, &customer),
        1,
        "no second subscription sold"
    );
    assert!(stripe.portal_sessions().is_empty(), "nothing to fix yet");
    assert_eq!(server.runs(), 0);

    let cleared = stripe.async_payment_succeeded(&session).await;
    assert!(cleared.iter().all(|d| d.status == Some(200)), "{cleared:?}");
    let ok = call(&carol, "pro_report", json!({})).await.unwrap();
    assert_eq!(text(&ok), "pro report", "{ok:?}");
    assert_eq!(stripe.subscriptions().len(), 1);
    assert_eq!(checkouts_of(&stripe, &customer), 1);
}

/// A subscription whose first bank debit failed stays `incomplete` with an open invoice: the
/// subscriber is sent to fix the payment method, not sold a second subscription.
#[tokio::test]
async fn an_incomplete_subscription_whose_first_payment_failed_is_sent_to_fix_its_payment() {
    let (stripe, server) = with_stripe(|payments| payments).await;
    let dave = server.client(Some("dave")).await;
    let session = assert_payment_required(
        &call(&dave, "pro_report", json!({})).await.unwrap(),
        "pro_report",
    );
    let customer = customer_of(&stripe, &session);
    stripe.complete_checkout_pending(&session).await;
    let failed = stripe.async_payment_failed(&session).await;
    assert!(failed.iter().all(|d| d.status == Some(200)), "{failed:?}");
    let subscription = stripe.subscriptions()[0].clone();
    assert_eq!(subscription.status, "incomplete");

    let refused = call(&dave, "pro_report", json!({})).await.unwrap();
    assert_payment_method_required(&stripe, &refused, "pro_report", &customer, &subscription.id);
    assert_eq!(
        checkouts_of(&stripe, &customer),
        1,
        "no second subscription sold"
    );
    assert_eq!(stripe.subscriptions().len(), 1);
    assert_eq!(server.runs(), 0);
}

/// A subscriber whose payment failed (`past_due`, `unpaid`) or whose subscription is `paused`
/// gets a Billing Portal link to fix it — never a checkout for a second subscription — and
/// access back once the subscription is active again.
#[tokio::test]
async fn a_subscriber_with_a_payment_problem_is_sent_to_fix_it_not_sold_a_second_subscription() {
    let (stripe, server) = with_stripe(|payments| payments).await;
    for (n, status) in ["past_due", "unpaid", "paused"].into_iter().enumerate() {
        let user = format!("subscriber_{status}");
        let subscriber = server.client(Some(&user)).await;
        let session = buy(&stripe, &subscriber, "pro_report", json!({})).await;
        let customer = customer_of(&stripe, &session);
        let ok = call(&subscriber, "pro_report", json!({})).await.unwrap();
        assert_eq!(text(&ok), "pro report", "{status}: {ok:?}");
        let subscription = stripe
            .subscriptions()
            .into_iter()
            .find(|s| s.customer == customer)
            .unwrap()
            .id;

        let moved = stripe
            .update_subscription_status(&subscription, status)
            .await;
        assert!(moved.iter().all(|d| d.status == Some(200)), "{moved:?}");
        let portals_before = stripe.portal_sessions().len();
        for _ in 0..2 {
            let refused = call(&subscriber, "pro_report", json!({})).await.unwrap();
            assert_payment_method_required(
                &stripe,
                &refused,
                "pro_report",
                &customer,
                &subscription,
            );
        }
        assert!(
            stripe.portal_sessions().len() > portals_before,
            "{status}: a portal session for {customer}"
        );
        assert_eq!(
            checkouts_of(&stripe, &customer),
            1,
            "{status}: no checkout for a second subscription"
        );
        assert_eq!(server.runs(), 2 * n + 1, "{status}: did not run");

        let restored = stripe
            .update_subscription_status(&subscription, "active")
            .await;
        assert!(
            restored.iter().all(|d| d.status == Some(200)),
            "{restored:?}"
        );
        let again = call(&subscriber, "pro_report", json!({})).await.unwrap();
        assert_eq!(
            text(&again),
            "pro report",
            "{status}: active again: {again:?}"
        );
        assert_eq!(server.runs(), 2 * n + 2);
        assert_eq!(checkouts_of(&stripe, &customer), 1);
    }
    assert_eq!(
        stripe.subscriptions().len(),
        3,
        "one subscription per subscriber"
    );
}
