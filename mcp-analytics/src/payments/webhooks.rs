//! Stripe's webhooks: signature verification, dedupe by event id, and applying each event —
//! purchases, delayed payments, subscriptions, refunds and disputes through the ledger,
//! expired checkouts through `Checkouts`, invoices into `payment_events`.

use std::sync::Arc;

use stripe_webhook::{EventObject, Webhook, WebhookError};

use super::{
    checkouts::Checkouts,
    ledger::{Ledger, Reversal, ReversalKind, SubscriptionChange},
    now_ms,
    provider::stripe,
    store::{EventRow, PaymentDb, PaymentEventKind, StoreError, WebhookClaim},
};

/// The Stripe events that change what users hold or have paid.
const HANDLED: [&str; 14] = [
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_failed",
    "refund.created",
    "refund.updated",
    "charge.dispute.created",
    "charge.dispute.closed",
    "charge.dispute.funds_reinstated",
];

/// The answer to one webhook delivery: an HTTP status (2xx: done, Stripe stops resending;
/// 5xx: Stripe delivers it again) and a short body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Answer {
    pub status: u16,
    pub body: &'static str,
}

impl Answer {
    const fn new(status: u16, body: &'static str) -> Self {
        Self { status, body }
    }
}

/// The webhook endpoint's logic.
pub(crate) struct Webhooks {
    secret: Option<String>,
    db: PaymentDb,
    ledger: Arc<Ledger>,
    checkouts: Arc<Checkouts>,
    /// Held from the dedupe check to marking the event applied, so that two overlapping
    /// deliveries of one event (a slow attempt and Stripe's retry) apply it once.
    applying: tokio::sync::Mutex<()>,
}

impl Webhooks {
    pub(crate) fn new(
        secret: Option<String>,
        db: PaymentDb,
        ledger: Arc<Ledger>,
        checkouts: Arc<Checkouts>,
    ) -> Self {
        Self {
            secret,
            db,
            ledger,
            checkouts,
            applying: tokio::sync::Mutex::new(()),
        }
    }

