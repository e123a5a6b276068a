//! The error collector: every mistake in the input is recorded and reported at once. Like
//! serde's `Ctxt`, it panics if dropped without [`Ctxt::check`], so no error is lost silently.

use std::{fmt::Display, thread};

use proc_macro2::Span;
use quote::ToTokens;

/// Spanned compile errors collected while reading and checking one `#[mcp_server]`.
pub(crate) struct Ctxt {
    /// `None` once checked.
    errors: Option<Vec<syn::Error>>,
}

impl Ctxt {
    /// An empty collector; it must be [`check`](Self::check)ed before it is dropped.
    pub(crate) fn new() -> Self {
        Self {
            errors: Some(Vec::new()),
        }
    }

    /// Records an error spanned at `tokens` (the narrowest tokens that are wrong).
    pub(crate) fn at(&mut self, tokens: impl ToTokens, message: impl Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    /// Records an error at `span` (for values that are not single tokens).
    pub(crate) fn at_span(&mut self, span: Span, message: impl Display) {
        self.push(syn::Error::new(span, message));
    }

    /// Records an already built error (e.g. from a failed `syn` parse).
    pub(crate) fn push(&mut self, error: syn::Error) {
        self.errors
            .as_mut()
            .expect("errors recorded after check")
            .push(error);
    }

    /// `Ok` when nothing was recorded, otherwise all errors combined into one.
    pub(crate) fn check(mut self) -> syn::Result<()> {
        let mut errors = self.errors.take().into_iter().flatten();
        let Some(mut combined) = errors.next() else {
            return Ok(());
        };
        for error in errors {
            combined.combine(error);
        }
        Err(combined)
    }

    /// The messages recorded so far, checking the collector (for tests).
    #[cfg(test)]
    pub(crate) fn messages(self) -> Vec<String> {
        match self.check() {
            Ok(()) => Vec::new(),
            Err(error) => error.into_iter().map(|error| error.to_string()).collect(),
        }
    }
}

impl Drop for Ctxt {
    fn drop(&mut self) {
        if !thread::panicking() && self.errors.is_some() {
            panic!("forgot to check for errors");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_combines_every_error() {
        let mut cx = Ctxt::new();
        cx.at_span(Span::call_site(), "first");
        cx.at_span(Span::call_site(), "second");
        assert_eq!(cx.messages(), ["first", "second"]);
        assert!(Ctxt::new().check().is_ok());
    }

    #[test]
    #[should_panic(expected = "forgot to check for errors")]
    fn dropping_unchecked_errors_panics() {
        let mut cx = Ctxt::new();
        cx.at_span(Span::call_site(), "lost");
    }
}
