//! What decides whether a verified delivery becomes a request: the
//! project's filters ([`filter`]: repository, branch or tag, paths, skip
//! markers) and the CI gate ([`ci_gate`]: a push that waits for its CI).
//! Duplicate deliveries are told by [`crate::store::deliveries`]. A push
//! no webhook brought is found by [`catchup`], at start and in pull mode;
//! a GitHub delivery that failed is asked for again by [`redeliver`].

pub(crate) mod catchup;
pub(crate) mod ci_gate;
pub mod filter;
pub(crate) mod redeliver;
