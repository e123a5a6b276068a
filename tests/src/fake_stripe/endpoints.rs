//! The `/v1` endpoint handlers: parameter validation like Stripe's, state changes, and the
//! JSON each endpoint answers (or the Stripe error it raises).

use std::collections::BTreeMap;

use axum::http::Method;
use serde_json::{Value, json};

use super::form::FormExt;
use super::objects::{self, error};
use super::state::{
    CheckoutSession, Customer, Event, LineItem, MeterEvent, PortalSession, State, now,
};

/// What an endpoint answers: status, JSON body, events to deliver afterwards.
pub(crate) struct Reply {
    pub status: u16,
    pub body: Value,
    pub events: Vec<Event>,
}

impl Reply {
    fn ok(body: Value) -> Self {
        Self {
            status: 200,
            body,
            events: Vec::new(),
        }
    }
}

type Handled = Result<Reply, Reply>;

fn invalid(message: impl Into<String>, code: Option<&str>, param: Option<&str>) -> Reply {
    Reply {
        status: 400,
        body: error("invalid_request_error", &message.into(), code, param),
        events: Vec::new(),
    }
}

fn missing(kind: &str, id: &str, param: Option<&str>) -> Reply {
    let status = if param.is_some() { 400 } else { 404 };
    Reply {
        status,
        body: error(
            "invalid_request_error",
            &format!("No such {kind}: '{id}'"),
            Some("resource_missing"),
            Some(param.unwrap_or("id")),
        ),
        events: Vec::new(),
    }
}

fn required<'a>(form: &'a Value, key: &str) -> Result<&'a str, Reply> {
    form.str_at(key).ok_or_else(|| {
        invalid(
            format!("Missing required param: {key}."),
            Some("parameter_missing"),
            Some(key),
        )
    })
}

fn int_param(v: &Value, key: &str) -> Result<Option<i64>, Reply> {
    match v.str_at(key) {
        None => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| {
            invalid(
                format!("Invalid integer: {s}"),
                Some("parameter_invalid_integer"),
                Some(key),
            )
        }),
    }
}

/// Stripe's metadata limits: 50 keys, keys ≤ 40 chars, values ≤ 500 chars.
fn metadata_param(form: &Value, key: &str) -> Result<BTreeMap<String, String>, Reply> {
    let map = form.string_map(key);
    if map.len() > 50 {
        return Err(invalid(
            "Metadata can have at most 50 keys.",
            None,
            Some(key),
        ));
    }
    for (k, v) in &map {
        if k.chars().count() > 40 {
            return Err(invalid(
                format!("Metadata keys can have up to 40 characters; `{k}` is too long."),
                None,
                Some(&format!("{key}[{k}]")),
            ));
        }
        if v.chars().count() > 500 {
            return Err(invalid(
                format!("Metadata values can have up to 500 characters, but `{k}` has more."),
                None,
                Some(&format!("{key}[{k}]")),
            ));
        }
    }
    Ok(map)
}

/// One page of `items` (newest first, each with its id) after `starting_after` / before
/// `ending_before`, `limit` (1..=100, default 10) long.
fn paginate(items: Vec<(String, Value)>, query: &Value, url: &str) -> Handled {
    let limit = int_param(query, "limit")?.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(invalid(
            format!("Invalid limit: must be between 1 and 100, got {limit}."),
            Some("parameter_invalid_integer"),
            Some("limit"),
        ));
    }
    let limit = limit as usize;
    let position = |id: &str, param: &str| {
        items
            .iter()
            .position(|(i, _)| i == id)
            .ok_or_else(|| missing("object", id, Some(param)))
    };
    let (page, has_more): (Vec<Value>, bool) = if let Some(after) = query.str_at("starting_after") {
        let start = position(after, "starting_after")? + 1;
        let rest = &items[start..];
        (
            rest.iter().take(limit).map(|(_, v)| v.clone()).collect(),
            rest.len() > limit,
        )
    } else if let Some(before) = query.str_at("ending_before") {
        let end = position(before, "ending_before")?;
        let from = end.saturating_sub(limit);
        (
            items[from..end].iter().map(|(_, v)| v.clone()).collect(),
            from > 0,
        )
    } else {
        (
            items.iter().take(limit).map(|(_, v)| v.clone()).collect(),
            items.len() > limit,
        )
    };
    Ok(Reply::ok(objects::list(url, page, has_more)))
}

