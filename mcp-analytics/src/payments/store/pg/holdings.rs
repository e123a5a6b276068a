//! What users hold on PostgreSQL: `payment_entitlements`, `payment_subscriptions` and the
//! credit reservations of running calls (`payment_reservations`, leased per replica).

use deadpool_postgres::GenericClient;
use deadpool_postgres::Transaction;
use tokio_postgres::{Row, types::ToSql};

use crate::payments::{
    domain::{PriceSet, SubscriptionStatus},
    store::{SubscriptionRow, entitlements::EntitlementRow},
};

/// What the user holds under `key`, with credits counted as this replica may use them: those
/// reserved by other replicas' running calls (live leases) are left out.
pub(crate) async fn entitlement(
    tx: &Transaction<'_>,
    user_id: &str,
    key: &str,
    replica: &str,
    now_ms: i64,
) -> Result<Option<EntitlementRow>, tokio_postgres::Error> {
    let row = tx
        .query_opt(
            "SELECT e.credits - (SELECT count(*) FROM payment_reservations r WHERE r.user_id = e.user_id AND r.price_key = e.price_key AND r.replica <> $3 AND r.lease_until_ms > $4),
                    e.unlimited, e.checked_ms
             FROM payment_entitlements e WHERE e.user_id = $1 AND e.price_key = $2",
            &[&user_id, &key, &replica, &now_ms],
        )
        .await?;
    Ok(row.map(|row| EntitlementRow {
        credits: row.get(0),
        unlimited: row.get(1),
        checked_ms: row.get(2),
    }))
}

/// Adds `credits` (or unlimited use) to what the user holds.
pub(crate) async fn add(
    tx: &Transaction<'_>,
    user_id: &str,
    key: &str,
    credits: i64,
    unlimited: bool,
    now_ms: i64,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "INSERT INTO payment_entitlements (user_id, price_key, credits, unlimited, checked_ms) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (user_id, price_key) DO UPDATE SET credits = payment_entitlements.credits + excluded.credits, unlimited = payment_entitlements.unlimited OR excluded.unlimited",
        &[&user_id, &key, &credits, &unlimited, &now_ms],
    )
    .await?;
    Ok(())
}

/// The credits held (reserved ones included), locking the row until the transaction ends.
async fn lock_credits(
    tx: &Transaction<'_>,
    user_id: &str,
    key: &str,
) -> Result<Option<i64>, tokio_postgres::Error> {
    Ok(tx
        .query_opt(
            "SELECT credits FROM payment_entitlements WHERE user_id = $1 AND price_key = $2 FOR UPDATE",
            &[&user_id, &key],
        )
        .await?
        .map(|row| row.get(0)))
}

/// Takes up to `credits` away; returns how many were taken.
pub(crate) async fn take_credits(
    tx: &Transaction<'_>,
    user_id: &str,
    key: &str,
    credits: i64,
) -> Result<i64, tokio_postgres::Error> {
    let held = lock_credits(tx, user_id, key).await?.unwrap_or(0);
    let taken = held.min(credits).max(0);
    tx.execute(
        "UPDATE payment_entitlements SET credits = credits - $3 WHERE user_id = $1 AND price_key = $2",
        &[&user_id, &key, &taken],
    )
    .await?;
    Ok(taken)
}

pub(crate) async fn set_unlimited(
    tx: &Transaction<'_>,
    user_id: &str,
    key: &str,
    unlimited: bool,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "UPDATE payment_entitlements SET unlimited = $3 WHERE user_id = $1 AND price_key = $2",
        &[&user_id, &key, &unlimited],
    )
    .await?;
    Ok(())
}

/// Uses one credit; `false` when none was left (a conditional update).
pub(crate) async fn consume(
    tx: &Transaction<'_>,
    user_id: &str,
    key: &str,
) -> Result<bool, tokio_postgres::Error> {
    let changed = tx
        .execute(
            "UPDATE payment_entitlements SET credits = credits - 1 WHERE user_id = $1 AND price_key = $2 AND credits > 0",
            &[&user_id, &key],
        )
        .await?;
    Ok(changed == 1)
}

/// Notes that the provider was asked at `now_ms`.
pub(crate) async fn touch(
    tx: &Transaction<'_>,
    user_id: &str,
    key: &str,
    now_ms: i64,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "INSERT INTO payment_entitlements (user_id, price_key, checked_ms) VALUES ($1, $2, $3)
         ON CONFLICT (user_id, price_key) DO UPDATE SET checked_ms = excluded.checked_ms",
        &[&user_id, &key, &now_ms],
    )
    .await?;
    Ok(())
}

