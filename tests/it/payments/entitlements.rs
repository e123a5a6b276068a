//! What a purchase entitles: a take-back reaches every kind of grant at once, a credit pack
//! grants its size, and an entitlement covers a tool's whole set of prices.

use super::*;

/// The `(price, quantity)` line items of a checkout at the fake.
fn line_items(stripe: &FakeStripe, session: &str) -> Vec<(String, Option<u64>)> {
    stripe
        .checkout_session(session)
        .expect("the checkout exists")
        .line_items
        .into_iter()
        .map(|item| (item.price, item.quantity))
        .collect()
}

/// How a payment is taken back.
enum TakeBack {
    Refund,
    Dispute,
}

/// Buys `export_all` (unlimited), uses it twice, takes the payment back; the very next call,
/// in the same process, must be refused.
async fn an_unlimited_purchase_taken_back_stops_at_once(take_back: TakeBack) {
    let (stripe, server) = with_stripe(|payments| payments).await;
    let alice = server.client(Some("alice")).await;
    let session = buy(&stripe, &alice, "export_all", json!({})).await;
    for _ in 0..2 {
        let ran = call(&alice, "export_all", json!({})).await.unwrap();
        assert_eq!(text(&ran), "exported", "{ran:?}");
    }

    let deliveries = match take_back {
        TakeBack::Refund => stripe.refund_checkout(&session, None).await,
        TakeBack::Dispute => stripe.dispute_checkout(&session, "needs_response").await,
    };
    assert!(
        deliveries.iter().all(|d| d.status == Some(200)),
        "{deliveries:?}"
    );
    let refused = call(&alice, "export_all", json!({})).await.unwrap();
    let again = assert_payment_required(&refused, "export_all");
    assert_ne!(again, session, "a new purchase is offered");
    assert_eq!(server.runs(), 2, "nothing ran after the take-back");
}

#[tokio::test]
async fn a_refunded_unlimited_purchase_stops_working_at_once() {
    an_unlimited_purchase_taken_back_stops_at_once(TakeBack::Refund).await;
}

#[tokio::test]
async fn a_disputed_unlimited_purchase_stops_working_at_once() {
    an_unlimited_purchase_taken_back_stops_at_once(TakeBack::Dispute).await;
}

#[tokio::test]
async fn one_purchase_of_a_credit_pack_grants_its_size_in_calls() {
    let (stripe, server) = with_stripe(|payments| payments).await;
    let carol = server.client(Some("carol")).await;
    let unpaid = call(&carol, "thumbnail", json!({"prompt": "a"}))
        .await
        .unwrap();
    let session = assert_payment_required(&unpaid, "thumbnail");
    assert_eq!(structured(&unpaid)["amount"], 900, "one pack, 9.00 USD");
    assert_eq!(structured(&unpaid)["calls_granted"], 3, "the pack's size");
    assert!(
        text(&unpaid).contains("(9.00 USD for 3 calls)"),
        "{}",
        text(&unpaid)
    );
    assert_eq!(
        line_items(&stripe, &session),
        [("price_thumbnail_pack".to_owned(), Some(1))]
    );
    let checkout = stripe.checkout_session(&session).unwrap();
    assert_eq!(checkout.metadata["mcp_grant"], "3", "what it grants");
    stripe.complete_checkout(&session).await;

    for prompt in ["a", "b", "c"] {
        let ran = call(&carol, "thumbnail", json!({ "prompt": prompt }))
            .await
            .unwrap();
        assert_eq!(text(&ran), format!("thumbnail of {prompt}"), "{ran:?}");
    }
    let used_up = call(&carol, "thumbnail", json!({"prompt": "d"}))
        .await
        .unwrap();
    assert_ne!(assert_payment_required(&used_up, "thumbnail"), session);
    assert_eq!(server.runs(), 3);
    assert_eq!(credits(&server.db), 0);
    server.analytics.flush().await;
    assert_eq!(revenue(&server.db), (900, 1), "paid once");
}

#[tokio::test]
async fn credits_cover_only_the_line_items_they_were_bought_for() {
    let (stripe, server) = with_stripe(|payments| payments).await;
    let alice = server.client(Some("alice")).await;
    buy(&stripe, &alice, "generate_image", json!({"prompt": "a"})).await;

    // Image credits ([price_image ×2]) do not buy an HD image
    // ([price_image ×2, price_hd_surcharge]).
    let hd = call(&alice, "generate_hd_image", json!({"prompt": "a"}))
        .await
        .unwrap();
    let hd_session = assert_payment_required(&hd, "generate_hd_image");
    assert_eq!(structured(&hd)["amount"], 1200, "2 × 5.00 + 2.00 USD");
    assert_eq!(
        line_items(&stripe, &hd_session),
        [
            ("price_image".to_owned(), Some(2)),
            ("price_hd_surcharge".to_owned(), Some(1))
        ]
    );
    assert_eq!(server.runs(), 0);
    // ... and the refusal took none of them.
    for _ in 0..2 {
        let ran = call(&alice, "generate_image", json!({"prompt": "b"}))
            .await
            .unwrap();
        assert_eq!(text(&ran), "image of b", "{ran:?}");
    }

    // The other way round: HD credits do not buy plain images.
    let bob = server.client(Some("bob")).await;
    buy(&stripe, &bob, "generate_hd_image", json!({"prompt": "c"})).await;
    let plain = call(&bob, "generate_image", json!({"prompt": "c"}))
        .await
        .unwrap();
    let plain_session = assert_payment_required(&plain, "generate_image");
    assert_eq!(
        line_items(&stripe, &plain_session),
        [("price_image".to_owned(), Some(2))]
    );
    let ran = call(&bob, "generate_hd_image", json!({"prompt": "c"}))
        .await
        .unwrap();
    assert_eq!(text(&ran), "HD image of c", "{ran:?}");
    assert_eq!(server.runs(), 3);
}

#[tokio::test]
async fn a_subscription_grants_only_tools_whose_prices_it_covers() {
    let (stripe, server) = with_stripe(|payments| payments).await;

    // A [price_pro] subscriber does not get the [price_pro, price_premium] tool.
    let carol = server.client(Some("carol")).await;
    buy(&stripe, &carol, "pro_report", json!({})).await;
    let pro = call(&carol, "pro_report", json!({})).await.unwrap();
    assert_eq!(text(&pro), "pro report", "{pro:?}");
    let premium = call(&carol, "premium_report", json!({})).await.unwrap();
    let session = assert_payment_required(&premium, "premium_report");
    assert_eq!(structured(&premium)["mode"], "subscription");
    assert_eq!(
        line_items(&stripe, &session),
        [
            ("price_pro".to_owned(), Some(1)),
            ("price_premium".to_owned(), Some(1))
        ]
    );
    assert_eq!(server.runs(), 1);

    // A [price_pro, price_premium] subscriber gets both: their subscription covers [price_pro].
    let dave = server.client(Some("dave")).await;
    buy(&stripe, &dave, "premium_report", json!({})).await;
    let premium = call(&dave, "premium_report", json!({})).await.unwrap();
    assert_eq!(text(&premium), "premium report", "{premium:?}");
    let pro = call(&dave, "pro_report", json!({})).await.unwrap();
    assert_eq!(text(&pro), "pro report", "{pro:?}");
    assert_eq!(server.runs(), 3);
    assert_eq!(
        stripe.subscriptions().len(),
        2,
        "dave was not sold Pro a second time"
    );
}
