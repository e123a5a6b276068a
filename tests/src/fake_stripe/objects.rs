//! Stripe's JSON shapes for the fake's objects. Each carries every field async-stripe
//! 1.0.0-rc.10 requires (its miniserde deserializers reject a missing required field), plus the
//! optional ones production code reads.

use serde_json::{Value, json};

use super::state::{
    CheckoutSession, Customer, Invoice, Meter, MeterEvent, PortalSession, Price, PriceKind, State,
    Subscription, now,
};

/// The API version the fake claims (the one async-stripe rc.10 pins).
pub const API_VERSION: &str = "2026-09-30.endive";

/// A Stripe error body: `{"error":{"type","message","code","param"}}`.
pub fn error(type_: &str, message: &str, code: Option<&str>, param: Option<&str>) -> Value {
    let mut e = json!({ "type": type_, "message": message });
    if let Some(code) = code {
        e["code"] = json!(code);
        e["doc_url"] = json!(format!(
            "https://stripe.com/docs/error-codes/{}",
            code.replace('_', "-")
        ));
    }
    if let Some(param) = param {
        e["param"] = json!(param);
    }
    json!({ "error": e })
}

/// A `List` page: `object=list`, `data`, `has_more`, `url`.
pub fn list(url: &str, data: Vec<Value>, has_more: bool) -> Value {
    json!({ "object": "list", "data": data, "has_more": has_more, "url": url })
}

/// What Stripe answers for a deleted customer (`DELETE`, and `GET` afterwards).
pub fn deleted_customer(id: &str) -> Value {
    json!({ "id": id, "object": "customer", "deleted": true })
}

/// A billing meter summing `payload[value]` per `payload[stripe_customer_id]`.
pub fn meter(m: &Meter) -> Value {
    json!({
        "id": m.id,
        "object": "billing.meter",
        "created": m.created,
        "customer_mapping": { "event_payload_key": "stripe_customer_id", "type": "by_id" },
        "default_aggregation": { "formula": "sum" },
        "display_name": m.display_name,
        "event_name": m.event_name,
        "event_time_window": null,
        "livemode": false,
        "status": m.status,
        "status_transitions": { "deactivated_at": m.deactivated_at },
        "updated": m.updated,
        "value_settings": { "event_payload_key": "value" }
    })
}

/// A Billing Portal session.
pub fn portal_session(p: &PortalSession) -> Value {
    json!({
        "id": p.id,
        "object": "billing_portal.session",
        "configuration": p.configuration,
        "created": p.created,
        "customer": p.customer,
        "customer_account": null,
        "flow": null,
        "livemode": false,
        "locale": null,
        "on_behalf_of": null,
        "return_url": p.return_url,
        "url": p.url
    })
}

/// A customer.
pub fn customer(c: &Customer) -> Value {
    json!({
        "id": c.id,
        "object": "customer",
        "address": null,
        "balance": 0,
        "created": c.created,
        "currency": null,
        "default_source": null,
        "delinquent": false,
        "description": null,
        "discount": null,
        "email": c.email,
        "invoice_prefix": c.id.trim_start_matches("cus_").chars().take(8).collect::<String>().to_uppercase(),
        "invoice_settings": {
            "custom_fields": null,
            "default_payment_method": null,
            "footer": null,
            "rendering_options": null
        },
        "livemode": false,
        "metadata": c.metadata,
        "name": c.name,
        "next_invoice_sequence": 1,
        "phone": null,
        "preferred_locales": [],
        "shipping": null,
        "tax_exempt": "none",
        "test_clock": null
    })
}

fn recurring(p: &Price) -> Value {
    match &p.kind {
        PriceKind::OneTime => Value::Null,
        PriceKind::Recurring | PriceKind::Metered { .. } => json!({
            "interval": "month",
            "interval_count": 1,
            "meter": p.meter,
            "trial_period_days": null,
            "usage_type": if p.is_metered() { "metered" } else { "licensed" }
        }),
    }
}

