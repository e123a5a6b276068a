//! [`StripeProvider`]: the requests payments makes, through async-stripe. Every POST carries an
//! idempotency key and is retried with the same key; list calls read every page.

use std::{collections::HashMap, time::Duration};

use stripe::{Client, ClientBuilder, IdempotencyKey, RequestStrategy, StripeError, StripeRequest};
use stripe_billing::{
    billing_meter::RetrieveBillingMeter,
    billing_meter_event::CreateBillingMeterEvent,
    billing_portal_session::CreateBillingPortalSession,
    subscription::{ListSubscription, RetrieveSubscription},
};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionSubscriptionData,
    ExpireCheckoutSession, ListCheckoutSession, RetrieveCheckoutSession,
};
use stripe_core::customer::CreateCustomer;
use stripe_product::price::RetrievePrice;
use stripe_shared::{
    ApiErrorsCode, CheckoutSession, CheckoutSessionMode, CheckoutSessionStatus, Subscription,
};

use super::{
    CheckoutInfo, CheckoutRequest, MeterEvent, PriceInfo, ProviderError, SubscriptionInfo,
    hashed_key,
};
use crate::payments::{
    PaymentsError,
    domain::{CheckoutStatus, PaymentStatus, SubscriptionStatus},
    pricing::CheckoutMode,
};

/// Attempts per POST (with the same idempotency key) before the provider counts as down.
const ATTEMPTS: u32 = 3;
/// How long one Billing Portal session is reused (its link lives about five minutes).
const PORTAL_WINDOW_SECS: i64 = 120;
/// Stripe's page size limit.
const PAGE: i64 = 100;

/// Stripe, reached through async-stripe.
pub(crate) struct StripeProvider {
    client: Client,
    base_url: Option<String>,
    live: bool,
    /// The longest one request may take.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    timeout: Duration,
}

impl StripeProvider {
    /// A client for `secret_key`, at `base_url` when given (tests, proxies), else Stripe.
    pub(crate) fn new(
        secret_key: &str,
        base_url: Option<&str>,
        timeout: Duration,
    ) -> Result<Self, PaymentsError> {
        let mut builder = ClientBuilder::new(secret_key)
            .app_info(
                "mcp-analytics",
                Some(env!("CARGO_PKG_VERSION").into()),
                None,
            )
            .timeout(timeout);
        if let Some(url) = base_url {
            builder = builder.url(url);
        }
        let client = builder
            .build()
            .map_err(|error| PaymentsError::StripeClient {
                cause: Box::new(error),
            })?;
        Ok(Self {
            client,
            base_url: base_url.map(str::to_owned),
            live: secret_key.starts_with("sk_live_") || secret_key.starts_with("rk_live_"),
            timeout,
        })
    }

