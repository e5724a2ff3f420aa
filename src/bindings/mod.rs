//! Bindings: a person links an operator's own reference for them (a metro card number, a bike-share
//! account) to their Tanhui account, so the operator posts trips by that reference instead of an id it
//! cannot know.
//!
//! The person's app asks for a one-time code for one provider (`codes`), the operator's app or site
//! submits it with its reference, and the binding holds until the person removes it (`store`). A post by
//! a reference with no live binding to the calling provider is refused (422 `unbound`).

pub mod codes;
pub mod handlers;
pub mod store;
pub mod subjects;