/// Reserves one of the user's credits for a call running on `replica`, until `lease_until_ms`
/// unless renewed: one is free when the credits held exceed the live reservations. The
/// entitlement row stays locked until the transaction ends, so reservers of one user and key
/// take turns and never share a credit; leases run out are deleted (their credit is free).
pub(crate) async fn reserve(
    tx: &Transaction<'_>,
    user_id: &str,
    key: &str,
    replica: &str,
    now_ms: i64,
    lease_until_ms: i64,
) -> Result<bool, tokio_postgres::Error> {
    let Some(credits) = lock_credits(tx, user_id, key).await? else {
        return Ok(false);
    };
    if credits <= 0 {
        return Ok(false);
    }
    // A statement of its own after the lock: it sees every reservation committed before.
    let reserved = tx
        .execute(
            "WITH expired AS (
                 DELETE FROM payment_reservations WHERE user_id = $1 AND price_key = $2 AND lease_until_ms <= $4
             ), live AS (
                 SELECT count(*) AS n FROM payment_reservations WHERE user_id = $1 AND price_key = $2 AND lease_until_ms > $4
             )
             INSERT INTO payment_reservations (reservation_id, user_id, price_key, replica, lease_until_ms)
             SELECT gen_random_uuid()::text, $1, $2, $3, $5 FROM live WHERE live.n < $6",
            &[&user_id, &key, &replica, &now_ms, &lease_until_ms, &credits],
        )
        .await?;
    Ok(reserved == 1)
}

/// Ends one of `replica`'s reservations of the user's credits for `key` (they are
/// interchangeable); `false` when it had none (its lease ran out).
///
/// Concurrent calls of the user skip each other's rows (`SKIP LOCKED`), but a row locked by
/// the replica's lease renewal must not be skipped for good: when no unlocked row is left, it
/// waits for the locked ones and tries again.
pub(crate) async fn end_reservation(
    client: &impl GenericClient,
    user_id: &str,
    key: &str,
    replica: &str,
) -> Result<bool, tokio_postgres::Error> {
    const END: &str = "DELETE FROM payment_reservations WHERE reservation_id = (
        SELECT reservation_id FROM payment_reservations WHERE user_id = $1 AND price_key = $2 AND replica = $3
        ORDER BY lease_until_ms LIMIT 1 FOR UPDATE SKIP LOCKED)";
    const END_WAITING: &str = "DELETE FROM payment_reservations WHERE reservation_id = (
        SELECT reservation_id FROM payment_reservations WHERE user_id = $1 AND price_key = $2 AND replica = $3
        ORDER BY lease_until_ms LIMIT 1 FOR UPDATE)";
    const ANY_LEFT: &str = "SELECT EXISTS (SELECT 1 FROM payment_reservations WHERE user_id = $1 AND price_key = $2 AND replica = $3)";
    let params: [&(dyn ToSql + Sync); 3] = [&user_id, &key, &replica];
    for _ in 0..8 {
        if client.execute(END, &params).await? == 1 {
            return Ok(true);
        }
        if !client.query_one(ANY_LEFT, &params).await?.get::<_, bool>(0) {
            return Ok(false);
        }
        // Every row left is locked: wait for one (a row deleted meanwhile by another call of
        // the user makes this find none, and the loop looks again).
        if client.execute(END_WAITING, &params).await? == 1 {
            return Ok(true);
        }
    }
    Ok(false)
}

fn subscription(row: &Row) -> SubscriptionRow {
    SubscriptionRow {
        id: row.get(0),
        user_id: row.get(1),
        tool: row.get(2),
        status: SubscriptionStatus::from(row.get::<_, &str>(3)),
        prices: PriceSet::decode(row.get::<_, Option<&str>>(4).unwrap_or("")),
        updated_ms: row.get(5),
    }
}

pub(crate) async fn subscription_get(
    tx: &Transaction<'_>,
    id: &str,
) -> Result<Option<SubscriptionRow>, tokio_postgres::Error> {
    Ok(tx
        .query_opt(
            "SELECT subscription_id, user_id, tool, status, prices, updated_ms FROM payment_subscriptions WHERE subscription_id = $1",
            &[&id],
        )
        .await?
        .as_ref()
        .map(subscription))
}

/// Every subscription of the user.
pub(crate) async fn subscriptions_of(
    tx: &Transaction<'_>,
    user_id: &str,
) -> Result<Vec<SubscriptionRow>, tokio_postgres::Error> {
    Ok(tx
        .query(
            "SELECT subscription_id, user_id, tool, status, prices, updated_ms FROM payment_subscriptions WHERE user_id = $1",
            &[&user_id],
        )
        .await?
        .iter()
        .map(subscription)
        .collect())
}

/// Records the subscription's state (the user, tool and prices seen first are kept when a later
/// event lacks them).
pub(crate) async fn subscription_upsert(
    tx: &Transaction<'_>,
    sub: &SubscriptionRow,
    now_ms: i64,
) -> Result<(), tokio_postgres::Error> {
    let prices = Some(sub.prices.encode()).filter(|prices| !prices.is_empty());
    tx.execute(
        "INSERT INTO payment_subscriptions (subscription_id, user_id, tool, status, updated_ms, prices) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (subscription_id) DO UPDATE SET user_id = coalesce(excluded.user_id, payment_subscriptions.user_id), tool = coalesce(excluded.tool, payment_subscriptions.tool), status = excluded.status, updated_ms = excluded.updated_ms, prices = coalesce(excluded.prices, payment_subscriptions.prices)",
        &[&sub.id, &sub.user_id, &sub.tool, &sub.status.as_str(), &now_ms, &prices],
    )
    .await?;
    Ok(())
}