    /// The longest one request may take.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    pub(crate) fn describe(&self) -> String {
        let mode = if self.live { "live" } else { "test" };
        match &self.base_url {
            Some(url) => format!("Stripe ({mode} mode) at {url}"),
            None => format!("Stripe ({mode} mode)"),
        }
    }

    pub(crate) async fn create_customer(
        &self,
        user_id: &str,
        email: Option<&str>,
        replacing: Option<&str>,
    ) -> Result<String, ProviderError> {
        let mut request = CreateCustomer::new().metadata(HashMap::from([(
            "mcp_user_id".to_owned(),
            user_id.to_owned(),
        )]));
        if let Some(email) = email {
            request = request.email(email);
        }
        // Concurrent first calls share a key (one customer); a customer replacing one Stripe
        // no longer knows gets a key of its own.
        let key = hashed_key("customer", &[user_id, replacing.unwrap_or_default()]);
        let customer = self
            .post(&key, |strategy| {
                request
                    .customize()
                    .request_strategy(strategy)
                    .send(&self.client)
            })
            .await?;
        Ok(customer.id.as_str().to_owned())
    }

    pub(crate) async fn create_checkout(
        &self,
        request: CheckoutRequest<'_>,
    ) -> Result<CheckoutInfo, ProviderError> {
        let pricing = request.pricing;
        let line_items: Vec<CreateCheckoutSessionLineItems> = pricing
            .line_items
            .iter()
            .zip(request.quantities)
            .map(|((price, _), quantity)| {
                let mut item = CreateCheckoutSessionLineItems::new();
                item.price = Some(price.clone());
                item.quantity = *quantity;
                item
            })
            .collect();
        let mode = match pricing.mode {
            CheckoutMode::Payment => CheckoutSessionMode::Payment,
            CheckoutMode::Subscription => CheckoutSessionMode::Subscription,
        };
        let mut create = CreateCheckoutSession::new()
            .mode(mode)
            .success_url(with_session_id(&pricing.success_url))
            .line_items(line_items)
            .customer(request.customer)
            .client_reference_id(request.user_id)
            .metadata(request.metadata.clone())
            .expires_at(request.expires_at);
        if let Some(cancel_url) = &pricing.cancel_url {
            create = create.cancel_url(cancel_url);
        }
        if pricing.mode == CheckoutMode::Subscription {
            let mut data = CreateCheckoutSessionSubscriptionData::new();
            data.metadata = Some(request.metadata.clone());
            create = create.subscription_data(data);
        }
        let session = self
            .post(&request.idempotency_key(), |strategy| {
                create
                    .customize()
                    .request_strategy(strategy)
                    .send(&self.client)
            })
            .await?;
        Ok(checkout_info(&session))
    }

    pub(crate) async fn retrieve_checkout(&self, id: &str) -> Result<CheckoutInfo, ProviderError> {
        let session = RetrieveCheckoutSession::new(id)
            .send(&self.client)
            .await
            .map_err(classify)?;
        Ok(checkout_info(&session))
    }

    pub(crate) async fn expire_checkout(&self, id: &str) -> Result<CheckoutInfo, ProviderError> {
        let session = ExpireCheckoutSession::new(id)
            .send(&self.client)
            .await
            .map_err(classify)?;
        Ok(checkout_info(&session))
    }

    pub(crate) async fn completed_checkouts(
        &self,
        customer: &str,
    ) -> Result<Vec<CheckoutInfo>, ProviderError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut list = ListCheckoutSession::new()
                .customer(customer)
                .status(CheckoutSessionStatus::Complete)
                .limit(PAGE);
            if let Some(after) = &after {
                list = list.starting_after(after);
            }
            let page = list.send(&self.client).await.map_err(classify)?;
            out.extend(page.data.iter().map(checkout_info));
            match (page.has_more, page.data.last()) {
                (true, Some(last)) => after = Some(last.id.as_str().to_owned()),
                _ => return Ok(out),
            }
        }
    }

    pub(crate) async fn subscriptions(
        &self,
        customer: &str,
        price: &str,
    ) -> Result<Vec<SubscriptionInfo>, ProviderError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut list = ListSubscription::new()
                .customer(customer)
                .price(price)
                .limit(PAGE);
            if let Some(after) = &after {
                list = list.starting_after(after);
            }
            let page = list.send(&self.client).await.map_err(classify)?;
            out.extend(page.data.iter().map(subscription_info));
            match (page.has_more, page.data.last()) {
                (true, Some(last)) => after = Some(last.id.as_str().to_owned()),
                _ => return Ok(out),
            }
        }
    }

    pub(crate) async fn send_meter_event(&self, event: &MeterEvent) -> Result<(), ProviderError> {
        let payload = HashMap::from([
            ("stripe_customer_id".to_owned(), event.customer_id.clone()),
            ("value".to_owned(), event.value.to_string()),
        ]);
        let request = CreateBillingMeterEvent::new(event.event_name.as_str(), payload)
            .identifier(event.identifier.as_str())
            .timestamp(event.timestamp);
        let key = hashed_key("meter", &[&event.identifier]);
        let result = IdempotencyKey::new(key.as_str())
            .map_err(|error| ProviderError::Rejected(error.to_string()));
        let result = match result {
            Ok(key) => request
                .customize()
                .request_strategy(RequestStrategy::Idempotent(key))
                .send(&self.client)
                .await
                .map(drop)
                .map_err(classify),
            Err(error) => Err(error),
        };
        match result {
            // Stripe already has an event with this identifier: it was delivered before.
            Err(ProviderError::Rejected(message)) if message.contains("identifier") => Ok(()),
            other => other,
        }
    }

    pub(crate) async fn payment_fix_url(
        &self,
        customer: &str,
        subscription: &str,
        return_url: &str,
    ) -> Result<Option<String>, ProviderError> {
        let portal = CreateBillingPortalSession::new()
            .customer(customer)
            .return_url(return_url);
        let key = portal_key(
            customer,
            subscription,
            return_url,
            super::super::now_ms() / 1000,
        );
        match self
            .post(&key, |strategy| {
                portal
                    .customize()
                    .request_strategy(strategy)
                    .send(&self.client)
            })
            .await
        {
            Ok(session) => return Ok(Some(session.url)),
            // No portal configured for the account: the open invoice's page instead.
            Err(ProviderError::Rejected(error)) => {
                tracing::warn!("no Billing Portal session ({error}); linking the open invoice");
            }
            Err(error) => return Err(error),
        }
        let subscription = RetrieveSubscription::new(subscription)
            .expand(["latest_invoice".to_owned()])
            .send(&self.client)
            .await
            .map_err(classify)?;
        Ok(subscription
            .latest_invoice
            .as_ref()
            .and_then(|invoice| invoice.as_object())
            .and_then(|invoice| invoice.hosted_invoice_url.clone()))
    }

    pub(crate) async fn price(&self, id: &str) -> Result<PriceInfo, ProviderError> {
        let price = RetrievePrice::new(id)
            .send(&self.client)
            .await
            .map_err(classify)?;
        let meter = price.recurring.as_ref().and_then(|r| r.meter.clone());
        let meter_event_name = match meter {
            Some(meter) => Some(
                RetrieveBillingMeter::new(meter.as_str())
                    .send(&self.client)
                    .await
                    .map_err(classify)?
                    .event_name,
            ),
            None => None,
        };
        Ok(PriceInfo {
            meter_event_name,
            active: price.active,
            recurring: price.recurring.is_some(),
            metered: price
                .recurring
                .as_ref()
                .is_some_and(|recurring| recurring.usage_type.as_str() == "metered"),
            unit_amount: price.unit_amount,
            currency: price.currency.to_string(),
        })
    }

    /// Sends a POST with `key`, retrying unavailability with the same key.
    async fn post<T, F, Fut>(&self, key: &str, send: F) -> Result<T, ProviderError>
    where
        F: Fn(RequestStrategy) -> Fut,
        Fut: std::future::Future<Output = Result<T, StripeError>>,
    {
        let key =
            IdempotencyKey::new(key).map_err(|error| ProviderError::Rejected(error.to_string()))?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match send(RequestStrategy::Idempotent(key.clone()))
                .await
                .map_err(classify)
            {
                Err(ProviderError::Unavailable(_)) if attempt < ATTEMPTS => {
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
                other => return other,
            }
        }
    }
}