/// A price.
pub fn price(p: &Price) -> Value {
    json!({
        "id": p.id,
        "object": "price",
        "active": true,
        "billing_scheme": "per_unit",
        "created": p.created,
        "currency": p.currency,
        "custom_unit_amount": null,
        "livemode": false,
        "lookup_key": null,
        "metadata": {},
        "nickname": null,
        "product": p.product,
        "recurring": recurring(p),
        "tax_behavior": "unspecified",
        "tiers_mode": null,
        "transform_quantity": null,
        "type": if p.is_recurring() { "recurring" } else { "one_time" },
        "unit_amount": p.unit_amount,
        "unit_amount_decimal": p.unit_amount.to_string()
    })
}

/// The legacy plan view of a recurring price (`subscription_item.plan`).
pub fn plan(p: &Price) -> Value {
    json!({
        "id": p.id,
        "object": "plan",
        "active": true,
        "amount": p.unit_amount,
        "amount_decimal": p.unit_amount.to_string(),
        "billing_scheme": "per_unit",
        "created": p.created,
        "currency": p.currency,
        "interval": "month",
        "interval_count": 1,
        "livemode": false,
        "metadata": {},
        "meter": p.meter,
        "nickname": null,
        "product": p.product,
        "tiers_mode": null,
        "transform_usage": null,
        "trial_period_days": null,
        "usage_type": if p.is_metered() { "metered" } else { "licensed" }
    })
}

/// A Checkout Session.
pub fn checkout_session(s: &CheckoutSession) -> Value {
    let head = json!({
        "id": s.id,
        "object": "checkout.session",
        "after_expiration": null,
        "allow_promotion_codes": null,
        "amount_subtotal": s.amount_total,
        "amount_total": s.amount_total,
        "automatic_tax": { "enabled": false, "liability": null, "provider": null, "status": null },
        "billing_address_collection": null,
        "cancel_url": s.cancel_url,
        "client_reference_id": s.client_reference_id,
        "client_secret": null,
        "consent": null,
        "consent_collection": null,
        "created": s.created,
        "currency": s.currency,
        "custom_fields": [],
    });
    let rest = json!({
        "custom_text": {
            "after_submit": null,
            "shipping_address": null,
            "submit": null,
            "terms_of_service_acceptance": null
        },
        "customer": s.customer,
        "customer_creation": null,
        "customer_details": s.customer_email.as_ref().map(|e| json!({
            "address": null, "email": e, "name": null, "phone": null,
            "tax_exempt": "none", "tax_ids": []
        })),
        "customer_email": s.customer_email,
        "expires_at": s.expires_at,
        "invoice": null,
        "livemode": false,
        "locale": null,
        "metadata": s.metadata,
        "mode": s.mode,
        "payment_intent": s.payment_intent,
        "payment_link": null,
        "payment_method_collection": "always",
        "payment_method_types": ["card"],
        "payment_status": s.payment_status,
        "recovered_from": null,
        "shipping_address_collection": null,
        "shipping_cost": null,
        "shipping_options": [],
        "status": s.status,
        "submit_type": null,
        "subscription": s.subscription,
        "success_url": s.success_url,
        "total_details": { "amount_discount": 0, "amount_shipping": 0, "amount_tax": 0 },
        "ui_mode": "hosted",
        "url": if s.status == "open" { Some(&s.url) } else { None }
    });
    merge(head, rest)
}

/// `a` with `b`'s fields added (both objects).
fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

