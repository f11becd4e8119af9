//! Many requests with at most `n` in flight, each made only when a slot is free.
//!
//! Why not `stream::iter(futures).buffer_unordered(n)` over futures built first: a future of one
//! ServiceAccount write is ~2.3 KB, so building the 10,000 of a cold start first held ~24 MB at
//! once. And a stream closure that makes them lazily (`stream::iter(items).map(|x| ...)`) makes
//! the caller's future fail rustc's higher-ranked `Send` check (rust-lang/rust#102211).

use std::future::Future;

use futures::StreamExt;
use futures::stream::FuturesUnordered;

/// Runs `make(item)` for every item, at most `n` at a time (at least one), and returns the
/// outputs in the order they finished.
pub async fn run<I, F>(items: I, n: usize, mut make: impl FnMut(I::Item) -> F) -> Vec<F::Output>
where
    I: IntoIterator,
    F: Future,
{
    let mut items = items.into_iter();
    let mut in_flight = FuturesUnordered::new();
    let mut done = Vec::with_capacity(items.size_hint().0);
    loop {
        while in_flight.len() < n.max(1) {
            match items.next() {
                Some(item) => in_flight.push(make(item)),
                None => break,
            }
        }
        match in_flight.next().await {
            Some(output) => done.push(output),
            None => return done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn runs_every_item_with_at_most_n_in_flight() {
        let in_flight = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let mut out = run(0..50u32, 4, |i| {
            let (in_flight, most) = (&in_flight, &most);
            async move {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::task::yield_now().await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                i * 2
            }
        })
        .await;
        out.sort();
        assert_eq!(out, (0..50).map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(most.load(Ordering::SeqCst), 4);
        assert!(run(0..0u32, 4, |i| async move { i }).await.is_empty());
        assert_eq!(run(0..3u32, 0, |i| async move { i }).await.len(), 3);
    }
}
