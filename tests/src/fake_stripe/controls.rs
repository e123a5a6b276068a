//! State transitions driven by the test (what a payer or Stripe's billing engine would do):
//! completing and expiring Checkout Sessions, subscription status changes, invoices. Each
//! returns the events it generated, in delivery order.

use serde_json::{Value, json};

use super::objects;
use super::state::{Event, Invoice, PriceKind, State, Subscription, SubscriptionItem, now};

/// A month, as the fake's billing period.
const PERIOD: i64 = 30 * 24 * 3600;

impl State {
    /// Builds and stores an event for `object`.
    pub fn emit(&mut self, event_type: &str, object: Value, previous: Option<Value>) -> Event {
        let id = self.next_id("evt");
        let body = objects::event(&id, event_type, object, previous).to_string();
        let event = Event {
            id,
            event_type: event_type.to_owned(),
            body,
        };
        self.events.push(event.clone());
        event
    }

    /// Pays an open session: `status=complete`, `payment_status=paid` (`no_payment_required`
    /// for a zero total, e.g. metered-only subscriptions); subscription mode also creates an
    /// active subscription and its paid first invoice.
    pub fn complete_checkout(&mut self, id: &str) -> Result<Vec<Event>, String> {
        let session = self
            .sessions
            .iter()
            .find(|s| s.id == id)
            .cloned()
            .ok_or_else(|| format!("no such checkout session: {id}"))?;
        if session.status != "open" {
            return Err(format!(
                "checkout session {id} is {}, not open",
                session.status
            ));
        }
        let t = now();
        let mut events = Vec::new();
        let mut sub_id = None;
        let mut payment_intent = None;
        if session.mode == "subscription" {
            let customer = session
                .customer
                .clone()
                .ok_or_else(|| format!("subscription session {id} has no customer"))?;
            let sid = self.next_id("sub");
            let inv_id = self.next_id("in");
            let items = session
                .line_items
                .iter()
                .map(|li| SubscriptionItem {
                    id: self.next_id("si"),
                    price: li.price.clone(),
                    quantity: li.quantity,
                })
                .collect::<Vec<_>>();
            let lines = items
                .iter()
                .map(|item| {
                    let amount = self
                        .price(&item.price)
                        .filter(|p| !p.is_metered())
                        .map(|p| p.unit_amount * item.quantity.unwrap_or(1) as i64)
                        .unwrap_or(0);
                    (item.price.clone(), item.quantity, amount)
                })
                .collect::<Vec<_>>();
            let sub = Subscription {
                id: sid.clone(),
                customer: customer.clone(),
                status: "active".into(),
                items,
                metadata: session.subscription_metadata.clone(),
                created: t,
                current_period_start: t,
                current_period_end: t + PERIOD,
                latest_invoice: Some(inv_id.clone()),
                canceled_at: None,
                currency: session.currency.clone(),
            };
            let invoice = Invoice {
                id: inv_id,
                customer,
                subscription: sid.clone(),
                status: "paid".into(),
                amount_due: session.amount_total,
                amount_paid: session.amount_total,
                currency: session.currency.clone(),
                attempt_count: 1,
                created: t,
                period_start: t,
                period_end: t,
                lines,
            };
            let sub_json = objects::subscription(self, &sub);
            let inv_json = objects::invoice(self, &invoice);
            self.subscriptions.push(sub);
            self.invoices.push(invoice);
            events.push(("customer.subscription.created", sub_json));
            events.push(("invoice.paid", inv_json));
            sub_id = Some(sid);
        } else {
            payment_intent = Some(self.next_id("pi"));
        }
        let s = self.session_mut(id).expect("exists");
        s.status = "complete".into();
        s.payment_status = if s.amount_total == 0 {
            "no_payment_required".into()
        } else {
            "paid".into()
        };
        s.subscription = sub_id;
        s.payment_intent = payment_intent;
        let session_json = objects::checkout_session(s);
        let mut out = vec![self.emit("checkout.session.completed", session_json, None)];
        for (t, obj) in events {
            out.push(self.emit(t, obj, None));
        }
        Ok(out)
    }

    /// Refunds `amount` (default: all) of a paid one-time session's payment: `refund.created`
    /// with a succeeded refund naming its payment intent.
    pub fn refund_checkout(&mut self, id: &str, amount: Option<i64>) -> Result<Vec<Event>, String> {
        let s = self
            .session_mut(id)
            .ok_or_else(|| format!("no such checkout session: {id}"))?;
        let intent = s
            .payment_intent
            .clone()
            .ok_or_else(|| format!("checkout session {id} has no payment to refund"))?;
        let (total, currency, customer) = (s.amount_total, s.currency.clone(), s.customer.clone());
        let refund_id = self.next_id("re");
        let object = objects::refund(
            &refund_id,
            &intent,
            amount.unwrap_or(total),
            &currency,
            customer.as_deref(),
        );
        Ok(vec![self.emit("refund.created", object, None)])
    }