fn create_customer(state: &mut State, form: &Value) -> Handled {
    let metadata = metadata_param(form, "metadata")?;
    let customer = Customer {
        id: state.next_id("cus"),
        email: form.str_at("email").map(str::to_owned),
        name: form.str_at("name").map(str::to_owned),
        metadata,
        created: now(),
        deleted: false,
    };
    let body = objects::customer(&customer);
    state.customers.push(customer);
    Ok(Reply::ok(body))
}

fn list_customers(state: &State, query: &Value) -> Handled {
    let email = query.str_at("email");
    let items = state
        .customers
        .iter()
        .rev()
        .filter(|c| !c.deleted)
        .filter(|c| email.is_none_or(|e| c.email.as_deref() == Some(e)))
        .map(|c| (c.id.clone(), objects::customer(c)))
        .collect();
    paginate(items, query, "/v1/customers")
}

fn create_session(state: &mut State, base: &str, form: &Value) -> Handled {
    let mode = required(form, "mode")?;
    if mode != "payment" && mode != "subscription" {
        return Err(invalid(
            format!("The fake supports mode `payment` and `subscription`, not `{mode}`."),
            None,
            Some("mode"),
        ));
    }
    let success_url = required(form, "success_url")?;
    for key in ["success_url", "cancel_url"] {
        if let Some(url) = form.str_at(key)
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(invalid(
                format!("Not a valid URL: {url}"),
                Some("url_invalid"),
                Some(key),
            ));
        }
    }
    let customer = form.str_at("customer");
    let customer_email = form.str_at("customer_email");
    if customer.is_some() && customer_email.is_some() {
        return Err(invalid(
            "You may only specify one of these parameters: customer, customer_email.",
            Some("parameters_exclusive"),
            Some("customer"),
        ));
    }
    if let Some(c) = customer
        && state.customer(c).is_none()
    {
        return Err(missing("customer", c, Some("customer")));
    }
    if mode == "subscription" && customer.is_none() {
        // Real Stripe would create a customer at completion; the fake insists on one so that
        // subscriptions always belong to a known customer.
        return Err(invalid(
            "The fake requires `customer` for subscription mode.",
            Some("parameter_missing"),
            Some("customer"),
        ));
    }
    if let Some(r) = form.str_at("client_reference_id")
        && r.chars().count() > 200
    {
        return Err(invalid(
            "client_reference_id can have at most 200 characters.",
            None,
            Some("client_reference_id"),
        ));
    }
    let raw_items = form
        .get("line_items")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            invalid(
                format!("`line_items` is required in `{mode}` mode."),
                Some("parameter_missing"),
                Some("line_items"),
            )
        })?;
    let mut line_items = Vec::new();
    let mut amount_total = 0;
    let mut currency: Option<String> = None;
    let mut any_recurring = false;
    for (i, item) in raw_items.iter().enumerate() {
        let param = format!("line_items[{i}][price]");
        let price_id = item.str_at("price").ok_or_else(|| {
            invalid(
                "You must specify either `price` or `price_data` for each line item.",
                Some("parameter_missing"),
                Some(&param),
            )
        })?;
        let price = state
            .price(price_id)
            .ok_or_else(|| missing("price", price_id, Some(&param)))?;
        let qparam = format!("line_items[{i}][quantity]");
        let quantity = int_param(item, "quantity").map_err(|mut r| {
            r.body["error"]["param"] = json!(qparam);
            r
        })?;
        if price.is_metered() {
            if quantity.is_some() {
                return Err(invalid(
                    "Quantity should not be defined when `recurring.usage_type=metered`.",
                    None,
                    Some(&qparam),
                ));
            }
        } else {
            match quantity {
                None => {
                    return Err(invalid(
                        "Quantity is required. Add `quantity` to `line_items`.",
                        Some("parameter_missing"),
                        Some(&qparam),
                    ));
                }
                Some(q) if q < 1 => {
                    return Err(invalid("Quantity must be at least 1.", None, Some(&qparam)));
                }
                Some(q) => amount_total += price.unit_amount * q,
            }
        }
        if mode == "payment" && price.is_recurring() {
            return Err(invalid(
                "You specified `payment` mode but passed a recurring price. Either switch to \
                 `subscription` mode or use only one-time prices.",
                None,
                Some(&param),
            ));
        }
        any_recurring |= price.is_recurring();
        match &currency {
            Some(c) if c != &price.currency => {
                return Err(invalid(
                    "All line items must use the same currency.",
                    None,
                    Some(&param),
                ));
            }
            _ => currency = Some(price.currency.clone()),
        }
        line_items.push(LineItem {
            price: price_id.to_owned(),
            quantity: quantity.map(|q| q as u64),
        });
    }
    if mode == "subscription" && !any_recurring {
        return Err(invalid(
            "You must provide at least one recurring price in `subscription` mode when using \
             prices.",
            None,
            Some("line_items"),
        ));
    }
    let t = now();
    let expires_at = match int_param(form, "expires_at")? {
        None => t + 24 * 3600,
        // Stripe: 30 minutes to 24 hours after creation (the fake allows 60 s of clock slack).
        Some(e) if e < t + 30 * 60 - 60 || e > t + 24 * 3600 + 60 => {
            return Err(invalid(
                "The `expires_at` timestamp must be between 30 minutes and 24 hours from \
                 Checkout Session creation.",
                None,
                Some("expires_at"),
            ));
        }
        Some(e) => e,
    };
    let metadata = metadata_param(form, "metadata")?;
    let subscription_metadata = match form.get("subscription_data") {
        Some(sd) => {
            if mode != "subscription" {
                return Err(invalid(
                    "You can not pass `subscription_data` in `payment` mode.",
                    None,
                    Some("subscription_data"),
                ));
            }
            metadata_param(sd, "metadata")?
        }
        None => BTreeMap::new(),
    };
    let id = state.next_id("cs_test");
    let session = CheckoutSession {
        url: format!("{base}checkout/pay/{id}"),
        id,
        mode: mode.to_owned(),
        status: "open".into(),
        payment_status: "unpaid".into(),
        customer: customer.map(str::to_owned),
        customer_email: customer_email.map(str::to_owned),
        client_reference_id: form.str_at("client_reference_id").map(str::to_owned),
        metadata,
        subscription_metadata,
        line_items,
        success_url: Some(success_url.to_owned()),
        cancel_url: form.str_at("cancel_url").map(str::to_owned),
        amount_total,
        currency: currency.unwrap_or_else(|| "usd".into()),
        expires_at,
        created: t,
        subscription: None,
        payment_intent: None,
        awaiting_payment: false,
    };
    let body = objects::checkout_session(&session);
    state.sessions.push(session);
    Ok(Reply::ok(body))
}

