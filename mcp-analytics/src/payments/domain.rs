//! The payment domain's typed values: the states of checkouts, payments and subscriptions as
//! Stripe names them (each with an arm for a name a later API version adds), what a purchase
//! grants (one type, one storage codec), and which prices an entitlement covers.

use std::{collections::BTreeSet, fmt};

/// Defines a status enum over Stripe's names, with `Other` for names it does not know yet.
macro_rules! stripe_status {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub(crate) enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A name this version does not know (a later Stripe API version).
            Other(String),
        }

        impl $name {
            /// Stripe's name.
            pub(crate) fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)*
                    Self::Other(other) => other,
                }
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                match text {
                    $($text => Self::$variant,)*
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

stripe_status! {
    /// Where a Checkout Session stands.
    CheckoutStatus {
        /// Can still be paid.
        Open = "open",
        /// The buyer finished; see [`PaymentStatus`] for whether money arrived.
        Complete = "complete",
        /// Can no longer be paid.
        Expired = "expired",
    }
}

stripe_status! {
    /// Whether a Checkout Session's money arrived.
    PaymentStatus {
        /// Paid.
        Paid = "paid",
        /// Not paid (yet: a delayed method such as SEPA or ACH is still clearing).
        Unpaid = "unpaid",
        /// Nothing to pay (a subscription trial).
        NoPaymentRequired = "no_payment_required",
        /// A delayed payment failed (recorded by mcp-analytics; Stripe keeps `unpaid`).
        Failed = "failed",
    }
}

stripe_status! {
    /// A subscription's status.
    SubscriptionStatus {
        /// Paid up.
        Active = "active",
        /// In a trial.
        Trialing = "trialing",
        /// A renewal payment failed; Stripe is retrying.
        PastDue = "past_due",
        /// Retries ran out; the subscription stays until cancelled.
        Unpaid = "unpaid",
        /// The first payment needs an action.
        Incomplete = "incomplete",
        /// The first payment never happened.
        IncompleteExpired = "incomplete_expired",
        /// A trial ended without a payment method.
        Paused = "paused",
        /// Ended.
        Canceled = "canceled",
    }
}

impl SubscriptionStatus {
    /// Whether the subscription grants use: active or trialing.
    pub(crate) fn grants_access(&self) -> bool {
        matches!(self, Self::Active | Self::Trialing)
    }

    /// Whether the subscriber must fix their payment method (not buy again).
    pub(crate) fn needs_payment_fix(&self) -> bool {
        matches!(
            self,
            Self::PastDue | Self::Unpaid | Self::Incomplete | Self::Paused
        )
    }

    /// Whether the subscription can never change again.
    fn is_final(&self) -> bool {
        matches!(self, Self::Canceled | Self::IncompleteExpired)
    }

    /// Whether moving from `self` (stored) to `new` would go back in the subscription's life:
    /// Stripe delivers events in any order, and a late one must not undo a later state. An
    /// ended subscription never changes again, and one past `incomplete` never returns to it.
    pub(crate) fn is_stale_move_to(&self, new: &SubscriptionStatus) -> bool {
        self != new && (self.is_final() || *new == Self::Incomplete)
    }
}

/// What one paid checkout grants; stored as one text (`"12"`, `"unlimited"`, `"subscription"`)
/// in `payment_checkouts.granted` and in the checkout's `mcp_grant` metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Granted {
    /// This many successful calls.
    Credits(i64),
    /// Unlimited use.
    Unlimited,
    /// Access while the subscription is active.
    Subscription,
}

impl Granted {
    /// The stored text.
    pub(crate) fn encode(self) -> String {
        match self {
            Granted::Credits(credits) => credits.to_string(),
            Granted::Unlimited => "unlimited".into(),
            Granted::Subscription => "subscription".into(),
        }
    }

    /// Reads the stored text; `None` for anything else.
    pub(crate) fn decode(text: &str) -> Option<Self> {
        match text {
            "unlimited" => Some(Granted::Unlimited),
            "subscription" => Some(Granted::Subscription),
            credits => credits
                .parse::<i64>()
                .ok()
                .filter(|credits| *credits > 0)
                .map(Granted::Credits),
        }
    }
}

