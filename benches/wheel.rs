//! Timer wheel benches with 1M entries: insert, reset (the heartbeat path when a timer is
//! moved rather than lazily re-armed), expire everything, cancel. Throughput in entries.
//!
//! `cargo bench --bench wheel`
#![allow(clippy::disallowed_methods)] // a benchmark measures real time

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use sessiond::timer::{TimerId, TimerWheel};

const N: u64 = 1_000_000;
const TICK: Duration = Duration::from_millis(10);

/// Deadlines spread over an hour, in a fixed pseudo-random order.
fn deadlines(t0: Instant) -> Vec<Instant> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    (0..N)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            t0 + Duration::from_millis(x % 3_600_000)
        })
        .collect()
}

fn filled(t0: Instant, ds: &[Instant]) -> (TimerWheel<u64>, Vec<TimerId>) {
    let mut w = TimerWheel::with_capacity(t0, TICK, ds.len());
    let ids = ds
        .iter()
        .enumerate()
        .map(|(i, &d)| w.insert(d, i as u64))
        .collect();
    (w, ids)
}

fn bench(c: &mut Criterion) {
    let t0 = Instant::now();
    let ds = deadlines(t0);
    let mut g = c.benchmark_group("wheel_1M");
    g.sample_size(10);
    g.throughput(Throughput::Elements(N));

    g.bench_function("insert", |b| {
        b.iter_batched(
            || TimerWheel::<u64>::with_capacity(t0, TICK, N as usize),
            |mut w| {
                for (i, &d) in ds.iter().enumerate() {
                    black_box(w.insert(d, i as u64));
                }
                w
            },
            BatchSize::LargeInput,
        )
    });

    g.bench_function("reset", |b| {
        b.iter_batched(
            || filled(t0, &ds),
            |(mut w, ids)| {
                for (id, &d) in ids.iter().zip(ds.iter().rev()) {
                    black_box(w.reset(*id, d + Duration::from_secs(15)));
                }
                w
            },
            BatchSize::LargeInput,
        )
    });

    g.bench_function("expire_all", |b| {
        b.iter_batched(
            || filled(t0, &ds).0,
            |mut w| {
                // advance a second at a time through the hour, as a loop would
                let mut now = t0;
                let mut n = 0u64;
                while !w.is_empty() {
                    now += Duration::from_secs(1);
                    while let Some((_, v)) = w.poll_expired(now) {
                        black_box(v);
                        n += 1;
                    }
                }
                assert_eq!(n, N);
                w
            },
            BatchSize::LargeInput,
        )
    });

    g.bench_function("cancel", |b| {
        b.iter_batched(
            || filled(t0, &ds),
            |(mut w, ids)| {
                for id in &ids {
                    black_box(w.cancel(*id));
                }
                w
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
