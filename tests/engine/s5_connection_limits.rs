//! §5 "Connection limits": connections past the limits, peers that never read, and what an idle connection holds.

use crate::common::harness::*;
use sessiond::engine::EngineConfig;
use sessiond::protocol::*;

#[test]
fn connections_past_the_limits_get_a_fatal_server_busy() {
    let mut h = Harness::new(EngineConfig {
        max_connections: 4,
        max_connections_per_address: 2,
        ..EngineConfig::default()
    });
    let a = h.connect();
    let b = h.connect();
    let c = h.connect(); // a third from 127.0.0.1
    let f = h.one(c);
    assert_eq!(f.flags, Flags::PUSH | Flags::FATAL);
    assert_eq!(error_code(&f), ErrorCode::ServerBusy);
    assert!(h.closing(c));
    assert!(h.frames(a).is_empty() && h.frames(b).is_empty());
    h.remove(c);
    h.remove(b);
    let d = h.connect(); // room again
    assert!(h.frames(d).is_empty());
    h.login_ok(d);
    // the total limit, from other addresses
    let mut others = Vec::new();
    for i in 0..3u8 {
        let peer = std::net::SocketAddr::from(([10, 0, 0, i + 1], 5000));
        others.push(h.connect_from(peer));
    }
    h.settle();
    assert!(h.frames(others[0]).is_empty() && h.frames(others[1]).is_empty());
    assert_eq!(error_code(&h.one(others[2])), ErrorCode::ServerBusy);
    assert_eq!(h.engine.stats().connections_refused, 2);
}

#[test]
fn a_peer_that_never_reads_is_cut_off_at_the_output_cap() {
    let cfg = EngineConfig {
        max_output: 4096,
        ..EngineConfig::default()
    };
    let (mut h, c, tok) = Harness::logged_in(cfg);
    let mut bytes = Vec::new();
    for rid in 0..500u32 {
        bytes.extend(Frame::reply(rid, hb(&tok)).to_vec());
    }
    h.shell.set_reading(c, false);
    h.feed(c, &bytes);
    assert!(h.closing(c));
    assert_eq!(h.engine.stats().output_overflows, 1);
    assert_eq!(h.engine.buffered(c).1, 0);
}

#[test]
fn idle_connections_hold_no_buffers() {
    let (mut h, c, tok) = Harness::logged_in(EngineConfig::default());
    let burst: Vec<u8> = (0..1000)
        .flat_map(|i| Frame::reply(i + 10, hb(&tok)).to_vec())
        .collect();
    // while the peer does not read, the answers wait in the connection's buffers
    h.shell.set_reading(c, false);
    h.feed(c, &burst);
    assert!(h.frames(c).is_empty());
    assert!(h.engine.holds_buffers(c));
    // it reads: everything goes out, in turns of `frames_per_turn`, and the buffers go back
    h.shell.set_reading(c, true);
    h.engine.handle_writable(c);
    h.settle();
    assert_eq!(h.frames(c).len(), 1000);
    assert!(
        !h.engine.holds_buffers(c),
        "written out: the buffers go back"
    );
    // a partial frame keeps its buffer until the rest comes
    let frame = Frame::reply(7, hb(&tok)).to_vec();
    h.feed(c, &frame[..10]);
    assert!(h.engine.holds_buffers(c));
    assert_eq!(h.engine.buffered(c), (10, 0));
    h.feed(c, &frame[10..]);
    assert!(matches!(h.one(c).message, Message::HeartbeatAck(_)));
    assert!(!h.engine.holds_buffers(c));
    // and the connection works as before
    h.send(c, hb(&tok));
    assert!(matches!(h.one(c).message, Message::HeartbeatAck(_)));
}
