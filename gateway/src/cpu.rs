//! Sharing the cores between the parallel part of the work (decoding and verifying
//! submitted transactions) and its serial part (building, applying and storing
//! blocks).
//!
//! Parallel passes go through one gate, a slice at a time, so concurrent requests
//! share the cores instead of each starting a thread per core. While serial block
//! work runs ([`SerialWork`]), passes leave it a core: a producer starved of CPU
//! holds the node lock longer, and then every request waits.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Mutex,
};

/// Items mapped per turn through the gate.
const SLICE: usize = 256;
static GATE: Mutex<()> = Mutex::new(());
static SERIAL: AtomicUsize = AtomicUsize::new(0);

/// Marks serial block work in progress for as long as it lives.
#[must_use = "the mark lasts as long as the guard"]
pub struct SerialWork(());

impl SerialWork {
    /// Starts the mark.
    pub fn start() -> Self {
        SERIAL.fetch_add(1, Ordering::SeqCst);
        SerialWork(())
    }
}

impl Drop for SerialWork {
    fn drop(&mut self) {
        SERIAL.fetch_sub(1, Ordering::SeqCst);
    }
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .max(1)
}

/// Maps `items` on the cores. One result per input, in order, whatever happens to a
/// thread: a lost chunk becomes `None` for each of its items (refused as an internal
/// error by the caller), never a shift that pairs a result with the wrong input.
pub fn par_map<T: Send, U: Send>(items: Vec<T>, f: impl Fn(T) -> U + Sync) -> Vec<Option<U>> {
    let mut out = Vec::with_capacity(items.len());
    let mut rest = items.into_iter().peekable();
    while rest.peek().is_some() {
        let slice: Vec<T> = rest.by_ref().take(SLICE).collect();
        let _gate = GATE.lock().unwrap_or_else(|p| p.into_inner());
        let threads = cores().saturating_sub(SERIAL.load(Ordering::SeqCst)).max(1);
        out.extend(map_on(slice, threads, &f));
    }
    out
}

fn map_on<T: Send, U: Send>(
    items: Vec<T>,
    threads: usize,
    f: &(impl Fn(T) -> U + Sync),
) -> Vec<Option<U>> {
    let chunk = items.len().div_ceil(threads).max(1);
    let mut parts: Vec<Vec<T>> = Vec::new();
    let mut it = items.into_iter().peekable();
    while it.peek().is_some() {
        parts.push(it.by_ref().take(chunk).collect());
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| {
                let n = part.len();
                (
                    n,
                    scope.spawn(move || part.into_iter().map(f).collect::<Vec<_>>()),
                )
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|(n, h)| match h.join() {
                Ok(v) if v.len() == n => v.into_iter().map(Some).collect(),
                _ => (0..n).map(|_| None).collect::<Vec<_>>(),
            })
            .collect()
    })
}

/// Runs blocking or CPU-heavy work `f` from async code (typically while holding the
/// node: admission, import, production, a flush). On the multi-threaded runtime the
/// worker hands its other tasks to another thread first, so HTTP reads and timers go
/// on; on a single-threaded runtime (some tests) `f` simply runs.
pub fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_stay_in_order_across_slices_and_threads() {
        let items: Vec<u64> = (0..(3 * SLICE as u64 + 7)).collect();
        let out = par_map(items.clone(), |x| x * 2);
        assert_eq!(out.len(), items.len());
        for (x, y) in items.iter().zip(&out) {
            assert_eq!(*y, Some(x * 2));
        }
        // Also with fewer threads than cores (serial work under way).
        let _serial = SerialWork::start();
        let out = par_map(items.clone(), |x| x + 1);
        assert!(items.iter().zip(&out).all(|(x, y)| *y == Some(x + 1)));
    }

    #[test]
    fn a_panicking_item_loses_only_its_chunk() {
        let items: Vec<u32> = (0..40).collect();
        let out = map_on(items, 4, &|x| {
            assert!(x != 15, "boom");
            x
        });
        assert_eq!(out.len(), 40);
        // Chunks of 10: the second one (10..20) is lost, the others are intact.
        for (i, y) in out.iter().enumerate() {
            if (10..20).contains(&i) {
                assert_eq!(*y, None);
            } else {
                assert_eq!(*y, Some(i as u32));
            }
        }
    }
}