/// `success_url` with `session_id={CHECKOUT_SESSION_ID}` added, unless it already has it.
fn with_session_id(url: &str) -> String {
    if url.contains("{CHECKOUT_SESSION_ID}") {
        return url.to_owned();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}session_id={{CHECKOUT_SESSION_ID}}")
}

fn classify(error: StripeError) -> ProviderError {
    match error {
        StripeError::Stripe(api, status) => {
            let message = api
                .message
                .clone()
                .unwrap_or_else(|| format!("HTTP {status}"));
            let message = format!("Stripe answered {status}: {message}");
            let missing = status == 404 || api.code == Some(ApiErrorsCode::ResourceMissing);
            match status {
                429 | 409 | 500.. => ProviderError::Unavailable(message),
                401 | 403 => ProviderError::Unauthorized(message),
                _ if missing => ProviderError::Missing(message),
                _ => ProviderError::Rejected(message),
            }
        }
        StripeError::ConfigError(message) => ProviderError::Rejected(message),
        other => ProviderError::Unavailable(other.to_string()),
    }
}

pub(crate) fn checkout_info(session: &CheckoutSession) -> CheckoutInfo {
    CheckoutInfo {
        id: session.id.as_str().to_owned(),
        url: session.url.clone(),
        status: CheckoutStatus::from(
            session
                .status
                .as_ref()
                .map_or("open", |status| status.as_str()),
        ),
        payment_status: PaymentStatus::from(session.payment_status.as_str()),
        mode: match session.mode {
            CheckoutSessionMode::Subscription => CheckoutMode::Subscription,
            _ => CheckoutMode::Payment,
        },
        customer: session
            .customer
            .as_ref()
            .map(|c| c.id().as_str().to_owned()),
        subscription: session
            .subscription
            .as_ref()
            .map(|s| s.id().as_str().to_owned()),
        client_reference_id: session.client_reference_id.clone(),
        metadata: session.metadata.clone().unwrap_or_default(),
        amount_total: session.amount_total,
        currency: session.currency.as_ref().map(ToString::to_string),
        expires_at: session.expires_at,
        payment_intent: session
            .payment_intent
            .as_ref()
            .map(|intent| intent.id().as_str().to_owned()),
    }
}

