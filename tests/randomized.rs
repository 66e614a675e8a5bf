//! Randomized tests in the regular suite (the fuzz targets' properties, bounded): the
//! decoder never panics and never waits for more than a frame's worth of bytes; every
//! frame it accepts re-encodes to exactly the bytes it came from; the engine fed
//! arbitrary frame sequences keeps its invariants. Deterministic seeds; a failure prints
//! the seed and case to replay.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::spec::examples;
use sessiond::auth::PasswordRecord;
use sessiond::engine::{Engine, EngineConfig, InlineShell};
use sessiond::protocol::{
    self, decode_from, DecodeLimits, Frame, Heartbeat, LoginRequest, Message, Role, Token,
    VerifySession, HEADER_LEN, MAGIC, VERSION,
};
use sessiond::session::UserTable;

/// xorshift64*: small, deterministic, good enough to drive test cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

const MAX: usize = 4096;

/// Random input that often starts like a frame, so the payload decoders get exercised.
fn random_input(rng: &mut Rng) -> Vec<u8> {
    let len = rng.below(200) as usize;
    let mut v = rng.bytes(len);
    if rng.below(3) > 0 {
        let [m0, m1] = MAGIC.to_be_bytes();
        let mut h = vec![m0, m1, VERSION, rng.below(0x60) as u8, 0, 0];
        h.extend_from_slice(&(rng.next() as u32).to_be_bytes());
        let plen = if rng.below(4) == 0 {
            rng.next() as u32
        } else {
            rng.below(len as u64 + 1) as u32
        };
        h.extend_from_slice(&plen.to_be_bytes());
        h.extend(v);
        v = h;
    }
    v
}

#[test]
fn the_decoder_never_panics_and_never_waits_past_the_maximum() {
    for seed in 1..=30_000u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let input = random_input(&mut rng);
        for limits in [DecodeLimits::server(MAX), DecodeLimits::client(MAX)] {
            match decode_from(&input, limits) {
                Ok(Some((frame, n))) => {
                    assert!(n <= input.len() && n <= MAX, "seed {seed}");
                    assert_eq!(frame.encoded_len(), n, "seed {seed}");
                }
                Ok(None) => {
                    // Incomplete: only ever while the frame could still fit the maximum.
                    if input.len() >= HEADER_LEN {
                        let declared =
                            u32::from_be_bytes(input[10..14].try_into().unwrap()) as usize;
                        assert!(
                            HEADER_LEN + declared <= MAX,
                            "seed {seed}: waits for {declared} payload bytes"
                        );
                    }
                    assert!(input.len() < MAX, "seed {seed}");
                }
                Err((e, n)) => {
                    assert!(n <= input.len(), "seed {seed}: {e}");
                }
            }
        }
        // the buffered decoder agrees and leaves the buffer consistent
        let mut buf = BytesMut::from(&input[..]);
        let before = buf.len();
        let _ = protocol::decode(&mut buf, DecodeLimits::server(MAX));
        assert!(buf.len() <= before);
    }
}

#[test]
fn every_accepted_mutation_of_the_spec_examples_reencodes_byte_for_byte() {
    let ex: Vec<Vec<u8>> = examples().into_values().collect();
    let mut accepted = 0;
    for seed in 1..=40_000u64 {
        let mut rng = Rng(seed.wrapping_mul(0xd1b5_4a32_d192_ed03) | 1);
        let mut v = ex[rng.below(ex.len() as u64) as usize].clone();
        for _ in 0..=rng.below(3) {
            let at = rng.below(v.len() as u64) as usize;
            match rng.below(3) {
                0 => v[at] = rng.next() as u8,
                1 => v[at] ^= 1 << rng.below(8),
                _ => v[at] = v[at].wrapping_add(1),
            }
        }
        if let Ok(Some((frame, n))) = decode_from(&v, DecodeLimits::client(1 << 20)) {
            accepted += 1;
            assert_eq!(frame.to_vec(), v[..n], "seed {seed}: {frame:?}");
            let (again, m) = protocol::decode_slice(&frame.to_vec()).unwrap();
            assert_eq!((again, m), (frame, n), "seed {seed}");
        }
    }
    // mutations of ids, times and text stay valid often: the property was exercised
    assert!(accepted > 10_000, "only {accepted} mutations decoded");
}