/// A subscription, with its items' full `price` and `plan`.
pub fn subscription(state: &State, s: &Subscription) -> Value {
    let items: Vec<Value> = s
        .items
        .iter()
        .filter_map(|item| {
            let p = state.price(&item.price)?;
            Some(json!({
                "id": item.id,
                "object": "subscription_item",
                "billing_thresholds": null,
                "created": s.created,
                "current_period_end": s.current_period_end,
                "current_period_start": s.current_period_start,
                "discounts": [],
                "metadata": {},
                "plan": plan(p),
                "price": price(p),
                "quantity": item.quantity,
                "subscription": s.id,
                "tax_rates": []
            }))
        })
        .collect();
    let ended = s.status == "canceled";
    json!({
        "id": s.id,
        "object": "subscription",
        "application": null,
        "automatic_tax": { "disabled_reason": null, "enabled": false, "liability": null },
        "billing_cycle_anchor": s.created,
        "billing_mode": { "type": "classic" },
        "billing_schedules": [],
        "cancel_at": null,
        "cancel_at_period_end": false,
        "canceled_at": s.canceled_at,
        "cancellation_details": { "comment": null, "feedback": null,
            "reason": if ended { Some("cancellation_requested") } else { None } },
        "collection_method": "charge_automatically",
        "created": s.created,
        "currency": s.currency,
        "customer": s.customer,
        "days_until_due": null,
        "default_payment_method": null,
        "description": null,
        "discounts": [],
        "ended_at": if ended { s.canceled_at } else { None },
        "invoice_settings": { "account_tax_ids": null, "issuer": { "type": "self" } },
        "items": list(&format!("/v1/subscription_items?subscription={}", s.id), items, false),
        "latest_invoice": s.latest_invoice,
        "livemode": false,
        "metadata": s.metadata,
        "pending_setup_intent": null,
        "pending_update": null,
        "schedule": null,
        "start_date": s.created,
        "status": s.status,
        "test_clock": null,
        "trial_end": null,
        "trial_start": null
    })
}

/// An invoice of a subscription (new `parent.subscription_details` shape, plus the legacy
/// `subscription` field async-stripe still has).
pub fn invoice(state: &State, i: &Invoice) -> Value {
    let lines: Vec<Value> = i
        .lines
        .iter()
        .enumerate()
        .map(|(n, (price, quantity, amount))| {
            let product = state
                .price(price)
                .map(|p| p.product.clone())
                .unwrap_or_default();
            json!({
                "id": format!("il_{}_{n}", i.id.trim_start_matches("in_")),
                "object": "line_item",
                "amount": amount,
                "currency": i.currency,
                "description": null,
                "discount_amounts": [],
                "discountable": true,
                "discounts": [],
                "invoice": i.id,
                "livemode": false,
                "metadata": {},
                "period": { "end": i.period_end, "start": i.period_start },
                "pricing": { "price_details": { "price": price, "product": product },
                             "type": "price_details", "unit_amount_decimal": null },
                "quantity": quantity,
                "subtotal": amount,
                "taxes": []
            })
        })
        .collect();
    let paid = i.status == "paid";
    json!({
        "id": i.id,
        "object": "invoice",
        "account_country": "US",
        "account_name": "Fake Stripe",
        "amount_due": i.amount_due,
        "amount_overpaid": 0,
        "amount_paid": i.amount_paid,
        "amount_remaining": i.amount_due - i.amount_paid,
        "amount_shipping": 0,
        "attempt_count": i.attempt_count,
        "attempted": i.attempt_count > 0,
        "auto_advance": !paid,
        "automatic_tax": { "enabled": false, "liability": null, "provider": null, "status": null },
        "billing_reason": "subscription_create",
        "collection_method": "charge_automatically",
        "created": i.created,
        "currency": i.currency,
        "customer": i.customer,
        "default_tax_rates": [],
        "discounts": [],
        "hosted_invoice_url": i.hosted_invoice_url,
        "issuer": { "type": "self" },
        "lines": list(&format!("/v1/invoices/{}/lines", i.id), lines, false),
        "livemode": false,
        "metadata": {},
        "parent": {
            "quote_details": null,
            "subscription_details": { "metadata": {}, "subscription": i.subscription },
            "type": "subscription_details"
        },
        "payment_settings": {
            "default_mandate": null, "payment_method_options": null, "payment_method_types": null
        },
        "period_end": i.period_end,
        "period_start": i.period_start,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "starting_balance": 0,
        "status": i.status,
        "status_transitions": {
            "finalized_at": i.created,
            "marked_uncollectible_at": null,
            "paid_at": if paid { Some(i.created) } else { None },
            "voided_at": null
        },
        "subscription": i.subscription,
        "subtotal": i.amount_due,
        "total": i.amount_due
    })
}