/// The set of price ids a paid tool sells, whatever their order or quantities.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct PriceSet(BTreeSet<String>);

impl PriceSet {
    /// Every price, sorted.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// Whether every price of `other` is in this set.
    pub(crate) fn covers(&self, other: &PriceSet) -> bool {
        other.0.is_subset(&self.0)
    }

    /// The stored text: the ids, sorted, joined by `+` (a single price is its own id).
    pub(crate) fn encode(&self) -> String {
        self.iter().collect::<Vec<_>>().join("+")
    }

    /// Reads [`PriceSet::encode`]'s text.
    pub(crate) fn decode(text: &str) -> Self {
        text.split('+').filter(|id| !id.is_empty()).collect()
    }
}

impl<S: Into<String>> FromIterator<S> for PriceSet {
    fn from_iter<I: IntoIterator<Item = S>>(ids: I) -> Self {
        PriceSet(ids.into_iter().map(Into::into).collect())
    }
}

/// What a one-time purchase is held under: the whole set of the tool's prices, so credits
/// bought for `[price_a]` never run a tool that also charges `[price_hd]`. Tools selling the
/// same set share what users bought, and renaming a tool keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct EntitlementKey(String);

impl EntitlementKey {
    /// The key of a set of prices.
    pub(crate) fn of(prices: &PriceSet) -> Self {
        EntitlementKey(prices.encode())
    }

    /// A stored key.
    pub(crate) fn from_stored(text: impl Into<String>) -> Self {
        EntitlementKey(text.into())
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EntitlementKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_stripe_names_and_keep_unknown_ones() {
        assert_eq!(
            SubscriptionStatus::from("past_due"),
            SubscriptionStatus::PastDue
        );
        assert_eq!(
            SubscriptionStatus::from("frozen"),
            SubscriptionStatus::Other("frozen".into())
        );
        assert_eq!(SubscriptionStatus::from("frozen").as_str(), "frozen");
        assert!(!SubscriptionStatus::from("frozen").grants_access());
        assert_eq!(CheckoutStatus::from("complete"), CheckoutStatus::Complete);
        assert_eq!(PaymentStatus::Unpaid.to_string(), "unpaid");
    }

    #[test]
    fn late_subscription_events_do_not_undo_later_states() {
        use SubscriptionStatus as S;
        for (stored, new) in [
            (S::Incomplete, S::Active),
            (S::Active, S::PastDue),
            (S::PastDue, S::Active),
            (S::Active, S::Canceled),
            (S::Canceled, S::Canceled),
        ] {
            assert!(!stored.is_stale_move_to(&new), "{stored} → {new}");
        }
        for (stored, new) in [
            (S::Canceled, S::Active),
            (S::Canceled, S::PastDue),
            (S::IncompleteExpired, S::Active),
            (S::Active, S::Incomplete),
            (S::Trialing, S::Incomplete),
        ] {
            assert!(stored.is_stale_move_to(&new), "{stored} → {new}");
        }
    }

    #[test]
    fn a_grant_round_trips_through_its_stored_text() {
        for granted in [
            Granted::Credits(12),
            Granted::Unlimited,
            Granted::Subscription,
        ] {
            assert_eq!(Granted::decode(&granted.encode()), Some(granted));
        }
        assert_eq!(Granted::decode("0"), None);
        assert_eq!(Granted::decode("lots"), None);
    }

    #[test]
    fn a_price_set_ignores_order_and_covers_its_subsets() {
        let basic: PriceSet = ["price_basic"].into_iter().collect();
        let both: PriceSet = ["price_premium", "price_basic"].into_iter().collect();
        assert_eq!(both.encode(), "price_basic+price_premium");
        assert_eq!(PriceSet::decode(&both.encode()), both);
        assert!(both.covers(&basic));
        assert!(!basic.covers(&both));
        assert_eq!(EntitlementKey::of(&basic).as_str(), "price_basic");
        assert_ne!(EntitlementKey::of(&basic), EntitlementKey::of(&both));
    }
}
