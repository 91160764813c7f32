//! Calls into user code, with its panics contained.
//!
//! Every call the pool makes into a [`Manager`](crate::Manager) goes through
//! [`call`] (synchronous methods) or [`Caught`] (futures), so a panic there
//! becomes a value the pool handles like any other failure (a broken
//! connection, a failed dial or ping) instead of unwinding through a guard
//! whose `Drop` would call the manager again (an abort), or skipping the
//! transition that settles a slot (a leak). (Built with `panic = "abort"`,
//! there is nothing to contain: the process ends at the panic.)

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// A panic caught in user code: its message.
#[derive(Debug, Clone)]
pub(crate) struct Panic(Arc<str>);

impl Panic {
    fn new(payload: Box<dyn Any + Send>) -> Self {
        let text = payload.downcast_ref::<String>().map(String::as_str);
        let text = text.or_else(|| payload.downcast_ref::<&'static str>().copied());
        Self(text.unwrap_or("a panic with a non-string payload").into())
    }

    /// The message, shared.
    pub(crate) fn message(&self) -> Arc<str> {
        Arc::clone(&self.0)
    }

    /// Logs the panic at `error`: `what` (`Manager::ping`, the
    /// `after_return` hook…) panicked for `key`.
    pub(crate) fn log(&self, what: &'static str, key: &dyn fmt::Debug) {
        tracing::error!(?key, panic = %self.0, "{what} panicked");
    }
}

impl fmt::Display for Panic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Runs `f`, catching a panic.
#[inline]
pub(crate) fn call<T>(f: impl FnOnce() -> T) -> Result<T, Panic> {
    catch_unwind(AssertUnwindSafe(f)).map_err(Panic::new)
}

/// A future whose panics (in any `poll`) end it with [`Panic`].
///
/// The futures of a `Manager` are boxed (`async-trait`), hence `Unpin`.
pub(crate) struct Caught<F>(pub(crate) F);

impl<F: Future + Unpin> Future for Caught<F> {
    type Output = Result<F::Output, Panic>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match call(|| Pin::new(inner).poll(cx)) {
            Ok(poll) => poll.map(Ok),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_message() {
        assert_eq!(call(|| 7).unwrap(), 7);
        let p = call(|| panic!("boom {}", 1)).unwrap_err();
        assert_eq!(&*p.message(), "boom 1");
        let p = call(|| std::panic::panic_any(5u8)).unwrap_err();
        assert_eq!(&*p.message(), "a panic with a non-string payload");
    }

    #[tokio::test]
    async fn a_panicking_future_ends_with_its_panic() {
        let ok: Pin<Box<dyn Future<Output = u8> + Send>> = Box::pin(async { 3 });
        assert_eq!(Caught(ok).await.unwrap(), 3);
        let bad: Pin<Box<dyn Future<Output = u8> + Send>> = Box::pin(async {
            tokio::task::yield_now().await;
            panic!("later")
        });
        assert_eq!(&*Caught(bad).await.unwrap_err().message(), "later");
    }
}
