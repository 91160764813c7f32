//! [`in_place`]: a call's future boxed where it is made.

use std::future::Future;
use std::pin::Pin;

/// The future `make` makes, in a box allocated first.
///
/// A future made first and then boxed (`Box::pin(future)`) is copied
/// whole into the box unless the compiler can prove its drop does
/// nothing: the allocation may unwind, and until it is done the future
/// must be on the stack, to be dropped. Made after the allocation, it is
/// written in place. The managers' per-call futures hold every state of
/// an exchange (a Redis command's is over a kilobyte) and are made once
/// per call.
#[inline(always)]
pub fn in_place<F: Future>(make: impl FnOnce() -> F) -> Pin<Box<F>> {
    let slot = Box::new_uninit();
    Box::into_pin(Box::write(slot, make()))
}
