//! The ledger's in-memory view of what users hold: the gate decides from it without touching
//! the store or the provider. A credit is reserved here before a call runs and is either used
//! (then taken from the store) or released when the call ends; loading from the store keeps
//! the reservations of calls in flight, so one stored credit never runs two calls.

use std::collections::HashMap;

use super::store::{Holding, ReservationId};
use crate::payments::domain::{EntitlementKey, SubscriptionStatus};

/// How long "not entitled" is believed before asking the store and provider again.
const NEGATIVE_TTL_MS: i64 = 60_000;

/// What one user holds for one key, as the gate sees it.
#[derive(Clone, Debug, Default)]
struct Held {
    /// Credits left to reserve: the store's minus those reserved, so below zero while running
    /// calls hold credits taken back meanwhile (a call that then fails gives back nothing).
    credits: i64,
    /// Credits reserved by calls still running (still counted in the store).
    reserved: i64,
    unlimited: bool,
    subscription: Option<(String, SubscriptionStatus)>,
    checked_ms: i64,
}

/// What the caller may do right now, from memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// The call may run.
    Granted(Access),
    /// Recently found not entitled.
    Refused,
    /// Nothing (fresh) known: ask the store, then the provider.
    Unknown,
    /// The store could not reserve a credit (unreachable): the call must not run.
    Unavailable,
}

/// Why a call may run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// One reserved credit, used on success and released otherwise.
    Credit(ReservationId),
    /// A one-time unlock.
    Unlimited,
    /// An active or trialing subscription.
    Subscription,
}

/// user → key → holdings, and how many times holdings were forgotten (a load that read the
/// store before a forgetting must not install what it read).
#[derive(Default)]
pub(super) struct Cache {
    users: HashMap<String, HashMap<EntitlementKey, Held>>,
    generation: u64,
}

impl Cache {
    /// Changes each time holdings are forgotten.
    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    /// Decides from memory, reserving a credit when that is what grants the call.
    pub(super) fn reserve(
        &mut self,
        user: &str,
        key: &EntitlementKey,
        subscription_ttl_ms: i64,
        now_ms: i64,
    ) -> Decision {
        let Some(held) = self.users.get_mut(user).and_then(|keys| keys.get_mut(key)) else {
            return Decision::Unknown;
        };
        if held.unlimited {
            return Decision::Granted(Access::Unlimited);
        }
        if held.credits > 0 {
            held.credits -= 1;
            held.reserved += 1;
            return Decision::Granted(Access::Credit(ReservationId::new()));
        }
        let age = now_ms - held.checked_ms;
        let subscribed = held
            .subscription
            .as_ref()
            .is_some_and(|(_, status)| status.grants_access());
        if subscribed && age < subscription_ttl_ms {
            return Decision::Granted(Access::Subscription);
        }
        if !subscribed && age < NEGATIVE_TTL_MS {
            return Decision::Refused;
        }
        Decision::Unknown
    }

    /// Takes what the store holds, minus the credits reserved by running calls (the store
    /// counts them until those calls end).
    pub(super) fn load(&mut self, user: &str, key: &EntitlementKey, holding: Holding) {
        let keys = self.users.entry(user.to_owned()).or_default();
        let reserved = keys.get(key).map_or(0, |held| held.reserved);
        keys.insert(
            key.clone(),
            Held {
                credits: holding.credits - reserved,
                reserved,
                unlimited: holding.unlimited,
                subscription: holding.subscription,
                checked_ms: holding.checked_ms,
            },
        );
    }

    /// Forgets what the user holds (keeping the reservations of running calls): the next call
    /// asks the store. For when a change reached the store but could not be loaded.
    pub(super) fn invalidate_user(&mut self, user: &str) {
        self.generation += 1;
        for held in self
            .users
            .get_mut(user)
            .into_iter()
            .flat_map(|keys| keys.values_mut())
        {
            *held = Held {
                credits: -held.reserved,
                reserved: held.reserved,
                checked_ms: i64::MIN / 2,
                ..Held::default()
            };
        }
    }

    /// Forgets what every user holds (keeping the reservations of running calls).
    #[cfg(feature = "postgres")]
    pub(super) fn invalidate_all(&mut self) {
        let users: Vec<String> = self.users.keys().cloned().collect();
        for user in users {
            self.invalidate_user(&user);
        }
        self.generation += 1;
    }

    /// The store had no free credit for a credit reserved here (another replica took the
    /// last): the reservation is undone and memory holds none.
    pub(super) fn none_left(&mut self, user: &str, key: &EntitlementKey) {
        if let Some(held) = self.users.get_mut(user).and_then(|keys| keys.get_mut(key)) {
            held.reserved = (held.reserved - 1).max(0);
            held.credits = (held.credits + 1).min(0);
        }
    }