    /// A dispute of a paid one-time session's whole payment: `charge.dispute.created` for
    /// `needs_response`, `charge.dispute.closed` for `won` or `lost` (one dispute per session).
    pub fn dispute_checkout(&mut self, id: &str, status: &str) -> Result<Vec<Event>, String> {
        let s = self
            .session_mut(id)
            .ok_or_else(|| format!("no such checkout session: {id}"))?;
        let intent = s
            .payment_intent
            .clone()
            .ok_or_else(|| format!("checkout session {id} has no payment to dispute"))?;
        let (amount, currency) = (s.amount_total, s.currency.clone());
        let dispute_id = format!("dp_{}", id.trim_start_matches("cs_"));
        let object = objects::dispute(&dispute_id, &intent, amount, &currency, status);
        let kind = match status {
            "won" | "lost" => "charge.dispute.closed",
            _ => "charge.dispute.created",
        };
        Ok(vec![self.emit(kind, object, None)])
    }

    /// Expires an open session (`status=expired`).
    pub fn expire_checkout(&mut self, id: &str) -> Result<Vec<Event>, String> {
        let s = self
            .session_mut(id)
            .ok_or_else(|| format!("no such checkout session: {id}"))?;
        if s.status != "open" {
            return Err(format!("checkout session {id} is {}, not open", s.status));
        }
        s.status = "expired".into();
        let obj = objects::checkout_session(s);
        Ok(vec![self.emit("checkout.session.expired", obj, None)])
    }

    /// Sets a subscription's status: `canceled` sends `customer.subscription.deleted`, any
    /// other status `customer.subscription.updated` with `previous_attributes.status`.
    pub fn set_subscription_status(
        &mut self,
        id: &str,
        status: &str,
    ) -> Result<Vec<Event>, String> {
        let sub = self
            .subscription_mut(id)
            .ok_or_else(|| format!("no such subscription: {id}"))?;
        if sub.status == "canceled" {
            return Err(format!("subscription {id} is already canceled"));
        }
        let previous = std::mem::replace(&mut sub.status, status.to_owned());
        if status == "canceled" {
            sub.canceled_at = Some(now());
        }
        let sub = sub.clone();
        let obj = objects::subscription(self, &sub);
        Ok(vec![if status == "canceled" {
            self.emit("customer.subscription.deleted", obj, None)
        } else {
            self.emit(
                "customer.subscription.updated",
                obj,
                Some(json!({ "status": previous })),
            )
        }])
    }

    /// Creates a renewal invoice for the subscription's current period (licensed items at
    /// quantity × price, metered items at the period's accepted meter usage × price): paid
    /// (`invoice.paid`, period advanced) or failed (`invoice.payment_failed`, invoice `open`).
    pub fn renewal_invoice(&mut self, id: &str, paid: bool) -> Result<Vec<Event>, String> {
        let sub = self
            .subscriptions
            .iter()
            .find(|s| s.id == id)
            .cloned()
            .ok_or_else(|| format!("no such subscription: {id}"))?;
        let lines = sub
            .items
            .iter()
            .map(|item| {
                let amount = match self.price(&item.price) {
                    Some(p) => match &p.kind {
                        // Usage in the period just ended, at the unit price.
                        PriceKind::Metered { meter } => {
                            let usage: f64 = self
                                .meter_events
                                .iter()
                                .filter(|e| &e.event_name == meter && e.customer == sub.customer)
                                .filter(|e| {
                                    e.timestamp >= sub.current_period_start
                                        && e.timestamp < sub.current_period_end
                                })
                                .filter_map(|e| e.value.parse::<f64>().ok())
                                .sum();
                            (usage * p.unit_amount as f64).round() as i64
                        }
                        _ => p.unit_amount * item.quantity.unwrap_or(1) as i64,
                    },
                    None => 0,
                };
                (item.price.clone(), item.quantity, amount)
            })
            .collect::<Vec<_>>();
        let total = lines.iter().map(|l| l.2).sum();
        let invoice = Invoice {
            id: self.next_id("in"),
            customer: sub.customer.clone(),
            subscription: sub.id.clone(),
            status: if paid { "paid" } else { "open" }.into(),
            amount_due: total,
            amount_paid: if paid { total } else { 0 },
            currency: sub.currency.clone(),
            attempt_count: 1,
            created: now(),
            period_start: sub.current_period_start,
            period_end: sub.current_period_end,
            lines,
        };
        let obj = objects::invoice(self, &invoice);
        let s = self.subscription_mut(id).expect("exists");
        s.latest_invoice = Some(invoice.id.clone());
        if paid {
            s.current_period_start = s.current_period_end;
            s.current_period_end += PERIOD;
        }
        self.invoices.push(invoice);
        let event_type = if paid {
            "invoice.paid"
        } else {
            "invoice.payment_failed"
        };
        Ok(vec![self.emit(event_type, obj, None)])
    }
}
