//! Session table benches with 100k sessions: insert, look up by token digest (every
//! resume and token check), and end (with its tombstone). Throughput in sessions.
//! Plus the token digest itself (SHA-256 of 32 bytes, on every token check).
//!
//! `cargo bench --bench session`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use sessiond::conn::Peer;
use sessiond::protocol::{InvalidReason, Token};
use sessiond::session::{Digest, Session, SessionTable};

const N: u64 = 100_000;

fn token(i: u64) -> Token {
    let mut t = [0u8; 32];
    t[..8].copy_from_slice(&i.to_le_bytes());
    t[8..16].copy_from_slice(&(i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).to_le_bytes());
    Token(t)
}

/// The records to insert (their device labels interned in `t`, as the engine does).
fn sessions(t: &mut SessionTable) -> Vec<Session> {
    let peer = Peer::from("127.0.0.1:40000".parse::<std::net::SocketAddr>().unwrap());
    (0..N)
        .map(|i| Session {
            id: i.wrapping_mul(0xd1b5_4a32_d192_ed03) | 1,
            user_id: i % 1000,
            digest: Digest::of(&token(i)),
            created_ms: 0,
            expires_ms: 86_400_000,
            saved_activity_ms: 0,
            last_activity_ms: 0,
            device: t.intern_device("bench", "linux"),
            peer,
            conn: None,
            timer: None,
        })
        .collect()
}

fn fresh() -> (SessionTable, Vec<Session>) {
    let mut t = SessionTable::new();
    let all = sessions(&mut t);
    (t, all)
}

fn filled() -> (SessionTable, Vec<u64>, Vec<Digest>) {
    let (mut t, all) = fresh();
    let ids = all.iter().map(|s| s.id).collect();
    let digests = all.iter().map(|s| s.digest).collect();
    for s in all {
        t.insert(s).unwrap();
    }
    (t, ids, digests)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("sessions_100k");
    g.sample_size(10);
    g.throughput(Throughput::Elements(N));
    g.bench_function("insert", |b| {
        b.iter_batched(
            fresh,
            |(mut t, all)| {
                for s in all {
                    t.insert(s).unwrap();
                }
                t
            },
            BatchSize::LargeInput,
        )
    });
    let (table, ids, digests) = filled();
    g.bench_function("lookup_by_digest", |b| {
        b.iter(|| {
            for d in &digests {
                black_box(table.id_by_digest(d));
            }
        })
    });
    g.bench_function("end", |b| {
        b.iter_batched(
            filled,
            |(mut t, ids, _)| {
                for id in ids {
                    black_box(t.end(id, InvalidReason::LoggedOut, 86_400_000));
                }
                t
            },
            BatchSize::LargeInput,
        )
    });
    drop(ids);
    g.finish();

    let mut g = c.benchmark_group("token");
    g.throughput(Throughput::Elements(1));
    let tok = token(7);
    g.bench_function("digest_sha256", |b| b.iter(|| Digest::of(black_box(&tok))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