    /// The keys of the user held in memory.
    pub(super) fn keys_of(&self, user: &str) -> Vec<EntitlementKey> {
        self.users
            .get(user)
            .map(|keys| keys.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The user's subscription for the key whose payment needs fixing, if that is what they
    /// have.
    pub(super) fn subscription(
        &self,
        user: &str,
        key: &EntitlementKey,
    ) -> Option<(String, SubscriptionStatus)> {
        self.users.get(user)?.get(key)?.subscription.clone()
    }

    /// A reserved credit was used (and taken from the store).
    pub(super) fn used(&mut self, user: &str, key: &EntitlementKey) {
        if let Some(held) = self.users.get_mut(user).and_then(|keys| keys.get_mut(key)) {
            held.reserved = (held.reserved - 1).max(0);
        }
    }

    /// A reserved credit goes back: its call failed or never finished.
    pub(super) fn release(&mut self, user: &str, key: &EntitlementKey) {
        if let Some(held) = self.users.get_mut(user).and_then(|keys| keys.get_mut(key)) {
            held.reserved = (held.reserved - 1).max(0);
            held.credits += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> EntitlementKey {
        EntitlementKey::from_stored("price_1")
    }

    fn is_credit(decision: &Decision) -> bool {
        matches!(decision, Decision::Granted(Access::Credit(_)))
    }

    fn stored(credits: i64) -> Holding {
        Holding {
            credits,
            ..Holding::default()
        }
    }

    #[test]
    fn credits_are_reserved_and_released() {
        let mut cache = Cache::default();
        assert_eq!(cache.reserve("u", &key(), 1000, 0), Decision::Unknown);
        cache.load("u", &key(), stored(1));
        assert!(is_credit(&cache.reserve("u", &key(), 1000, 10)));
        assert_eq!(
            cache.reserve("u", &key(), 1000, 10),
            Decision::Refused,
            "the only credit is reserved"
        );
        cache.release("u", &key());
        assert!(is_credit(&cache.reserve("u", &key(), 1000, 10)));
        assert_eq!(
            cache.reserve("u", &key(), 1000, NEGATIVE_TTL_MS + 1),
            Decision::Unknown,
            "negative answers expire"
        );
    }

    #[test]
    fn a_load_keeps_credits_reserved_by_running_calls() {
        let mut cache = Cache::default();
        cache.load("u", &key(), stored(1));
        assert!(is_credit(&cache.reserve("u", &key(), 1000, 0)));
        // The store still counts the reserved credit while its call runs.
        cache.load("u", &key(), stored(1));
        assert_eq!(
            cache.reserve("u", &key(), 1000, 0),
            Decision::Refused,
            "one stored credit runs one call"
        );
        cache.used("u", &key());
        cache.load("u", &key(), stored(2));
        assert!(is_credit(&cache.reserve("u", &key(), 1000, 0)));
    }

    #[test]
    fn a_failed_call_whose_credit_was_taken_back_meanwhile_gives_nothing_back() {
        let mut cache = Cache::default();
        cache.load("u", &key(), stored(1));
        assert!(is_credit(&cache.reserve("u", &key(), 1000, 0)));
        // Refunded while the call ran: the store holds no credit any more.
        cache.load("u", &key(), stored(0));
        cache.release("u", &key());
        assert_eq!(cache.reserve("u", &key(), 1000, 0), Decision::Refused);
    }

    #[test]
    fn subscriptions_are_trusted_for_their_ttl_and_only_when_they_grant_access() {
        let mut cache = Cache::default();
        let with = |status| Holding {
            subscription: Some(("sub_1".into(), status)),
            ..Holding::default()
        };
        cache.load("u", &key(), with(SubscriptionStatus::Active));
        assert_eq!(
            cache.reserve("u", &key(), 1000, 999),
            Decision::Granted(Access::Subscription)
        );
        assert_eq!(cache.reserve("u", &key(), 1000, 1000), Decision::Unknown);
        cache.load("u", &key(), with(SubscriptionStatus::PastDue));
        assert_eq!(cache.reserve("u", &key(), 1000, 10), Decision::Refused);
        cache.load(
            "u",
            &key(),
            Holding {
                unlimited: true,
                ..Holding::default()
            },
        );
        assert_eq!(
            cache.reserve("u", &key(), 1000, i64::MAX / 2),
            Decision::Granted(Access::Unlimited)
        );
        cache.load("u", &key(), Holding::default());
        assert_eq!(
            cache.reserve("u", &key(), 1000, 10),
            Decision::Refused,
            "an unlimited unlock taken back is gone at once"
        );
    }
}
