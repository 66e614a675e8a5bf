//! Codec benches: decoding and encoding the hot-path frames (HEARTBEAT in, HEARTBEAT_ACK
//! out), a pipelined batch, and the rarer LOGIN_SUCCESS. Throughput in frames (elements)
//! and bytes.
//!
//! `cargo bench --bench codec`

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use sessiond::protocol::{
    decode, DecodeLimits, Flags, Frame, Heartbeat, HeartbeatAck, LoginSuccess, Message, Role,
    SessionInfo, Token,
};

fn heartbeat(rid: u32) -> Frame {
    Frame::reply(
        rid,
        Message::Heartbeat(Heartbeat {
            token: Token([7; 32]),
        }),
    )
}

fn bench_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    let one = heartbeat(1).to_vec();
    g.throughput(Throughput::Elements(1));
    g.bench_function("heartbeat", |b| {
        b.iter_batched_ref(
            || BytesMut::from(&one[..]),
            |buf| black_box(decode(buf, DecodeLimits::server(65_536)).unwrap()),
            BatchSize::SmallInput,
        )
    });

    let mut batch = Vec::new();
    for rid in 0..1000 {
        batch.extend(heartbeat(rid).to_vec());
    }
    g.throughput(Throughput::Elements(1000));
    g.bench_function("heartbeat_x1000_pipelined", |b| {
        b.iter_batched_ref(
            || BytesMut::from(&batch[..]),
            |buf| {
                let mut n = 0;
                while let Some(f) = decode(buf, DecodeLimits::server(65_536)).unwrap() {
                    black_box(&f);
                    n += 1;
                }
                assert_eq!(n, 1000);
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn bench_encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(1));
    let ack = Message::HeartbeatAck(HeartbeatAck {
        server_time: 1_767_225_605_000,
    });
    let mut out = BytesMut::with_capacity(1 << 16);
    g.bench_function("heartbeat_ack", |b| {
        b.iter(|| {
            if out.len() > 60_000 {
                out.clear();
            }
            sessiond::protocol::encode_message(7, Flags::NONE, black_box(&ack), &mut out);
        })
    });
    let ls = Message::LoginSuccess(LoginSuccess {
        token: Token([1; 32]),
        session: SessionInfo {
            session_id: 7,
            user_id: 2,
            role: Role::User,
            username: "alice".into(),
            user_created: 1,
            last_login: 2,
            session_created: 3,
            session_expires: 4,
            idle_expiry_ms: 5,
            heartbeat_interval_ms: 6,
            heartbeat_timeout_ms: 7,
        },
    });
    g.bench_function("login_success", |b| {
        b.iter(|| {
            if out.len() > 60_000 {
                out.clear();
            }
            sessiond::protocol::encode_message(1, Flags::NONE, black_box(&ls), &mut out);
        })
    });
    g.finish();
}

criterion_group!(benches, bench_decode, bench_encode);
criterion_main!(benches);