pub(crate) fn subscription_info(subscription: &Subscription) -> SubscriptionInfo {
    SubscriptionInfo {
        id: subscription.id.as_str().to_owned(),
        status: SubscriptionStatus::from(subscription.status.as_str()),
        customer: subscription.customer.id().as_str().to_owned(),
        metadata: subscription.metadata.clone(),
        price_ids: subscription
            .items
            .data
            .iter()
            .map(|item| item.price.id.as_str())
            .collect(),
    }
}

/// The idempotency key of a Billing Portal session: retries within one window replay the
/// same session, a later request gets a new one (Stripe would replay a session for 24 hours,
/// long after its link stopped working).
fn portal_key(customer: &str, subscription: &str, return_url: &str, now_secs: i64) -> String {
    let window = (now_secs / PORTAL_WINDOW_SECS).to_string();
    hashed_key("portal", &[customer, subscription, return_url, &window])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_urls_get_the_session_id() {
        assert_eq!(
            with_session_id("https://x.dev/ok"),
            "https://x.dev/ok?session_id={CHECKOUT_SESSION_ID}"
        );
        assert_eq!(
            with_session_id("https://x.dev/ok?a=1"),
            "https://x.dev/ok?a=1&session_id={CHECKOUT_SESSION_ID}"
        );
        let kept = "https://x.dev/ok?s={CHECKOUT_SESSION_ID}";
        assert_eq!(with_session_id(kept), kept);
    }

    #[test]
    fn a_billing_portal_session_is_reused_only_while_its_link_is_alive() {
        let key = |now| portal_key("cus_1", "sub_1", "https://x.dev/back", now);
        // A retry within the window replays the same session.
        assert_eq!(key(1_800_000_000), key(1_800_000_000 + 30));
        // A subscriber asking again later gets a new session (its link lives about 5 minutes).
        assert_ne!(key(1_800_000_000), key(1_800_000_000 + PORTAL_WINDOW_SECS));
        assert_ne!(key(1_800_000_000), key(1_800_000_000 + 24 * 3600));
        assert_ne!(
            key(1_800_000_000),
            portal_key("cus_1", "sub_2", "https://x.dev/back", 1_800_000_000)
        );
    }
}
