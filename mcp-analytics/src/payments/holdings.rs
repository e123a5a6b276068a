//! What each user holds for each price, in memory: the view of `payment_entitlements` the gate
//! decides from without touching the store or the provider. A credit is reserved here before a
//! call runs and either used (then taken from the store) or given back when it ends; reloading
//! from the store keeps reservations in flight, so one stored credit never runs two calls.

use std::{collections::HashMap, sync::Mutex};

use super::store::EntitlementRow;

/// How long "not entitled" is believed before asking the provider again.
const NEGATIVE_TTL_MS: i64 = 60_000;

/// What one user holds for one price, as the gate sees it.
#[derive(Clone, Debug, Default)]
pub(super) struct Held {
    /// Credits left to reserve.
    pub credits: i64,
    /// Credits reserved by calls still running (still counted in the store).
    pub reserved: i64,
    pub unlimited: bool,
    pub subscription_active: bool,
    pub checked_ms: i64,
}

impl From<&EntitlementRow> for Held {
    fn from(row: &EntitlementRow) -> Self {
        Held {
            credits: row.credits,
            reserved: 0,
            unlimited: row.unlimited,
            subscription_active: row
                .subscription_status
                .as_deref()
                .is_some_and(super::provider::grants_access),
            checked_ms: row.checked_ms,
        }
    }
}

/// The in-memory view of `payment_entitlements`: user → price key → holdings.
#[derive(Default)]
pub(crate) struct Holdings(Mutex<HashMap<String, HashMap<String, Held>>>);

/// What the caller may do right now, from memory.
pub(super) enum Decision {
    /// The call may run.
    Granted(Access),
    /// Recently found not entitled.
    Refused,
    /// Nothing (fresh) known: ask the store, then the provider.
    Unknown,
}

/// Why a call may run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Access {
    /// One reserved credit, used on success and returned otherwise.
    Credit,
    /// A one-time unlock.
    Unlimited,
    /// An active or trialing subscription.
    Subscription,
}

impl Holdings {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, HashMap<String, Held>>) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Decides from memory, reserving a credit when that is what grants the call.
    pub(super) fn admit(
        &self,
        user: &str,
        key: &str,
        subscription_ttl_ms: i64,
        now: i64,
    ) -> Decision {
        self.with(|users| {
            let Some(held) = users.get_mut(user).and_then(|keys| keys.get_mut(key)) else {
                return Decision::Unknown;
            };
            if held.unlimited {
                return Decision::Granted(Access::Unlimited);
            }
            if held.credits > 0 {
                held.credits -= 1;
                held.reserved += 1;
                return Decision::Granted(Access::Credit);
            }
            let age = now - held.checked_ms;
            if held.subscription_active && age < subscription_ttl_ms {
                return Decision::Granted(Access::Subscription);
            }
            if !held.subscription_active && age < NEGATIVE_TTL_MS {
                return Decision::Refused;
            }
            Decision::Unknown
        })
    }

    /// Takes what the store says the user holds, minus the credits reserved by running calls
    /// (the store counts them until those calls end).
    pub(super) fn set(&self, user: &str, key: &str, mut held: Held) {
        self.with(|users| {
            let keys = users.entry(user.to_owned()).or_default();
            if let Some(current) = keys.get(key) {
                held.reserved = current.reserved;
                held.credits = (held.credits - current.reserved).max(0);
            }
            keys.insert(key.to_owned(), held);
        });
    }

    /// Marks the user's holdings for `key` out of date (a purchase or a subscription change was
    /// recorded): the next call that is not granted by credits reloads them from the store.
    pub(crate) fn invalidate(&self, user: &str, key: &str) {
        self.with(|users| {
            if let Some(held) = users.get_mut(user).and_then(|keys| keys.get_mut(key)) {
                held.checked_ms = i64::MIN / 2;
                held.subscription_active = false;
                held.credits = 0;
            }
        });
    }

    /// A reserved credit was used (and taken from the store).
    pub(super) fn used(&self, user: &str, key: &str) {
        self.with(|users| {
            if let Some(held) = users.get_mut(user).and_then(|keys| keys.get_mut(key)) {
                held.reserved = (held.reserved - 1).max(0);
            }
        });
    }

    /// A reserved credit goes back: its call failed or never finished.
    pub(super) fn refund(&self, user: &str, key: &str) {
        self.with(|users| {
            if let Some(held) = users.get_mut(user).and_then(|keys| keys.get_mut(key)) {
                held.reserved = (held.reserved - 1).max(0);
                held.credits += 1;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holdings_reserve_and_refund_credits() {
        let held = Holdings::default();
        assert!(matches!(
            held.admit("u", "price_1", 1000, 0),
            Decision::Unknown
        ));
        held.set(
            "u",
            "price_1",
            Held {
                credits: 1,
                checked_ms: 0,
                ..Held::default()
            },
        );
        assert!(matches!(
            held.admit("u", "price_1", 1000, 10),
            Decision::Granted(Access::Credit)
        ));
        assert!(
            matches!(held.admit("u", "price_1", 1000, 10), Decision::Refused),
            "the only credit is reserved"
        );
        held.refund("u", "price_1");
        assert!(matches!(
            held.admit("u", "price_1", 1000, 10),
            Decision::Granted(Access::Credit)
        ));
        assert!(
            matches!(
                held.admit("u", "price_1", 1000, NEGATIVE_TTL_MS + 1),
                Decision::Unknown
            ),
            "negative answers expire"
        );
    }

    #[test]
    fn a_reload_keeps_credits_reserved_by_running_calls() {
        let held = Holdings::default();
        let stored = |credits| Held {
            credits,
            checked_ms: 0,
            ..Held::default()
        };
        held.set("u", "p", stored(1));
        assert!(matches!(
            held.admit("u", "p", 1000, 0),
            Decision::Granted(Access::Credit)
        ));
        // The store still counts the reserved credit while its call runs.
        held.set("u", "p", stored(1));
        assert!(
            matches!(held.admit("u", "p", 1000, 0), Decision::Refused),
            "one stored credit runs one call"
        );
        held.used("u", "p");
        held.set("u", "p", stored(0));
        assert!(matches!(held.admit("u", "p", 1000, 0), Decision::Refused));
        // A purchase: the store has 2 more, a reload after invalidation sees them.
        held.invalidate("u", "p");
        assert!(matches!(held.admit("u", "p", 1000, 0), Decision::Unknown));
        held.set("u", "p", stored(2));
        assert!(matches!(
            held.admit("u", "p", 1000, 0),
            Decision::Granted(Access::Credit)
        ));
    }

    #[test]
    fn subscriptions_are_trusted_for_their_ttl() {
        let held = Holdings::default();
        held.set(
            "u",
            "p",
            Held {
                subscription_active: true,
                checked_ms: 0,
                ..Held::default()
            },
        );
        assert!(matches!(
            held.admit("u", "p", 1000, 999),
            Decision::Granted(Access::Subscription)
        ));
        assert!(matches!(
            held.admit("u", "p", 1000, 1000),
            Decision::Unknown
        ));
        held.set(
            "u",
            "p",
            Held {
                unlimited: true,
                ..Held::default()
            },
        );
        assert!(matches!(
            held.admit("u", "p", 1000, i64::MAX / 2),
            Decision::Granted(Access::Unlimited)
        ));
    }
}