    /// Verifies, dedupes and applies one delivery.
    pub(crate) async fn receive(&self, signature: Option<&str>, body: &[u8]) -> Answer {
        let Some(secret) = &self.secret else {
            return Answer::new(404, "STRIPE_WEBHOOK_SECRET is not set");
        };
        let Ok(payload) = std::str::from_utf8(body) else {
            return Answer::new(400, "the body is not UTF-8");
        };
        let Some(signature) = signature else {
            return Answer::new(400, "missing Stripe-Signature");
        };
        let event = match Webhook::construct_event(payload, signature, secret) {
            Ok(event) => event,
            // The signature was valid (it is checked first) but the object has a shape we do
            // not model (another API version?). An event that changes what users hold is not
            // dropped: 500 keeps it in Stripe's retries and its dashboard shows the failure.
            // Anything else is acknowledged so Stripe stops resending it.
            Err(WebhookError::BadParse(reason)) => {
                let kind = serde_json::from_str::<serde_json::Value>(payload)
                    .ok()
                    .and_then(|event| event["type"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                if HANDLED.contains(&kind.as_str()) {
                    tracing::error!(
                        kind,
                        "a signed Stripe `{kind}` event cannot be read: {reason}"
                    );
                    return Answer::new(500, "cannot read the event");
                }
                tracing::warn!("Stripe webhook with a valid signature ignored: {reason}");
                return Answer::new(200, "ignored");
            }
            Err(error) => {
                tracing::warn!("Stripe webhook rejected: {error}");
                return Answer::new(400, "rejected: bad signature or payload");
            }
        };
        let event_id = event.id.as_str().to_owned();
        let kind = event.type_.as_str().to_owned();
        let claim = WebhookClaim {
            event_id: &event_id,
            kind: &kind,
        };
        // Check, apply and mark as one step in this process.
        let _applying = self.applying.lock().await;
        let applied = match self.record_once(claim, &event.data.object).await {
            Some(recorded) => recorded,
            None => self.apply_once(claim, &event.data.object).await,
        };
        match applied {
            Ok(true) => Answer::new(200, "ok"),
            Ok(false) => Answer::new(200, "duplicate"),
            Err(error) => {
                tracing::error!(event = %event_id, "cannot apply Stripe event: {error}");
                Answer::new(500, "cannot apply the event")
            }
        }
    }

    /// Events whose whole effect is rows written here — an invoice's `payment_events` row, a
    /// checkout marked expired — are written in the transaction that marks the event applied:
    /// a redelivery, or the same event on another replica, finds it marked and writes nothing,
    /// even when a delivery failed after writing. `false`: applied before. `None` for the
    /// events applied through the ledger (see [`Self::apply_once`]).
    async fn record_once(
        &self,
        claim: WebhookClaim<'_>,
        object: &EventObject,
    ) -> Option<Result<bool, StoreError>> {
        Some(match object {
            EventObject::InvoicePaid(invoice) => {
                self.invoice(
                    claim,
                    PaymentEventKind::InvoicePaid,
                    invoice,
                    invoice.amount_paid,
                )
                .await
            }
            EventObject::InvoicePaymentFailed(invoice) => {
                self.invoice(
                    claim,
                    PaymentEventKind::PaymentFailed,
                    invoice,
                    invoice.amount_due,
                )
                .await
            }
            EventObject::CheckoutSessionExpired(session) => {
                self.checkouts
                    .expired(claim, &stripe::checkout_info(session))
                    .await
            }
            _ => return None,
        })
    }

    /// Applies an event through the ledger once: marked applied only once applied (a failure
    /// answers 500 and Stripe delivers it again; what the ledger changes is idempotent by what
    /// it holds). `false`: applied before.
    async fn apply_once(
        &self,
        claim: WebhookClaim<'_>,
        object: &EventObject,
    ) -> Result<bool, StoreError> {
        match &self.db {
            #[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "workers")))]
            absent => absent.absent(),
            #[cfg(feature = "sqlite")]
            PaymentDb::Sqlite(store) => {
                if store.lock().webhook_events().applied(claim.event_id)? {
                    return Ok(false);
                }
                self.apply(object).await?;
                store
                    .lock()
                    .webhook_events()
                    .mark_applied(claim.event_id, claim.kind, now_ms())?;
                Ok(true)
            }
            #[cfg(feature = "postgres")]
            PaymentDb::Postgres(pg) => self.apply_across_replicas(pg, claim, object).await,
            #[cfg(feature = "workers")]
            PaymentDb::D1(_) => Err(StoreError::NotOnD1("Stripe's webhook events")),
        }
    }

    /// Applies an event once across replicas (PostgreSQL): its `stripe_webhook_events` row is
    /// inserted in a transaction held open while it is applied and committed after, so another
    /// replica receiving the same event waits for that row, then finds it (or, when applying
    /// failed here and the row was rolled back, applies the event itself). `false`: applied
    /// before.
    #[cfg(feature = "postgres")]
    async fn apply_across_replicas(
        &self,
        pg: &super::store::pg::PgPayments,
        claim: WebhookClaim<'_>,
        object: &EventObject,
    ) -> Result<bool, StoreError> {
        let mut client = pg.pool.get().await?;
        let tx = client.transaction().await?;
        if !super::store::pg::records::claim_webhook_event(
            &tx,
            claim.event_id,
            claim.kind,
            now_ms(),
        )
        .await?
        {
            return Ok(false);
        }
        self.apply(object).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn apply(&self, object: &EventObject) -> Result<(), StoreError> {
        match object {
            EventObject::CheckoutSessionCompleted(session)
            | EventObject::CheckoutSessionAsyncPaymentSucceeded(session) => self
                .ledger
                .fulfil(&stripe::checkout_info(session))
                .await
                .map(drop),
            EventObject::CheckoutSessionAsyncPaymentFailed(session) => {
                self.ledger
                    .payment_failed(&stripe::checkout_info(session))
                    .await
            }
            EventObject::CustomerSubscriptionCreated(sub) => {
                self.subscription(sub, SubscriptionChange::Created).await
            }
            EventObject::CustomerSubscriptionUpdated(sub) => {
                self.subscription(sub, SubscriptionChange::Updated).await
            }
            EventObject::CustomerSubscriptionDeleted(sub) => {
                self.subscription(sub, SubscriptionChange::Deleted).await
            }
            EventObject::RefundCreated(refund) | EventObject::RefundUpdated(refund) => {
                let status = refund.status.as_deref().unwrap_or("");
                match &refund.payment_intent {
                    // Only money actually returned takes the purchase back: a pending refund
                    // may still fail or be canceled (its `refund.updated` to `succeeded` applies
                    // it, once per refund id), a failed or canceled one gives nothing back.
                    Some(intent) if status == "succeeded" => {
                        self.ledger
                            .reverse(&Reversal {
                                kind: ReversalKind::Refund,
                                id: refund.id.as_str().to_owned(),
                                payment_intent: intent.id().as_str().to_owned(),
                                amount: refund.amount,
                                currency: refund.currency.to_string(),
                            })
                            .await
                    }
                    _ => Ok(()),
                }
            }
            EventObject::ChargeDisputeCreated(dispute)
            | EventObject::ChargeDisputeClosed(dispute)
            | EventObject::ChargeDisputeFundsReinstated(dispute) => {
                use stripe_shared::DisputeStatus::{
                    WarningClosed, WarningNeedsResponse, WarningUnderReview,
                };
                // An inquiry (a `warning_*` status) withdraws no funds and closes as
                // `warning_closed`, never won: it takes nothing back and records nothing.
                if matches!(
                    dispute.status,
                    WarningNeedsResponse | WarningUnderReview | WarningClosed
                ) {
                    return Ok(());
                }
                let kind = match object {
                    EventObject::ChargeDisputeCreated(_) => ReversalKind::Dispute,
                    EventObject::ChargeDisputeFundsReinstated(_) => ReversalKind::DisputeWon,
                    _ if dispute.status == stripe_shared::DisputeStatus::Won => {
                        ReversalKind::DisputeWon
                    }
                    // Closed and lost: it stays taken back.
                    _ => return Ok(()),
                };
                match &dispute.payment_intent {
                    Some(intent) => {
                        self.ledger
                            .reverse(&Reversal {
                                kind,
                                id: dispute.id.as_str().to_owned(),
                                payment_intent: intent.id().as_str().to_owned(),
                                amount: dispute.amount,
                                currency: dispute.currency.to_string(),
                            })
                            .await
                    }
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    async fn subscription(
        &self,
        sub: &stripe_shared::Subscription,
        change: SubscriptionChange,
    ) -> Result<(), StoreError> {
        self.ledger
            .apply_subscription(&stripe::subscription_info(sub), change)
            .await
    }

    /// Records a paid or failed invoice against the subscription's user and tool, once.
    async fn invoice(
        &self,
        claim: WebhookClaim<'_>,
        kind: PaymentEventKind,
        invoice: &stripe_shared::Invoice,
        amount: i64,
    ) -> Result<bool, StoreError> {
        let subscription = invoice.subscription.as_ref().map(|s| s.id().as_str());
        let customer = invoice.customer.as_ref().map(|c| c.id().as_str());
        let currency = invoice.currency.to_string();
        let event = EventRow {
            amount: Some(amount),
            currency: Some(&currency),
            reference: invoice.id.as_ref().map(|id| id.as_str()).or(subscription),
            detail: subscription,
            ..EventRow::default()
        };
        self.db
            .invoice_event(claim, kind, subscription, customer, event, now_ms())
            .await
    }
}
