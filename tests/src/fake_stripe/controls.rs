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

    /// The hosted page URL of invoice `id`.
    fn invoice_url(&self, id: &str) -> String {
        format!("{}invoice/{id}", self.base_url)
    }

    /// Completes an open session. Paid at once (`pending = false`): `payment_status=paid`
    /// (`no_payment_required` for a zero total, e.g. metered-only subscriptions); subscription
    /// mode also creates an active subscription and its paid first invoice. With a delayed
    /// payment method (`pending = true`, SEPA/ACH): `payment_status=unpaid` until
    /// [`State::settle_async_payment`]; subscription mode creates an `incomplete` subscription
    /// whose first invoice is `open`.
    pub fn complete_checkout(&mut self, id: &str, pending: bool) -> Result<Vec<Event>, String> {
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
        if pending && session.amount_total == 0 {
            return Err(format!(
                "checkout session {id} has nothing to pay, so no delayed payment"
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
                status: if pending { "incomplete" } else { "active" }.into(),
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
                hosted_invoice_url: self.invoice_url(&inv_id),
                id: inv_id,
                customer,
                subscription: sid.clone(),
                status: if pending { "open" } else { "paid" }.into(),
                amount_due: session.amount_total,
                amount_paid: if pending { 0 } else { session.amount_total },
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
            if !pending {
                events.push(("invoice.paid", inv_json));
            }
            sub_id = Some(sid);
        } else {
            payment_intent = Some(self.next_id("pi"));
        }
        let s = self.session_mut(id).expect("exists");
        s.status = "complete".into();
        s.payment_status = if s.amount_total == 0 {
            "no_payment_required".into()
        } else if pending {
            "unpaid".into()
        } else {
            "paid".into()
        };
        s.awaiting_payment = pending;
        s.subscription = sub_id;
        s.payment_intent = payment_intent;
        let session_json = objects::checkout_session(s);
        let mut out = vec![self.emit("checkout.session.completed", session_json, None)];
        for (t, obj) in events {
            out.push(self.emit(t, obj, None));
        }
        Ok(out)
    }

    /// The outcome of a delayed payment of a session completed with `pending = true`.
    /// Succeeded: `payment_status=paid` and `checkout.session.async_payment_succeeded`; in
    /// subscription mode the first invoice is paid and the subscription `active`
    /// (`customer.subscription.updated`, `invoice.paid`). Failed: the payment stays `unpaid`,
    /// `checkout.session.async_payment_failed` (and `invoice.payment_failed` for a
    /// subscription, which stays `incomplete`).
    pub fn settle_async_payment(
        &mut self,
        id: &str,
        succeeded: bool,
    ) -> Result<Vec<Event>, String> {
        let s = self
            .session_mut(id)
            .ok_or_else(|| format!("no such checkout session: {id}"))?;
        if !s.awaiting_payment {
            return Err(format!(
                "checkout session {id} is not awaiting a delayed payment"
            ));
        }
        s.awaiting_payment = false;
        if succeeded {
            s.payment_status = "paid".into();
        }
        let session_json = objects::checkout_session(s);
        let subscription = s.subscription.clone();
        let kind = if succeeded {
            "checkout.session.async_payment_succeeded"
        } else {
            "checkout.session.async_payment_failed"
        };
        let mut out = vec![self.emit(kind, session_json, None)];
        let Some(sub_id) = subscription else {
            return Ok(out);
        };
        let inv_id = self
            .subscriptions
            .iter()
            .find(|s| s.id == sub_id)
            .and_then(|s| s.latest_invoice.clone())
            .ok_or_else(|| format!("subscription {sub_id} has no invoice"))?;
        let invoice = self
            .invoices
            .iter_mut()
            .find(|i| i.id == inv_id)
            .ok_or_else(|| format!("no such invoice: {inv_id}"))?;
        if succeeded {
            invoice.status = "paid".into();
            invoice.amount_paid = invoice.amount_due;
        }
        let invoice = invoice.clone();
        if succeeded {
            let sub = self.subscription_mut(&sub_id).expect("exists");
            let previous = std::mem::replace(&mut sub.status, "active".into());
            let sub = sub.clone();
            let obj = objects::subscription(self, &sub);
            out.push(self.emit(
                "customer.subscription.updated",
                obj,
                Some(json!({ "status": previous })),
            ));
        }
        let obj = objects::invoice(self, &invoice);
        let kind = if succeeded {
            "invoice.paid"
        } else {
            "invoice.payment_failed"
        };
        out.push(self.emit(kind, obj, None));
        Ok(out)
    }

    /// Deletes a customer like Stripe: its live subscriptions are canceled
    /// (`customer.subscription.deleted` each), then `customer.deleted`.
    pub fn delete_customer(&mut self, id: &str) -> Result<Vec<Event>, String> {
        let customer = self
            .customer(id)
            .cloned()
            .ok_or_else(|| format!("no such customer: {id}"))?;
        let live: Vec<String> = self
            .subscriptions
            .iter()
            .filter(|s| s.customer == id && s.status != "canceled")
            .map(|s| s.id.clone())
            .collect();
        let mut out = Vec::new();
        for sub in live {
            out.extend(self.set_subscription_status(&sub, "canceled")?);
        }
        if let Some(c) = self.customers.iter_mut().find(|c| c.id == id) {
            c.deleted = true;
        }
        out.push(self.emit("customer.deleted", objects::customer(&customer), None));
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
            .filter(|_| s.payment_status == "paid")
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
            .filter(|_| s.payment_status == "paid")
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
        let latest = sub.latest_invoice.clone();
        let latest_open = latest
            .as_deref()
            .and_then(|l| self.invoices.iter().find(|i| i.id == l))
            .is_some_and(|i| i.status == "open");
        if matches!(status, "past_due" | "unpaid" | "incomplete") && !latest_open {
            // Stripe reaches these statuses through an unpaid invoice: make one.
            self.period_invoice(id, false)?;
        }
        let sub = self
            .subscriptions
            .iter()
            .find(|s| s.id == id)
            .expect("exists")
            .clone();
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
        let invoice = self.period_invoice(id, paid)?;
        let obj = objects::invoice(self, &invoice);
        let event_type = if paid {
            "invoice.paid"
        } else {
            "invoice.payment_failed"
        };
        Ok(vec![self.emit(event_type, obj, None)])
    }

    /// Creates and stores the invoice of the subscription's current period (paid: the period
    /// advances; else `open`) and makes it the subscription's `latest_invoice`.
    fn period_invoice(&mut self, id: &str, paid: bool) -> Result<Invoice, String> {
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
                        PriceKind::Metered { .. } => {
                            let usage: f64 = self
                                .meter_events
                                .iter()
                                .filter(|e| Some(&e.meter) == p.meter.as_ref())
                                .filter(|e| e.customer == sub.customer)
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
        let inv_id = self.next_id("in");
        let invoice = Invoice {
            hosted_invoice_url: self.invoice_url(&inv_id),
            id: inv_id,
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
        let s = self.subscription_mut(id).expect("exists");
        s.latest_invoice = Some(invoice.id.clone());
        if paid {
            s.current_period_start = s.current_period_end;
            s.current_period_end += PERIOD;
        }
        self.invoices.push(invoice.clone());
        Ok(invoice)
    }
}
