//! Journal benches: appending session events with group commit (in memory, to measure the
//! encoding and framing; and to a real file with fdatasync per group), and replaying a
//! journal of 1M created sessions into state.
//!
//! `cargo bench --bench journal`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use sessiond::auth::PasswordRecord;
use sessiond::engine::event::{Event, StoredSession};
use sessiond::engine::replay::State;
use sessiond::protocol::Role;
use sessiond::session::{Digest, UserTable};
use sessiond::store::journal::{replay, JournalWriter, MemFile};
use sessiond::store::record;

fn session(i: u64) -> Event {
    Event::SessionCreated(StoredSession {
        id: i + 1,
        user_id: 1,
        digest: Digest([(i % 251) as u8; 32]),
        client: "loadgen".into(),
        platform: "linux".into(),
        peer: "127.0.0.1:40000".into(),
        created_ms: 1_767_225_600_000 + i,
        last_activity_ms: 1_767_225_600_000 + i,
        expires_ms: 1_767_312_000_000 + i,
    })
}

fn users() -> UserTable {
    let mut t = UserTable::new();
    t.create(
        "alice",
        PasswordRecord::create(b"pw", 1).unwrap(),
        Role::User,
        "",
        1,
    )
    .unwrap();
    t
}

fn journal_of(n: u64) -> Vec<u8> {
    let mut w = JournalWriter::new(MemFile::new(), 1, 0);
    for i in 0..n {
        let (k, p) = record::encode(&session(i));
        w.append(k, &p).unwrap();
    }
    w.commit().unwrap();
    w.file().bytes().to_vec()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("journal");
    g.sample_size(10);

    // 1,000 events per commit, in memory: encoding + framing + CRC cost per event.
    g.throughput(Throughput::Elements(1000));
    g.bench_function("append_1000_per_commit_mem", |b| {
        let mut w = JournalWriter::new(MemFile::new(), 1, 0);
        let mut i = 0u64;
        b.iter(|| {
            for _ in 0..1000 {
                let (k, p) = record::encode(&session(i));
                w.append(k, &p).unwrap();
                i += 1;
            }
            w.commit().unwrap();
            if w.size() > 64 << 20 {
                w = JournalWriter::new(MemFile::new(), i + 1, 0);
            }
        })
    });

    // Group commit to a real file: 100 events, one write and one fdatasync.
    let path = std::env::temp_dir().join(format!("sessiond-bench-journal-{}", std::process::id()));
    g.throughput(Throughput::Elements(100));
    g.bench_function("append_100_per_fdatasync_file", |b| {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)
            .unwrap();
        let mut w = JournalWriter::new(file, 1, 0);
        let mut i = 0u64;
        b.iter(|| {
            for _ in 0..100 {
                let (k, p) = record::encode(&session(i));
                w.append(k, &p).unwrap();
                i += 1;
            }
            w.commit().unwrap();
        })
    });
    let _ = std::fs::remove_file(&path);

    // Startup: replay 1M created sessions into state.
    let bytes = journal_of(1_000_000);
    g.throughput(Throughput::Elements(1_000_000));
    g.bench_function("replay_1M_sessions", |b| {
        b.iter_batched(
            users,
            |users| {
                let r = replay(&bytes, 1).unwrap();
                let mut st = State {
                    users,
                    ..State::new()
                };
                for rec in &r.records {
                    st.apply(record::decode(rec.kind, rec.payload).unwrap())
                        .unwrap();
                }
                black_box(st.sessions.len())
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