/// The `customer` filter of a list: Stripe refuses an unknown (or deleted) customer.
fn customer_filter<'a>(state: &State, query: &'a Value) -> Result<Option<&'a str>, Reply> {
    match query.str_at("customer") {
        Some(c) if state.customer(c).is_none() => Err(missing("customer", c, Some("customer"))),
        c => Ok(c),
    }
}

/// `true` when `expand[]` names `field`.
fn expands(query: &Value, field: &str) -> bool {
    query
        .get("expand")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(field)))
}

/// A subscription's JSON, with `latest_invoice` expanded into the invoice when asked.
fn subscription_json(state: &State, s: &super::state::Subscription, expand_invoice: bool) -> Value {
    let mut body = objects::subscription(state, s);
    if expand_invoice
        && let Some(inv) = s
            .latest_invoice
            .as_deref()
            .and_then(|id| state.invoices.iter().find(|i| i.id == id))
    {
        body["latest_invoice"] = objects::invoice(state, inv);
    }
    body
}

fn list_sessions(state: &State, query: &Value) -> Handled {
    let customer = customer_filter(state, query)?;
    let status = query.str_at("status");
    let subscription = query.str_at("subscription");
    let items = state
        .sessions
        .iter()
        .rev()
        .filter(|s| customer.is_none_or(|c| s.customer.as_deref() == Some(c)))
        .filter(|s| status.is_none_or(|st| s.status == st))
        .filter(|s| subscription.is_none_or(|sub| s.subscription.as_deref() == Some(sub)))
        .map(|s| (s.id.clone(), objects::checkout_session(s)))
        .collect();
    paginate(items, query, "/v1/checkout/sessions")
}

