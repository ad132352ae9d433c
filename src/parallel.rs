//! Work spread over the cores: a slice of items run on a few scoped threads, results in the
//! items' order. Used by the source (files and their pieces, decoded at once) and by the
//! row-local operators (a batch's parts processed at once).

/// Runs `run` over `items` on up to `threads` threads, each taking a contiguous run of items of
/// roughly equal `weight`, and returns the results in order; one run when there is less than
/// `min_weight` of work or fewer than two items.
pub fn run_split<'i, I: Sync, T: Send>(
    items: &'i [I],
    threads: usize,
    weight: impl Fn(&I) -> usize,
    min_weight: usize,
    run: impl Fn(&'i [I]) -> T + Sync,
) -> Vec<T> {
    let total: usize = items.iter().map(&weight).sum();
    if threads <= 1 || items.len() < 2 || total < min_weight {
        return vec![run(items)];
    }
    // Split into `threads` runs of roughly equal weight.
    let per = total.div_ceil(threads);
    let mut runs: Vec<&[I]> = Vec::new();
    let (mut from, mut acc) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        acc += weight(item);
        if acc >= per && runs.len() + 1 < threads {
            runs.push(&items[from..=i]);
            from = i + 1;
            acc = 0;
        }
    }
    runs.push(&items[from..]);
    let run = &run;
    std::thread::scope(|s| {
        let handles: Vec<_> = runs.iter().map(|r| s.spawn(move || run(r))).collect();
        // A thread's panic (a bug: bad input is an error or a reject) is re-raised here
        // rather than results lost.
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// Runs `run` on each of `items` on up to `threads` threads, each thread taking the next item
/// not yet taken (so a thread slowed by anything else keeps the others busy instead of leaving
/// them idle at the end), and returns the results in the items' order.
pub fn run_each<I: Sync, T: Send>(items: &[I], threads: usize, run: impl Fn(&I) -> T + Sync) -> Vec<T> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    if threads <= 1 || items.len() < 2 {
        return items.iter().map(run).collect();
    }
    let next = AtomicUsize::new(0);
    let (run, next) = (&run, &next);
    let mut done: Vec<(usize, T)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads.min(items.len()))
            .map(|_| {
                s.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break mine };
                        mine.push((i, run(item)));
                    }
                })
            })
            .collect();
        // As in `run_split`: a panic is re-raised here rather than results lost.
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    // Every index was taken exactly once.
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, t)| t).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Items taken by whichever thread is free come back in the items' order, each once, with
    /// any number of threads against items — also when one item takes far longer.
    #[test]
    fn each_item_runs_once_and_returns_in_order() {
        let items: Vec<u64> = (0..97).collect();
        for threads in [1, 2, 3, 8, 200] {
            let got = run_each(&items, threads, |&i| {
                if i == 3 {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                i * i
            });
            assert_eq!(
                got,
                items.iter().map(|i| i * i).collect::<Vec<_>>(),
                "{threads} threads"
            );
        }
        assert!(run_each(&[] as &[u64], 2, |&i| i).is_empty());
    }
}
