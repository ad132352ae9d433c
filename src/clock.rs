//! Time as the engine sees it.
//!
//! Nothing in the engine reads wall time except through a [`Clock`]. Production runs use
//! [`SystemClock`]; tests and scenarios use [`ManualClock`], which only moves when told to, so a
//! run is reproducible to the millisecond (batch timestamps, trigger boundaries, file mtimes).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::watch;

/// Milliseconds since the Unix epoch (UTC), Spark's unit for batch timestamps and watermarks.
pub type Millis = i64;

/// A source of "now" that can also be waited on.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time in epoch milliseconds.
    fn now_ms(&self) -> Millis;

    /// Resolves once `now_ms() >= deadline`. A manual clock resolves only when advanced.
    fn wait_until(&self, deadline: Millis) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// The operating system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> Millis {
        chrono::Utc::now().timestamp_millis()
    }

    fn wait_until(&self, deadline: Millis) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            let now = self.now_ms();
            if deadline > now {
                // `deadline - now` is positive here, so the cast cannot wrap.
                tokio::time::sleep(std::time::Duration::from_millis((deadline - now) as u64)).await;
            }
        })
    }
}

/// A clock that stands still until [`ManualClock::advance`] or [`ManualClock::set`] moves it.
///
/// Cloning shares the same time: advancing one clone advances them all.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<watch::Sender<Millis>>,
}

impl ManualClock {
    /// A clock reading `start_ms`.
    pub fn new(start_ms: Millis) -> Self {
        let (tx, _rx) = watch::channel(start_ms);
        Self { now: Arc::new(tx) }
    }

    /// Moves the clock forward by `delta_ms` (a negative delta is ignored: time never runs back).
    pub fn advance(&self, delta_ms: Millis) {
        if delta_ms > 0 {
            self.now.send_modify(|t| *t += delta_ms);
        }
    }

    /// Sets the clock to `ms` if that is later than now.
    pub fn set(&self, ms: Millis) {
        self.now.send_modify(|t| *t = (*t).max(ms));
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> Millis {
        *self.now.borrow()
    }

    fn wait_until(&self, deadline: Millis) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let mut rx = self.now.subscribe();
        Box::pin(async move {
            // `wait_for` only errors when the sender is dropped, and `self` holds it.
            let _ = rx.wait_for(|t| *t >= deadline).await;
        })
    }
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_only_moves_forward() {
        let c = ManualClock::new(1_000);
        c.advance(500);
        assert_eq!(c.now_ms(), 1_500);
        c.advance(-100);
        c.set(10);
        assert_eq!(c.now_ms(), 1_500);
        let shared = c.clone();
        shared.set(2_000);
        assert_eq!(c.now_ms(), 2_000);
    }

    #[tokio::test]
    async fn manual_clock_wait_resolves_when_advanced() {
        let c = ManualClock::new(0);
        let waiter = {
            let c = c.clone();
            tokio::spawn(async move { c.wait_until(100).await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        c.advance(100);
        waiter.await.expect("waiter task panicked");
    }
}
