//! `payment_events`: the documented analytics table of what happened to payments.

#[cfg(feature = "sqlite")]
use rusqlite::{Connection, params};

/// A kind of row in `payment_events`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentEventKind {
    /// A Checkout Session was created for a user and tool.
    CheckoutCreated,
    /// A checkout was paid (one-time payments carry the amount).
    CheckoutCompleted,
    /// A checkout was completed with a delayed payment method (SEPA, ACH) whose money has not
    /// arrived yet: nothing is granted until it does.
    CheckoutPending,
    /// A delayed payment failed: the checkout grants nothing.
    CheckoutPaymentFailed,
    /// A checkout expired unpaid.
    CheckoutExpired,
    /// An invoice payment failed.
    PaymentFailed,
    /// An invoice was paid (subscription revenue).
    InvoicePaid,
    /// A subscription started.
    SubscriptionStarted,
    /// A subscription changed status.
    SubscriptionUpdated,
    /// A subscription ended.
    SubscriptionCancelled,
    /// Usage was reported to Stripe.
    MeterEventSent,
    /// Reporting usage failed for now and will be retried.
    MeterEventRetried,
    /// Usage Stripe can no longer take (older than its 35-day window).
    MeterEventFailed,
    /// A payment was refunded (the amount refunded); a full refund of a one-time purchase
    /// takes back what it granted.
    Refunded,
    /// A payment was disputed (a chargeback, the amount withdrawn); the purchase is taken back.
    Disputed,
    /// A dispute was decided for the seller (the amount returned); the purchase is granted
    /// again.
    DisputeWon,
}

impl PaymentEventKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CheckoutCreated => "checkout_created",
            Self::CheckoutCompleted => "checkout_completed",
            Self::CheckoutPending => "checkout_pending",
            Self::CheckoutPaymentFailed => "checkout_payment_failed",
            Self::CheckoutExpired => "checkout_expired",
            Self::PaymentFailed => "payment_failed",
            Self::InvoicePaid => "invoice_paid",
            Self::SubscriptionStarted => "subscription_started",
            Self::SubscriptionUpdated => "subscription_updated",
            Self::SubscriptionCancelled => "subscription_cancelled",
            Self::MeterEventSent => "meter_event_sent",
            Self::MeterEventRetried => "meter_event_retried",
            Self::MeterEventFailed => "meter_event_failed",
            Self::Refunded => "refunded",
            Self::Disputed => "disputed",
            Self::DisputeWon => "dispute_won",
        }
    }
}

/// One `payment_events` row to write.
#[derive(Clone, Debug, Default)]
pub(crate) struct EventRow<'a> {
    pub user_id: Option<&'a str>,
    pub tool: Option<&'a str>,
    pub amount: Option<i64>,
    pub currency: Option<&'a str>,
    pub reference: Option<&'a str>,
    pub detail: Option<&'a str>,
}

/// The `payment_events` table.
#[cfg(feature = "sqlite")]
pub(crate) struct Events<'c>(pub(super) &'c Connection);

#[cfg(feature = "sqlite")]
impl Events<'_> {
    pub(crate) fn record(
        &self,
        ts_ms: i64,
        kind: PaymentEventKind,
        row: &EventRow<'_>,
    ) -> rusqlite::Result<()> {
        self.0.prepare_cached(
            "INSERT INTO payment_events (ts_ms, kind, user_id, tool, amount, currency, reference, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![ts_ms, kind.as_str(), row.user_id, row.tool, row.amount, row.currency, row.reference, row.detail])?;
        Ok(())
    }

    /// Whether an event of `kind` already names `reference` (a refund or a dispute).
    pub(crate) fn recorded(
        &self,
        kind: PaymentEventKind,
        reference: &str,
    ) -> rusqlite::Result<bool> {
        self.0.query_row(
            "SELECT count(*) > 0 FROM payment_events WHERE kind = ?1 AND reference = ?2",
            [kind.as_str(), reference],
            |row| row.get(0),
        )
    }

    /// The amount refunded so far of a checkout's payment (its `refunded` events).
    pub(crate) fn refunded_total(&self, session_id: &str) -> rusqlite::Result<i64> {
        self.0.query_row(
            "SELECT coalesce(sum(amount), 0) FROM payment_events WHERE kind = 'refunded' AND detail = ?1",
            [session_id],
            |row| row.get(0),
        )
    }
}