/// A succeeded refund of a payment intent.
pub fn refund(
    id: &str,
    payment_intent: &str,
    amount: i64,
    currency: &str,
    customer: Option<&str>,
) -> Value {
    json!({
        "id": id,
        "object": "refund",
        "amount": amount,
        "balance_transaction": null,
        "charge": null,
        "created": now(),
        "currency": currency,
        "customer": customer,
        "customer_account": null,
        "description": null,
        "destination_details": null,
        "failure_balance_transaction": null,
        "failure_reason": null,
        "instructions_email": null,
        "metadata": {},
        "next_action": null,
        "payment_intent": payment_intent,
        "payment_method": null,
        "pending_reason": null,
        "presentment_details": null,
        "reason": "requested_by_customer",
        "receipt_number": null,
        "source_transfer_reversal": null,
        "status": "succeeded",
        "transfer_reversal": null
    })
}

/// A dispute (chargeback) of a payment intent's charge, with no evidence submitted.
pub fn dispute(id: &str, payment_intent: &str, amount: i64, currency: &str, status: &str) -> Value {
    let no_evidence = json!({
        "mastercard_compliance": null,
        "visa_compelling_evidence_3": null,
        "visa_compliance": null
    });
    let mut evidence = serde_json::Map::new();
    for field in [
        "access_activity_log",
        "billing_address",
        "cancellation_policy",
        "cancellation_policy_disclosure",
        "cancellation_rebuttal",
        "customer_communication",
        "customer_email_address",
        "customer_name",
        "customer_purchase_ip",
        "customer_signature",
        "duplicate_charge_documentation",
        "duplicate_charge_explanation",
        "duplicate_charge_id",
        "product_description",
        "receipt",
        "refund_policy",
        "refund_policy_disclosure",
        "refund_refusal_explanation",
        "service_date",
        "service_documentation",
        "shipping_address",
        "shipping_carrier",
        "shipping_date",
        "shipping_documentation",
        "shipping_tracking_number",
        "uncategorized_file",
        "uncategorized_text",
    ] {
        evidence.insert(field.to_owned(), Value::Null);
    }
    evidence.insert("enhanced_evidence".to_owned(), no_evidence.clone());
    json!({
        "id": id,
        "object": "dispute",
        "amount": amount,
        "balance_transactions": [],
        "charge": format!("ch_{}", payment_intent.trim_start_matches("pi_")),
        "created": now(),
        "currency": currency,
        "enhanced_eligibility_types": [],
        "evidence": evidence,
        "evidence_details": {
            "due_by": now() + 7 * 86_400,
            "enhanced_eligibility": no_evidence,
            "has_evidence": false,
            "past_due": false,
            "submission_count": 0
        },
        "is_charge_refundable": false,
        "livemode": false,
        "metadata": {},
        "network_reason_code": null,
        "payment_intent": payment_intent,
        "payment_method_details": null,
        "reason": "fraudulent",
        "status": status
    })
}

/// A billing meter event.
pub fn meter_event(e: &MeterEvent) -> Value {
    json!({
        "object": "billing.meter_event",
        "created": e.created,
        "event_name": e.event_name,
        "identifier": e.identifier,
        "livemode": false,
        "payload": e.payload,
        "timestamp": e.timestamp
    })
}

/// An event envelope in Stripe's shape.
pub fn event(
    id: &str,
    event_type: &str,
    object: Value,
    previous_attributes: Option<Value>,
) -> Value {
    let mut data = json!({ "object": object });
    if let Some(prev) = previous_attributes {
        data["previous_attributes"] = prev;
    }
    json!({
        "id": id,
        "object": "event",
        "api_version": API_VERSION,
        "created": now(),
        "data": data,
        "livemode": false,
        "pending_webhooks": 1,
        "request": { "id": null, "idempotency_key": null },
        "type": event_type
    })
}
