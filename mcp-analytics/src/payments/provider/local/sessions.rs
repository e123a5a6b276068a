//! The local test provider's sessions and subscriptions in PostgreSQL
//! (`payment_local_sessions`, one JSON document per row), shared by every replica.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::payments::{
    domain::{CheckoutStatus, PaymentStatus, PriceSet, SubscriptionStatus},
    pricing::CheckoutMode,
    provider::{CheckoutInfo, ProviderError, SubscriptionInfo},
    store::{StoreError, pg::PgPayments},
};

const CHECKOUT: &str = "checkout";
const SUBSCRIPTION: &str = "subscription";

fn unavailable(error: impl Into<StoreError>) -> ProviderError {
    ProviderError::Unavailable(error.into().to_string())
}

pub(super) async fn insert_checkout(
    pg: &PgPayments,
    session: &CheckoutInfo,
) -> Result<(), ProviderError> {
    let client = pg.pool.get().await.map_err(unavailable)?;
    client
        .execute(
            "INSERT INTO payment_local_sessions (session_id, session, created_ms, kind, customer) VALUES ($1, $2, $3, $4, $5)",
            &[
                &session.id,
                &checkout_json(session).to_string(),
                &crate::payments::now_ms(),
                &CHECKOUT,
                &session.customer,
            ],
        )
        .await
        .map_err(unavailable)?;
    Ok(())
}

pub(super) async fn checkout(
    pg: &PgPayments,
    id: &str,
) -> Result<Option<CheckoutInfo>, ProviderError> {
    let client = pg.pool.get().await.map_err(unavailable)?;
    let row = client
        .query_opt(
            "SELECT session FROM payment_local_sessions WHERE session_id = $1 AND kind = $2",
            &[&id, &CHECKOUT],
        )
        .await
        .map_err(unavailable)?;
    row.map(|row| parse_checkout(row.get::<_, &str>(0)))
        .transpose()
}

/// Changes a session with `change` under a row lock, storing the subscription it creates;
/// `None` for an unknown session.
pub(super) async fn change(
    pg: &PgPayments,
    id: &str,
    change: impl FnOnce(&mut CheckoutInfo) -> Result<Option<SubscriptionInfo>, ProviderError>,
) -> Result<Option<(CheckoutInfo, Option<SubscriptionInfo>)>, ProviderError> {
    let mut client = pg.pool.get().await.map_err(unavailable)?;
    let tx = client.transaction().await.map_err(unavailable)?;
    let Some(row) = tx
        .query_opt(
            "SELECT session FROM payment_local_sessions WHERE session_id = $1 AND kind = $2 FOR UPDATE",
            &[&id, &CHECKOUT],
        )
        .await
        .map_err(unavailable)?
    else {
        return Ok(None);
    };
    let mut session = parse_checkout(row.get::<_, &str>(0))?;
    let subscription = change(&mut session)?;
    tx.execute(
        "UPDATE payment_local_sessions SET session = $2 WHERE session_id = $1",
        &[&id, &checkout_json(&session).to_string()],
    )
    .await
    .map_err(unavailable)?;
    if let Some(sub) = &subscription {
        tx.execute(
            "INSERT INTO payment_local_sessions (session_id, session, created_ms, kind, customer) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (session_id) DO UPDATE SET session = excluded.session",
            &[
                &sub.id,
                &subscription_json(sub).to_string(),
                &crate::payments::now_ms(),
                &SUBSCRIPTION,
                &sub.customer,
            ],
        )
        .await
        .map_err(unavailable)?;
    }
    tx.commit().await.map_err(unavailable)?;
    Ok(Some((session, subscription)))
}

pub(super) async fn completed_checkouts(
    pg: &PgPayments,
    customer: &str,
) -> Result<Vec<CheckoutInfo>, ProviderError> {
    Ok(of_customer(pg, customer, CHECKOUT)
        .await?
        .into_iter()
        .map(|document| parse_checkout(&document))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|session| session.status == CheckoutStatus::Complete)
        .collect())
}

