//! Collects every mistake in the input so they are all reported at once.

use std::fmt::Display;

use quote::ToTokens;

/// An accumulator of spanned compile errors.
#[derive(Default)]
pub(crate) struct Errors {
    list: Vec<syn::Error>,
}

impl Errors {
    /// Records an error spanned at `tokens` (the narrowest token that is wrong).
    pub(crate) fn at(&mut self, tokens: impl ToTokens, message: impl Display) {
        self.list.push(syn::Error::new_spanned(tokens, message));
    }

    /// Records an error at `span` (for values that are not single tokens).
    pub(crate) fn at_span(&mut self, span: proc_macro2::Span, message: impl Display) {
        self.list.push(syn::Error::new(span, message));
    }

    /// Records an already built error (e.g. from a failed `syn` parse).
    pub(crate) fn push(&mut self, error: syn::Error) {
        self.list.push(error);
    }

    /// `Ok` when nothing was recorded, otherwise all errors combined into one.
    pub(crate) fn finish(self) -> Result<(), syn::Error> {
        let mut errors = self.list.into_iter();
        let Some(mut combined) = errors.next() else {
            return Ok(());
        };
        for error in errors {
            combined.combine(error);
        }
        Err(combined)
    }
}