/// A frame a client might send: valid ones of every kind, with right and wrong tokens,
/// passwords and states, or bytes.
fn random_client_bytes(rng: &mut Rng, tokens: &[Token]) -> Vec<u8> {
    let token = if tokens.is_empty() || rng.below(4) == 0 {
        Token(std::array::from_fn(|_| rng.next() as u8))
    } else {
        tokens[rng.below(tokens.len() as u64) as usize].clone()
    };
    let rid = rng.below(1000) as u32;
    let msg = match rng.below(10) {
        0 | 1 => Message::LoginRequest(LoginRequest {
            username: ["alice", "bob", "nobody"][rng.below(3) as usize].into(),
            password: if rng.below(2) == 0 {
                "pw-alice-1"
            } else {
                "wrong"
            }
            .into(),
            client: "fuzz".into(),
            platform: String::new(),
        }),
        2..=4 => Message::Heartbeat(Heartbeat { token }),
        5 => Message::VerifySession(VerifySession {
            token,
            client: String::new(),
            platform: String::new(),
        }),
        6 => Message::LogoutRequest(protocol::LogoutRequest { token }),
        7 => Message::ListSessions(protocol::ListSessions {
            token,
            offset: 0,
            limit: 0,
        }),
        8 => Message::AdminStats(protocol::AdminStats { token }),
        _ => {
            let len = rng.below(40) as usize;
            return rng.bytes(len);
        }
    };
    Frame::reply(rid, msg).to_vec()
}

#[test]
fn the_engine_keeps_its_invariants_under_arbitrary_frame_sequences() {
    let mut logins = 0;
    for seed in 1..=60u64 {
        let mut rng = Rng(seed.wrapping_mul(0xa076_1d64_78bd_642f) | 1);
        let mut users = UserTable::new();
        let rec = PasswordRecord::create(b"pw-alice-1", 1).unwrap();
        users
            .create("alice", rec.clone(), Role::User, "", 0)
            .unwrap();
        users.create("bob", rec, Role::Admin, "", 0).unwrap();
        let cfg = EngineConfig {
            iterations: 1,
            max_sessions_per_user: rng.below(3) as usize,
            ..EngineConfig::default()
        };
        #[allow(clippy::disallowed_methods)] // an arbitrary origin for the made-up clock
        let mut now = Instant::now();
        let mut e = Engine::new(cfg, users, PasswordRecord::dummy(1).unwrap(), now, 0);
        let mut shell = InlineShell::default();
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut conns = Vec::new();
        let mut tokens: Vec<Token> = Vec::new();
        for _ in 0..400 {
            match rng.below(12) {
                0 => conns.push(e.handle_accept(peer, now)),
                1 => now += Duration::from_millis(rng.below(20_000)),
                2 if !conns.is_empty() => {
                    let id = conns.swap_remove(rng.below(conns.len() as u64) as usize);
                    e.handle_closed(id, now);
                }
                3 if !conns.is_empty() => {
                    let id = conns[rng.below(conns.len() as u64) as usize];
                    e.handle_peer_closed(id, now);
                }
                _ if !conns.is_empty() => {
                    let id = conns[rng.below(conns.len() as u64) as usize];
                    let bytes = random_client_bytes(&mut rng, &tokens);
                    e.handle_input(id, &bytes, now);
                }
                _ => {}
            }
            // the server loop's turns, then what it wrote: valid frames only; tokens
            // learnt for reuse
            assert!(shell.settle(&mut e, now), "seed {seed}: did not settle");
            for &id in &conns {
                let mut out = BytesMut::from(&shell.take_written(id)[..]);
                while let Some(f) = protocol::decode(&mut out, DecodeLimits::client(1 << 20))
                    .unwrap_or_else(|err| panic!("seed {seed}: server sent garbage: {err}"))
                {
                    if let Message::LoginSuccess(s) = f.message {
                        tokens.push(s.token);
                    }
                }
                assert!(out.is_empty(), "seed {seed}: partial frame");
            }
            conns.retain(|&c| !shell.is_closed(c));
            assert!(e.attached_sessions() <= e.sessions().len(), "seed {seed}");
            assert_eq!(e.connection_count(), conns.len(), "seed {seed}");
        }
        logins += tokens.len();
    }
    // the sequences got past login often enough to exercise the ACTIVE state
    assert!(logins > 100, "only {logins} logins");
}
