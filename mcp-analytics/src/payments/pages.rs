//! The local test provider's checkout page, `GET` (shown) and `POST` (paid) `/pay/{id}`:
//! answered the same way by `serve::http` (`routes`) and by a Worker (`workers::serve`).

use super::{
    Payments, domain::CheckoutStatus, ledger::SubscriptionChange, now_ms, provider::local,
};

/// A page's answer.
pub(crate) struct Page {
    pub status: u16,
    pub body: PageBody,
}

/// What a page answers with.
pub(crate) enum PageBody {
    Html(String),
    Text(&'static str),
}

impl Page {
    fn text(status: u16, text: &'static str) -> Self {
        Self {
            status,
            body: PageBody::Text(text),
        }
    }
}

impl Payments {
    /// The checkout page of the local test provider's checkout `id`.
    pub(crate) async fn checkout_page(&self, id: &str) -> Page {
        self.render(id, None).await
    }

    /// Pays the local test provider's checkout `id` (its page's form): completes it as
    /// Stripe's `checkout.session.completed` would, and grants what it bought.
    pub(crate) async fn pay_test_checkout(&self, id: &str) -> Page {
        let Some(core) = self.core() else {
            return Page::text(404, "");
        };
        let Some(provider) = core.provider.as_local() else {
            return Page::text(404, "");
        };
        let (session, subscription) = match provider.complete(id, now_ms() / 1000).await {
            Ok(Some(completed)) => completed,
            Ok(None) => return Page::text(404, "no such checkout"),
            Err(error) => {
                tracing::error!("cannot complete the test payment: {error}");
                return Page::text(503, "cannot record the payment");
            }
        };
        let mut result = core.ledger.fulfil(&session).await.map(drop);
        if let (Ok(()), Some(sub)) = (&result, &subscription) {
            result = core
                .ledger
                .apply_subscription(sub, SubscriptionChange::Created)
                .await;
        }
        match result {
            Ok(()) if session.status == CheckoutStatus::Complete => {
                self.render(
                    id,
                    Some("Test payment complete. Go back to your MCP client and call the tool again."),
                )
                .await
            }
            Ok(()) => self.render(id, None).await,
            Err(error) => {
                tracing::error!("cannot record the test payment: {error}");
                Page::text(500, "cannot record the payment")
            }
        }
    }

    async fn render(&self, id: &str, message: Option<&str>) -> Page {
        let Some(core) = self.core() else {
            return Page::text(404, "");
        };
        let Some(provider) = core.provider.as_local() else {
            return Page::text(404, "");
        };
        let session = match provider.retrieve_checkout(id).await {
            Ok(session) => session,
            Err(super::ProviderError::Missing(_)) => return Page::text(404, "no such checkout"),
            Err(error) => {
                tracing::error!("cannot show the test checkout: {error}");
                return Page::text(503, "payments are unavailable");
            }
        };
        let reason = session
            .metadata
            .get("mcp_tool")
            .and_then(|tool| core.pricing.get(tool))
            .map(|pricing| pricing.reason.clone())
            .unwrap_or_default();
        Page {
            status: 200,
            body: PageBody::Html(local::page(&session, &reason, message)),
        }
    }
}