fn list_subscriptions(state: &State, query: &Value) -> Handled {
    let customer = customer_filter(state, query)?;
    let expand_invoice = expands(query, "data.latest_invoice");
    let price = query.str_at("price");
    let status = query.str_at("status");
    let items = state
        .subscriptions
        .iter()
        .rev()
        .filter(|s| customer.is_none_or(|c| s.customer == c))
        .filter(|s| price.is_none_or(|p| s.items.iter().any(|i| i.price == p)))
        .filter(|s| match status {
            None => s.status != "canceled",
            Some("all") => true,
            Some(st) => s.status == st,
        })
        .map(|s| (s.id.clone(), subscription_json(state, s, expand_invoice)))
        .collect();
    paginate(items, query, "/v1/subscriptions")
}

fn create_meter_event(state: &mut State, form: &Value) -> Handled {
    let event_name = required(form, "event_name")?;
    let Some(meter) = state.active_meter(event_name).map(|m| m.id.clone()) else {
        return Err(invalid(
            format!("No active meter was found matching event_name `{event_name}`."),
            Some("resource_missing"),
            Some("event_name"),
        ));
    };
    let payload = form.string_map("payload");
    let customer = payload.get("stripe_customer_id").cloned().ok_or_else(|| {
        invalid(
            "Missing required param: payload[stripe_customer_id].",
            Some("parameter_missing"),
            Some("payload[stripe_customer_id]"),
        )
    })?;
    let value = payload.get("value").cloned().ok_or_else(|| {
        invalid(
            "Missing required param: payload[value].",
            Some("parameter_missing"),
            Some("payload[value]"),
        )
    })?;
    if state.customer(&customer).is_none() {
        return Err(missing(
            "customer",
            &customer,
            Some("payload[stripe_customer_id]"),
        ));
    }
    if value.parse::<f64>().is_err() {
        return Err(invalid(
            format!("Invalid value `{value}`: meter event values must be numeric strings."),
            None,
            Some("payload[value]"),
        ));
    }
    let t = now();
    let timestamp = int_param(form, "timestamp")?.unwrap_or(t);
    if timestamp < t - 35 * 24 * 3600 || timestamp > t + 5 * 60 {
        return Err(invalid(
            "Timestamp must be within the past 35 calendar days and no more than 5 minutes in \
             the future.",
            None,
            Some("timestamp"),
        ));
    }
    let identifier = match form.str_at("identifier") {
        Some(i) if i.is_empty() || i.chars().count() > 100 => {
            return Err(invalid(
                "identifier must be 1 to 100 characters.",
                None,
                Some("identifier"),
            ));
        }
        Some(i) => i.to_owned(),
        None => state.next_id("mev"),
    };
    if state
        .meter_events
        .iter()
        .any(|e| e.identifier == identifier)
    {
        return Err(invalid(
            format!("An event already exists with identifier `{identifier}`."),
            Some("resource_already_exists"),
            Some("identifier"),
        ));
    }
    let event = MeterEvent {
        event_name: event_name.to_owned(),
        meter,
        identifier,
        payload,
        customer,
        value,
        timestamp,
        created: t,
    };
    let body = objects::meter_event(&event);
    state.meter_events.push(event);
    Ok(Reply::ok(body))
}