pub(super) async fn subscriptions(
    pg: &PgPayments,
    customer: &str,
) -> Result<Vec<SubscriptionInfo>, ProviderError> {
    of_customer(pg, customer, SUBSCRIPTION)
        .await?
        .into_iter()
        .map(parse_subscription)
        .collect()
}

async fn of_customer(
    pg: &PgPayments,
    customer: &str,
    kind: &str,
) -> Result<Vec<String>, ProviderError> {
    let client = pg.pool.get().await.map_err(unavailable)?;
    Ok(client
        .query(
            "SELECT session FROM payment_local_sessions WHERE customer = $1 AND kind = $2",
            &[&customer, &kind],
        )
        .await
        .map_err(unavailable)?
        .iter()
        .map(|row| row.get(0))
        .collect())
}

fn checkout_json(session: &CheckoutInfo) -> Value {
    json!({
        "id": session.id,
        "url": session.url,
        "status": session.status.as_str(),
        "payment_status": session.payment_status.as_str(),
        "mode": session.mode.as_str(),
        "customer": session.customer,
        "subscription": session.subscription,
        "client_reference_id": session.client_reference_id,
        "metadata": session.metadata,
        "amount_total": session.amount_total,
        "currency": session.currency,
        "expires_at": session.expires_at,
        "payment_intent": session.payment_intent,
    })
}

fn subscription_json(sub: &SubscriptionInfo) -> Value {
    json!({
        "id": sub.id,
        "status": sub.status.as_str(),
        "customer": sub.customer,
        "metadata": sub.metadata,
        "prices": sub.price_ids.encode(),
    })
}

fn malformed(what: &str) -> ProviderError {
    ProviderError::Unavailable(format!("a stored local test {what} cannot be read"))
}

fn text(value: &Value, key: &str) -> Option<String> {
    value[key].as_str().map(str::to_owned)
}

fn metadata(value: &Value) -> HashMap<String, String> {
    value["metadata"]
        .as_object()
        .map(|map| {
            map.iter()
                .filter_map(|(key, value)| Some((key.clone(), value.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

fn parse_checkout(document: &str) -> Result<CheckoutInfo, ProviderError> {
    let value: Value = serde_json::from_str(document).map_err(|_| malformed("checkout"))?;
    let mode = match value["mode"].as_str() {
        Some("subscription") => CheckoutMode::Subscription,
        Some("payment") => CheckoutMode::Payment,
        _ => return Err(malformed("checkout")),
    };
    Ok(CheckoutInfo {
        id: text(&value, "id").ok_or_else(|| malformed("checkout"))?,
        url: text(&value, "url"),
        status: CheckoutStatus::from(value["status"].as_str().unwrap_or("open")),
        payment_status: PaymentStatus::from(value["payment_status"].as_str().unwrap_or("unpaid")),
        mode,
        customer: text(&value, "customer"),
        subscription: text(&value, "subscription"),
        client_reference_id: text(&value, "client_reference_id"),
        metadata: metadata(&value),
        amount_total: value["amount_total"].as_i64(),
        currency: text(&value, "currency"),
        expires_at: value["expires_at"].as_i64().unwrap_or(0),
        payment_intent: text(&value, "payment_intent"),
    })
}

fn parse_subscription(document: String) -> Result<SubscriptionInfo, ProviderError> {
    let value: Value = serde_json::from_str(&document).map_err(|_| malformed("subscription"))?;
    Ok(SubscriptionInfo {
        id: text(&value, "id").ok_or_else(|| malformed("subscription"))?,
        status: SubscriptionStatus::from(value["status"].as_str().unwrap_or("active")),
        customer: text(&value, "customer").unwrap_or_default(),
        metadata: metadata(&value),
        price_ids: PriceSet::decode(value["prices"].as_str().unwrap_or("")),
    })
}
