//! What takes a purchase back and what does not: only a refund that succeeded (a pending one
//! may still fail), and only a real dispute (an inquiry withdraws no funds); and one webhook
//! delivered twice at once is applied once.

use super::*;

/// A refund of `session`'s payment in `status`, shaped like the fake's `refund.created` object.
fn refund(stripe: &FakeStripe, session: &str, refund_id: &str, status: &str) -> Value {
    let checkout = stripe
        .checkout_session(session)
        .expect("the checkout exists");
    json!({
        "id": refund_id,
        "object": "refund",
        "amount": checkout.amount_total,
        "balance_transaction": null,
        "charge": null,
        "created": 1_767_000_000,
        "currency": checkout.currency,
        "customer": checkout.customer,
        "customer_account": null,
        "description": null,
        "destination_details": null,
        "failure_balance_transaction": null,
        "failure_reason": if status == "failed" { json!("declined") } else { Value::Null },
        "instructions_email": null,
        "metadata": {},
        "next_action": null,
        "payment_intent": checkout.payment_intent.expect("a paid checkout"),
        "payment_method": null,
        "pending_reason": if status == "pending" { json!("processing") } else { Value::Null },
        "presentment_details": null,
        "reason": "requested_by_customer",
        "receipt_number": null,
        "source_transfer_reversal": null,
        "status": status,
        "transfer_reversal": null
    })
}

/// Signs and delivers one event; Stripe must count it as done.
async fn deliver(stripe: &FakeStripe, event_type: &str, object: Value) {
    let (body, signature) = stripe.signed_event(event_type, object);
    let delivery = stripe.post_webhook(&body, &signature).await;
    assert_eq!(delivery.status, Some(200), "{event_type}: {delivery:?}");
}

/// A pending refund that then fails takes nothing back; a pending refund that then succeeds
/// takes the purchase back once.
#[tokio::test]
async fn only_a_refund_that_succeeded_takes_the_purchase_back() {
    let (stripe, server) = with_stripe(|payments| payments).await;
    let alice = server.client(Some("alice")).await;
    let session = buy(
        &stripe,
        &alice,
        "generate_image",
        json!({"prompt": "a cat"}),
    )
    .await;
    let db = &server.db;
    assert_eq!((credits(db), revenue(db)), (2, (1000, 1)));

    deliver(
        &stripe,
        "refund.created",
        refund(&stripe, &session, "re_failing", "pending"),
    )
    .await;
    assert_eq!(
        (credits(db), revenue(db)),
        (2, (1000, 1)),
        "a pending refund takes nothing back"
    );
    deliver(
        &stripe,
        "refund.updated",
        refund(&stripe, &session, "re_failing", "failed"),
    )
    .await;
    assert_eq!(
        (credits(db), revenue(db)),
        (2, (1000, 1)),
        "the refund failed"
    );
    let ran = call(&alice, "generate_image", json!({"prompt": "a dog"}))
        .await
        .unwrap();
    assert_eq!(text(&ran), "image of a dog", "{ran:?}");
    assert!(payment_events(db, "refunded").is_empty());

    deliver(
        &stripe,
        "refund.created",
        refund(&stripe, &session, "re_good", "pending"),
    )
    .await;
    assert_eq!(credits(db), 1, "still pending");
    let succeeded = refund(&stripe, &session, "re_good", "succeeded");
    deliver(&stripe, "refund.updated", succeeded.clone()).await;
    assert_eq!((credits(db), revenue(db)), (0, (0, 1)), "taken back");
    // Another succeeded update of the same refund changes nothing.
    deliver(&stripe, "refund.updated", succeeded).await;
    assert_eq!((credits(db), revenue(db)), (0, (0, 1)));
    assert_eq!(payment_events(db, "refunded").len(), 1);
    let refused = call(&alice, "generate_image", json!({"prompt": "a cow"}))
        .await
        .unwrap();
    assert_payment_required(&refused, "generate_image");
    assert_eq!(server.runs(), 1);
}

/// An inquiry (`warning_needs_response`, `warning_under_review`) withdraws no funds and never
/// ends as won: the purchase stands. A real dispute afterwards still takes it back.
#[tokio::test]
async fn an_inquiry_does_not_take_the_purchase_back() {
    let (stripe, server) = with_stripe(|payments| payments).await;
    let erin = server.client(Some("erin")).await;
    let session = buy(&stripe, &erin, "export_all", json!({})).await;
    let db = &server.db;
    for status in ["warning_needs_response", "warning_under_review"] {
        let inquiry = stripe.dispute_checkout(&session, status).await;
        assert_eq!(inquiry[0].status, Some(200), "{inquiry:?}");
        let ran = call(&erin, "export_all", json!({})).await.unwrap();
        assert_eq!(text(&ran), "exported", "after `{status}`: {ran:?}");
    }
    assert_eq!(revenue(db).0, 2500, "no funds were withdrawn");
    assert!(payment_events(db, "disputed").is_empty());

    let dispute = stripe.dispute_checkout(&session, "needs_response").await;
    assert_eq!(dispute[0].status, Some(200), "{dispute:?}");
    let refused = call(&erin, "export_all", json!({})).await.unwrap();
    assert_payment_required(&refused, "export_all");
    assert_eq!(revenue(db).0, 0);
    assert_eq!(server.runs(), 2);
}

/// Stripe's retry of a slow delivery can arrive while the first is still being applied: each
/// event is applied once however its deliveries overlap.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_delivered_several_times_at_once_is_applied_once() {
    let (stripe, server) = with_stripe(|payments| payments).await;
    let frank = server.client(Some("frank")).await;
    buy(&stripe, &frank, "pro_report", json!({})).await;
    let subscription = stripe.subscriptions().pop().expect("the subscription").id;
    let object = stripe
        .subscription_json(&subscription)
        .expect("the subscription");
    let invoice = stripe.invoices().pop().expect("the first invoice").id;
    let paid = stripe.invoice_json(&invoice).expect("the invoice");
    let rows = || {
        (
            payment_events(&server.db, "subscription_updated").len(),
            payment_events(&server.db, "invoice_paid").len(),
        )
    };
    let (updated, invoices) = rows();
    for round in 1..=25 {
        for (kind, object) in [
            ("customer.subscription.updated", &object),
            ("invoice.paid", &paid),
        ] {
            let (body, signature) = stripe.signed_event(kind, object.clone());
            let deliveries =
                futures::future::join_all((0..8).map(|_| stripe.post_webhook(&body, &signature)))
                    .await;
            for delivery in deliveries {
                assert_eq!(delivery.status, Some(200), "{delivery:?}");
            }
        }
        assert_eq!(
            rows(),
            (updated + round, invoices + round),
            "one row per event (round {round})"
        );
    }
}