fn create_portal_session(state: &mut State, base: &str, form: &Value) -> Handled {
    let customer = required(form, "customer")?;
    if state.customer(customer).is_none() {
        return Err(missing("customer", customer, Some("customer")));
    }
    let return_url = form.str_at("return_url");
    if let Some(url) = return_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(invalid(
            format!("Not a valid URL: {url}"),
            Some("url_invalid"),
            Some("return_url"),
        ));
    }
    let id = state.next_id("bps");
    let session = PortalSession {
        url: format!("{base}billing_portal/{id}"),
        id,
        customer: customer.to_owned(),
        return_url: return_url.map(str::to_owned),
        configuration: PORTAL_CONFIGURATION.to_owned(),
        created: now(),
    };
    let body = objects::portal_session(&session);
    state.portal_sessions.push(session);
    Ok(Reply::ok(body))
}

/// The account's default Billing Portal configuration.
const PORTAL_CONFIGURATION: &str = "bpc_fake0000000001";

/// Dispatches one authenticated `/v1` request.
pub(crate) fn dispatch(
    state: &mut State,
    base: &str,
    method: &Method,
    path: &str,
    query: &Value,
    form: &Value,
) -> Handled {
    let segs: Vec<&str> = path
        .trim_start_matches("/v1/")
        .trim_end_matches('/')
        .split('/')
        .collect();
    match (method.as_str(), segs.as_slice()) {
        ("POST", ["customers"]) => create_customer(state, form),
        ("GET", ["customers"]) => list_customers(state, query),
        ("GET", ["customers", id]) => match state.customers.iter().find(|c| c.id == *id) {
            Some(c) if c.deleted => Ok(Reply::ok(objects::deleted_customer(id))),
            Some(c) => Ok(Reply::ok(objects::customer(c))),
            None => Err(missing("customer", id, None)),
        },
        ("DELETE", ["customers", id]) => {
            let events = state
                .delete_customer(id)
                .map_err(|_| missing("customer", id, None))?;
            Ok(Reply {
                status: 200,
                body: objects::deleted_customer(id),
                events,
            })
        }
        ("GET", ["prices", id]) => state
            .price(id)
            .map(|p| Reply::ok(objects::price(p)))
            .ok_or_else(|| missing("price", id, None)),
        ("GET", ["billing", "meters", id]) => state
            .meters
            .iter()
            .find(|m| m.id == *id)
            .map(|m| Reply::ok(objects::meter(m)))
            .ok_or_else(|| missing("billing.meter", id, None)),
        ("POST", ["billing_portal", "sessions"]) => create_portal_session(state, base, form),
        ("GET", ["invoices", id]) => state
            .invoices
            .iter()
            .find(|i| i.id == *id)
            .map(|i| Reply::ok(objects::invoice(state, i)))
            .ok_or_else(|| missing("invoice", id, None)),
        ("POST", ["checkout", "sessions"]) => create_session(state, base, form),
        ("GET", ["checkout", "sessions"]) => list_sessions(state, query),
        ("GET", ["checkout", "sessions", id]) => state
            .sessions
            .iter()
            .find(|s| s.id == *id)
            .map(|s| Reply::ok(objects::checkout_session(s)))
            .ok_or_else(|| missing("checkout.session", id, None)),
        ("POST", ["checkout", "sessions", id, "expire"]) => {
            if !state.sessions.iter().any(|s| s.id == *id) {
                return Err(missing("checkout.session", id, None));
            }
            let events = state.expire_checkout(id).map_err(|_| {
                invalid(
                    "Only Checkout Sessions with a status of `open` can be expired.",
                    None,
                    None,
                )
            })?;
            let s = state.sessions.iter().find(|s| s.id == *id).expect("exists");
            Ok(Reply {
                status: 200,
                body: objects::checkout_session(s),
                events,
            })
        }
        ("GET", ["subscriptions"]) => list_subscriptions(state, query),
        ("GET", ["subscriptions", id]) => state
            .subscriptions
            .iter()
            .find(|s| s.id == *id)
            .map(|s| {
                Reply::ok(subscription_json(
                    state,
                    s,
                    expands(query, "latest_invoice"),
                ))
            })
            .ok_or_else(|| missing("subscription", id, None)),
        ("POST", ["billing", "meter_events"]) => create_meter_event(state, form),
        _ => Err(Reply {
            status: 404,
            body: error(
                "invalid_request_error",
                &format!("Unrecognized request URL ({method}: {path})."),
                None,
                None,
            ),
            events: Vec::new(),
        }),
    }
}
