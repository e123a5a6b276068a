//! What users hold on PostgreSQL: `payment_entitlements`, `payment_subscriptions`, the credit
//! reservations of running calls (`payment_reservations`, leased per replica) and the credits
//! used lately by reservation (`payment_credits_used`). Leases are set and compared by the
//! database's clock, never a replica's.

use deadpool_postgres::GenericClient;
use deadpool_postgres::Transaction;
use tokio_postgres::Row;

/// The database's clock, in Unix ms (one clock for every replica's leases).
macro_rules! now_ms {
    () => {
        "(EXTRACT(EPOCH FROM now()) * 1000)::BIGINT"
    };
}

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
) -> Result<Option<EntitlementRow>, tokio_postgres::Error> {
    let row = tx
        .query_opt(
            concat!(
                "SELECT e.credits - (SELECT count(*) FROM payment_reservations r WHERE r.user_id = e.user_id AND r.price_key = e.price_key AND r.replica <> $3 AND r.lease_until_ms > ",
                now_ms!(),
                "), e.unlimited, e.checked_ms
                 FROM payment_entitlements e WHERE e.user_id = $1 AND e.price_key = $2"
            ),
            &[&user_id, &key, &replica],
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

/// Reserves one of the user's credits for a call running on `replica`, as `reservation`, for
/// `lease_ms` unless renewed: one is free when the credits held exceed the live reservations.
/// The entitlement row stays locked until the transaction ends, so reservers of one user and
/// key take turns and never share a credit. (Leases run out are left to [`delete_expired`]:
/// deleting them here too would lock rows in another order than it does.)
pub(crate) async fn reserve(
    tx: &Transaction<'_>,
    user_id: &str,
    key: &str,
    replica: &str,
    reservation: &str,
    lease_ms: i64,
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
            concat!(
                "INSERT INTO payment_reservations (reservation_id, user_id, price_key, replica, lease_until_ms)
                 SELECT $3, $1, $2, $4, ",
                now_ms!(),
                " + $5 FROM (SELECT count(*) AS n FROM payment_reservations WHERE user_id = $1 AND price_key = $2 AND lease_until_ms > ",
                now_ms!(),
                ") live WHERE live.n < $6"
            ),
            &[&user_id, &key, &reservation, &replica, &lease_ms, &credits],
        )
        .await?;
    Ok(reserved == 1)
}

/// Ends `reservation`; `false` when it was gone (its lease ran out).
pub(crate) async fn end_reservation(
    client: &impl GenericClient,
    reservation: &str,
) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .execute(
            "DELETE FROM payment_reservations WHERE reservation_id = $1",
            &[&reservation],
        )
        .await?
        == 1)
}

/// Records that `reservation`'s credit is being used, for `keep_ms`; `false` when it was
/// already (a retry whose first attempt committed). A use of the same reservation still in
/// flight is waited for.
pub(crate) async fn first_use(
    tx: &Transaction<'_>,
    reservation: &str,
    keep_ms: i64,
) -> Result<bool, tokio_postgres::Error> {
    Ok(tx
        .execute(
            concat!(
                "INSERT INTO payment_credits_used (reservation_id, until_ms) VALUES ($1, ",
                now_ms!(),
                " + $2) ON CONFLICT (reservation_id) DO NOTHING"
            ),
            &[&reservation, &keep_ms],
        )
        .await?
        == 1)
}

/// Renews the leases of `replica`'s `reservations` for `lease_ms`.
pub(crate) async fn renew(
    client: &tokio_postgres::Client,
    replica: &str,
    reservations: &[String],
    lease_ms: i64,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            concat!(
                "UPDATE payment_reservations SET lease_until_ms = ",
                now_ms!(),
                " + $3 WHERE replica = $1 AND reservation_id = ANY($2)"
            ),
            &[&replica, &reservations, &lease_ms],
        )
        .await?;
    Ok(())
}

/// Deletes the reservations whose lease ran out (their credits are free again) and the
/// records of credits used that are kept no longer. Rows another transaction holds are left
/// for the next time, so replicas doing this at once never wait for each other.
pub(crate) async fn delete_expired(
    client: &tokio_postgres::Client,
) -> Result<(), tokio_postgres::Error> {
    client
        .batch_execute(concat!(
            "DELETE FROM payment_reservations WHERE reservation_id IN (
                 SELECT reservation_id FROM payment_reservations WHERE lease_until_ms <= ",
            now_ms!(),
            " FOR UPDATE SKIP LOCKED);
             DELETE FROM payment_credits_used WHERE reservation_id IN (
                 SELECT reservation_id FROM payment_credits_used WHERE until_ms <= ",
            now_ms!(),
            " FOR UPDATE SKIP LOCKED)"
        ))
        .await
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
