//! WebSocket connections (protocol.md 1, "WebSocket transport"): between the transport's
//! bytes (plain or TLS) and the engine's frame stream, as TLS is between the socket and
//! them. The engine sees a connection like any other.
//!
//! Owns, per connection: the opening handshake (`upgrade`), then the WebSocket framing
//! (tungstenite's `WebSocketContext`, driven without blocking over in-memory buffers), and
//! `wire`, the WebSocket bytes waiting for the transport. Does not own the socket, the
//! deadlines or any limit of the protocol: the login deadline bounds the handshake, and
//! the engine's output cap holds because engine bytes move into `wire` only while it is
//! nearly empty ([`WIRE_LOW`]).
//!
//! One connection:
//!
//! ```text
//!   accept ──> Upgrading ──(valid request: 101)──> Open ──(close sent, all written)──> linger
//!                 │                                  │
//!                 └──(refused: 4xx)──> Refused       └──(client's close, text, bad framing:
//!                                        │               input ends; engine finishes)
//!                    (response written) ─┴──> linger
//! ```
//!
//! Mapping: the payloads of the client's binary messages, concatenated, are its frame
//! stream; every server message carries whole frames (at most [`WIRE_LOW`] bytes of them,
//! or one frame when larger). Design: cutting at frame boundaries costs a header read per
//! frame here and saves every client a reassembly across messages; accepting any split
//! from clients costs nothing (the engine reassembles anyway).

mod shell;
pub(crate) mod upgrade;

use std::io::{self, Read, Write};

use bytes::{Buf, BytesMut};
use log::debug;
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::frame::{CloseFrame, FrameHeader};
use tungstenite::protocol::{Message as WsMessage, Role, WebSocketConfig, WebSocketContext};
use tungstenite::Error;

use crate::protocol::{decode_slice, DisconnectAck, DisconnectReason, Frame, Message, HEADER_LEN};
pub(super) use shell::ws_write;
pub use upgrade::OriginPolicy;
use upgrade::{Decision, Refusal};

/// Engine bytes are framed into `wire` while it holds less than this: the bound on what
/// one connection buffers here beyond the engine's own output (which the output cap
/// measures).
pub(crate) const WIRE_LOW: usize = 16 * 1024;

/// Beyond this, control frames (pongs) stay in tungstenite's small buffer, and beyond
/// that they are dropped: a peer that pings without reading cannot grow memory.
const WIRE_CAP: usize = 64 * 1024;

/// What tungstenite reads at a time from the bytes handed to it. Small: it is allocated
/// per connection, and the bytes are in memory already (a heartbeat is 52 bytes).
const READ_CHUNK: usize = 256;

/// One WebSocket connection's state above the transport.
pub(crate) struct WsConn {
    state: State,
    /// WebSocket bytes for the transport: the handshake's response, frames, control frames.
    /// Empty and unallocated between writes ([`WsConn::borrow_scratch`]).
    pub(crate) wire: BytesMut,
}

enum State {
    /// Reading the upgrade request: the bytes so far (at most `upgrade::MAX_HEAD`).
    Upgrading(Vec<u8>),
    Open(Box<Open>),
    /// The request was refused: the response is in `wire`; engine output is dropped.
    Refused,
}

struct Open {
    ctx: WebSocketContext,
    /// No more input: the client's close frame came, or the framing failed.
    input_done: bool,
    /// Our close frame (or the reply to the client's) is in `wire`: no data after it.
    closed: bool,
}

/// What a chunk of transport bytes meant.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Fed {
    /// Handled; more may come.
    More,
    /// Input is over (the client's close frame, a text message, broken framing, or a
    /// refused upgrade): the engine finishes as on the peer's FIN.
    Ended,
}

impl WsConn {
    pub(crate) fn new() -> WsConn {
        WsConn {
            state: State::Upgrading(Vec::new()),
            wire: BytesMut::new(),
        }
    }

    /// Whether the opening handshake is still being read.
    pub(crate) fn upgrading(&self) -> bool {
        matches!(self.state, State::Upgrading(_))
    }

    /// Whether the connection was upgraded (and not refused).
    pub(crate) fn open(&self) -> bool {
        matches!(self.state, State::Open(_))
    }

    /// The peer closed its side: a handshake it never finished gets no answer.
    pub(crate) fn peer_closed(&mut self) {
        if self.upgrading() {
            self.state = State::Refused;
        }
    }

    /// Takes bytes from the transport: the handshake first, then WebSocket frames, whose
    /// binary payloads go to `deliver` (the engine's input).
    pub(crate) fn feed(
        &mut self,
        data: &[u8],
        origins: &OriginPolicy,
        max_message: usize,
        mut deliver: impl FnMut(&[u8]),
    ) -> Fed {
        let rest = match &mut self.state {
            State::Refused => return Fed::Ended,
            State::Open(_) => data,
            State::Upgrading(head) => {
                let room = upgrade::MAX_HEAD + 1 - head.len().min(upgrade::MAX_HEAD);
                let take = data.len().min(room);
                let first = head.is_empty();
                head.extend_from_slice(&data[..take]);
                // Parsed on the first bytes (garbage is refused at once), when a line ends,
                // and past the bound: a peer sending a byte at a time costs one parse per
                // header line, not one per byte.
                let parse =
                    first || data[..take].contains(&b'\n') || head.len() > upgrade::MAX_HEAD;
                if !parse {
                    return Fed::More;
                }
                match upgrade::decide(head, origins) {
                    Decision::Partial => return Fed::More,
                    Decision::Refuse { response, why } => {
                        debug!("websocket upgrade refused: {why}");
                        self.wire.extend_from_slice(&response);
                        self.state = State::Refused;
                        return Fed::Ended;
                    }
                    Decision::Accept { response, head_len } => {
                        self.wire.extend_from_slice(&response);
                        let early = head.split_off(head_len);
                        self.state = State::Open(Box::new(Open::new(max_message)));
                        let fed = self.feed_open(&early, &mut deliver);
                        if fed == Fed::Ended {
                            return fed;
                        }
                        &data[take..]
                    }
                }
            }
        };
        self.feed_open(rest, &mut deliver)
    }

    fn feed_open(&mut self, data: &[u8], deliver: &mut impl FnMut(&[u8])) -> Fed {
        let State::Open(open) = &mut self.state else {
            return Fed::Ended;
        };
        if open.input_done {
            return Fed::Ended;
        }
        let mut pipe = Pipe {
            input: data,
            wire: &mut self.wire,
        };
        loop {
            let failure = match open.ctx.read(&mut pipe) {
                Ok(WsMessage::Binary(payload)) => {
                    deliver(&payload);
                    continue;
                }
                Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_)) => continue,
                Ok(WsMessage::Close(_)) => {
                    // Its reply is written after the engine's last answers (`fill`).
                    open.input_done = true;
                    return Fed::Ended;
                }
                Ok(WsMessage::Text(_)) => (CloseCode::Unsupported, "binary messages only"),
                Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(Error::Capacity(_)) => (CloseCode::Size, "message too large"),
                Err(e) => {
                    debug!("websocket framing error: {e}");
                    (CloseCode::Protocol, "WebSocket protocol error")
                }
            };
            open.input_done = true;
            open.close(&mut pipe, failure);
            return Fed::Ended;
        }
        // Pongs for pings in this chunk: tungstenite queues them for its next call.
        if let Err(e) = open.ctx.flush(&mut pipe) {
            if !matches!(&e, Error::Io(io) if io.kind() == io::ErrorKind::WouldBlock) {
                debug!("websocket flush: {e}");
            }
        }
        Fed::More
    }

    /// Moves engine output (`out`, whole frames) into `wire` as binary messages while
    /// `wire` is nearly empty; after the last of it, with `close`, the close frame (or the
    /// reply to the client's). Returns whether anything was added.
    pub(crate) fn fill(&mut self, out: Option<&mut BytesMut>, close: bool) -> bool {
        let before = self.wire.len();
        match &mut self.state {
            State::Upgrading(_) => {
                // The engine turned away a connection that has not finished its handshake:
                // its frames mean nothing to an HTTP client, so their gist goes as a status.
                let timeout = out.as_deref().is_some_and(|o| is_login_timeout(o));
                if let Some(out) = out {
                    out.clear();
                }
                if close {
                    let response = if timeout {
                        Refusal::RequestTimeout.response("no WebSocket upgrade and login in time")
                    } else {
                        Refusal::Unavailable.response("the server cannot take this connection now")
                    };
                    self.wire.extend_from_slice(&response);
                    self.state = State::Refused;
                }
            }
            State::Refused => {
                if let Some(out) = out {
                    out.clear();
                }
            }
            State::Open(open) => {
                if let Some(out) = out {
                    if open.closed {
                        out.clear();
                    }
                    while self.wire.len() < WIRE_LOW && !out.is_empty() {
                        let n = message_len(out);
                        binary_header(n, &mut self.wire);
                        self.wire.extend_from_slice(&out[..n]);
                        out.advance(n);
                    }
                    if !out.is_empty() {
                        return self.wire.len() > before;
                    }
                }
                if close && !open.closed {
                    let mut pipe = Pipe {
                        input: &[],
                        wire: &mut self.wire,
                    };
                    open.close(&mut pipe, (CloseCode::Normal, ""));
                }
            }
        }
        self.wire.len() > before
    }

    /// Before bytes are framed: an empty `wire` is swapped for the shell's `scratch`, so
    /// that a connection holds buffer memory only while the socket is full.
    pub(crate) fn borrow_scratch(&mut self, scratch: &mut BytesMut) {
        if self.wire.is_empty() {
            std::mem::swap(&mut self.wire, scratch);
        }
    }

    /// After the transport's write: an empty `wire` goes back (the larger of the two
    /// buffers stays the scratch); a non-empty one stays until the socket takes it.
    pub(crate) fn return_scratch(&mut self, scratch: &mut BytesMut) {
        if self.wire.is_empty() {
            if self.wire.capacity() > scratch.capacity() {
                std::mem::swap(&mut self.wire, scratch);
            }
            self.wire = BytesMut::new();
        }
    }
}

impl Open {
    fn new(max_message: usize) -> Open {
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_CHUNK)
            .write_buffer_size(0)
            .max_write_buffer_size(1024)
            .max_message_size(Some(max_message))
            .max_frame_size(Some(max_message));
        Open {
            ctx: WebSocketContext::new(Role::Server, Some(config)),
            input_done: false,
            closed: false,
        }
    }

    /// Queues our close frame (`why`), or the reply to the client's, into `wire`.
    fn close(&mut self, pipe: &mut Pipe<'_>, (code, reason): (CloseCode, &'static str)) {
        self.closed = true;
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        // After the client's close, tungstenite sends its reply instead; ConnectionClosed
        // then only says the close handshake is complete.
        match self.ctx.close(pipe, Some(frame)) {
            Ok(()) | Err(Error::ConnectionClosed) => {}
            Err(e) => debug!("websocket close: {e}"),
        }
    }
}

/// The length of the first frame in `out` (engine output holds whole frames), or all of
/// it if the header cannot be read (it always can).
fn message_len(out: &[u8]) -> usize {
    let mut n = 0;
    while out.len() >= n + HEADER_LEN {
        let len = u32::from_be_bytes([out[n + 10], out[n + 11], out[n + 12], out[n + 13]]);
        let frame = HEADER_LEN + len as usize;
        if n + frame > out.len() {
            break;
        }
        if n > 0 && n + frame > WIRE_LOW {
            return n;
        }
        n += frame;
    }
    if n == 0 {
        out.len()
    } else {
        n
    }
}

/// Whether the engine's output is the login deadline's DISCONNECT_ACK.
fn is_login_timeout(out: &[u8]) -> bool {
    matches!(
        decode_slice(out),
        Ok((
            Frame {
                message: Message::DisconnectAck(DisconnectAck {
                    reason: DisconnectReason::LoginTimeout
                }),
                ..
            },
            _
        ))
    )
}

/// A final, unmasked binary frame's header for `len` payload bytes (RFC 6455 5.2).
fn binary_header(len: usize, wire: &mut BytesMut) {
    let header = FrameHeader {
        opcode: OpCode::Data(Data::Binary),
        ..FrameHeader::default()
    };
    let mut w = WireWriter(wire);
    // Writing into memory cannot fail.
    let _ = header.format(len as u64, &mut w);
}

struct WireWriter<'a>(&'a mut BytesMut);

impl Write for WireWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// tungstenite's stream: reads the bytes given (then `WouldBlock`), writes into `wire`
/// (`WouldBlock` beyond [`WIRE_CAP`]).
struct Pipe<'a> {
    input: &'a [u8],
    wire: &'a mut BytesMut,
}

impl Read for Pipe<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.input.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self.input.len().min(buf.len());
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input = &self.input[n..];
        Ok(n)
    }
}

impl Write for Pipe<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.wire.len() >= WIRE_CAP {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.wire.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

    /// A masked client frame (RFC 6455 5.3), mask 37 fa 21 3d.
    fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut f = vec![0x80 | opcode];
        assert!(payload.len() < 126);
        f.push(0x80 | payload.len() as u8);
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        f
    }

    fn open() -> WsConn {
        open_with(4096)
    }

    fn open_with(max_message: usize) -> WsConn {
        let mut ws = WsConn::new();
        let fed = ws.feed(REQUEST, &OriginPolicy::default(), max_message, |_| {
            panic!("no data")
        });
        assert_eq!(fed, Fed::More);
        assert!(ws.wire.starts_with(b"HTTP/1.1 101 "));
        ws.wire.clear();
        ws
    }

    #[test]
    fn binary_payloads_are_the_stream_in_any_split() {
        let mut ws = open();
        let mut got = Vec::new();
        let mut bytes = client_frame(0x2, b"hello ");
        bytes.extend(client_frame(0x2, b"world"));
        for chunk in bytes.chunks(3) {
            let fed = ws.feed(chunk, &OriginPolicy::default(), 4096, |p| {
                got.extend_from_slice(p)
            });
            assert_eq!(fed, Fed::More);
        }
        assert_eq!(got, b"hello world");
        assert!(ws.wire.is_empty());
    }

    #[test]
    fn handshake_and_first_frame_in_one_chunk() {
        let mut ws = WsConn::new();
        let mut bytes = REQUEST.to_vec();
        bytes.extend(client_frame(0x2, b"early"));
        let mut got = Vec::new();
        ws.feed(&bytes, &OriginPolicy::default(), 4096, |p| {
            got.extend_from_slice(p)
        });
        assert_eq!(got, b"early");
    }

    #[test]
    fn pings_are_answered_at_once_and_text_is_refused_with_1003() {
        let mut ws = open();
        ws.feed(
            &client_frame(0x9, b"p1"),
            &OriginPolicy::default(),
            4096,
            |_| {},
        );
        assert_eq!(&ws.wire[..], &[0x8a, 0x02, b'p', b'1']);
        ws.wire.clear();
        let fed = ws.feed(
            &client_frame(0x1, b"hi"),
            &OriginPolicy::default(),
            4096,
            |_| {},
        );
        assert_eq!(fed, Fed::Ended);
        assert_eq!(&ws.wire[..4], &[0x88, 22, 0x03, 0xeb]); // close, 1003
                                                            // Nothing after the close frame, and no second one.
        ws.wire.clear();
        let mut out = BytesMut::from(&[0u8; 20][..]);
        ws.fill(Some(&mut out), true);
        assert!(ws.wire.is_empty() && out.is_empty());
    }

    #[test]
    fn oversized_message_closes_with_1009() {
        let mut ws = open_with(64);
        let fed = ws.feed(
            &client_frame(0x2, &[0u8; 100]),
            &OriginPolicy::default(),
            64,
            |_| {},
        );
        assert_eq!(fed, Fed::Ended);
        assert_eq!(&ws.wire[..4], &[0x88, 19, 0x03, 0xf1]); // close, 1009
    }

    #[test]
    fn client_close_is_answered_after_the_last_frames() {
        let mut ws = open();
        let fed = ws.feed(
            &client_frame(0x8, &[0x03, 0xe8]),
            &OriginPolicy::default(),
            4096,
            |_| {},
        );
        assert_eq!(fed, Fed::Ended);
        assert!(
            ws.wire.is_empty(),
            "the reply waits for the engine's answers"
        );
        let mut frame = vec![0x53, 0x44, 1, 9, 0, 1, 0, 0, 0, 4, 0, 0, 0, 2, 0, 0];
        let mut out = BytesMut::from(&frame[..]);
        ws.fill(Some(&mut out), true);
        let mut expect = vec![0x82, 16];
        expect.append(&mut frame);
        expect.extend_from_slice(&[0x88, 0x02, 0x03, 0xe8]);
        assert_eq!(&ws.wire[..], &expect[..]);
    }

    #[test]
    fn server_messages_carry_whole_frames_and_end_with_a_1000_close() {
        let mut ws = open();
        // Five frames of 14 + 8,000 bytes: two per message, framed while the wire holds
        // less than WIRE_LOW.
        let mut out = BytesMut::new();
        for i in 0..5u8 {
            out.extend_from_slice(&[0x53, 0x44, 1, 5, 0, 1, 0, 0, 0, i, 0, 0, 0x1f, 0x40]);
            out.extend_from_slice(&[i; 8000]);
        }
        assert!(ws.fill(Some(&mut out), true));
        assert_eq!(&ws.wire[..4], &[0x82, 126, 0x3e, 0x9c]); // 16,028 bytes: frames 0 and 1
        assert_eq!(&ws.wire[16032..16036], &[0x82, 126, 0x3e, 0x9c]); // frames 2 and 3
        assert_eq!(ws.wire.len(), 2 * 16032);
        assert_eq!(out.len(), 8014, "the last waits until the wire drains");
        ws.wire.clear();
        ws.fill(Some(&mut out), true);
        assert_eq!(&ws.wire[..4], &[0x82, 126, 0x1f, 0x4e]);
        assert!(out.is_empty());
        let n = ws.wire.len();
        assert_eq!(&ws.wire[n - 4..], &[0x88, 0x02, 0x03, 0xe8]);
    }

    /// A small deterministic generator (xorshift), for hostile input without a crate.
    fn rng(seed: u64) -> impl FnMut() -> u64 {
        let mut x = seed;
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    #[test]
    fn hostile_bytes_never_panic_and_always_end_or_wait() {
        let mut next = rng(0x5eed);
        let mut valid = client_frame(0x2, b"hello");
        valid.extend(client_frame(0x9, b"p"));
        valid.extend(client_frame(0x8, &[0x03, 0xe8]));
        for round in 0..2_000 {
            let mut ws = if round % 3 == 0 {
                WsConn::new()
            } else {
                open()
            };
            // Valid frames with bytes flipped, cut and repeated, in random chunks.
            let mut bytes = if round % 3 == 0 {
                REQUEST.to_vec()
            } else {
                Vec::new()
            };
            bytes.extend_from_slice(&valid);
            for _ in 0..(next() % 6) {
                let at = (next() as usize) % bytes.len();
                bytes[at] = next() as u8;
            }
            bytes.truncate(bytes.len() - (next() as usize) % 8);
            let mut at = 0;
            while at < bytes.len() {
                let n = 1 + (next() as usize) % 16;
                let end = (at + n).min(bytes.len());
                let mut got = 0;
                let fed = ws.feed(&bytes[at..end], &OriginPolicy::default(), 64, |p| {
                    got += p.len()
                });
                assert!(got <= 64, "a message over the limit was delivered");
                at = end;
                if fed == Fed::Ended {
                    break;
                }
            }
            let mut out = BytesMut::new();
            ws.fill(Some(&mut out), true);
            assert!(ws.wire.len() < 4096);
        }
    }

    #[test]
    fn a_byte_at_a_time_handshake_still_upgrades() {
        let mut ws = WsConn::new();
        for &b in REQUEST {
            ws.feed(&[b], &OriginPolicy::default(), 4096, |_| panic!("no data"));
        }
        assert!(ws.open());
        assert!(ws.wire.starts_with(b"HTTP/1.1 101 "));
    }

    /// A connection whose upgrade request has only begun.
    fn half_open() -> WsConn {
        let mut ws = WsConn::new();
        ws.feed(
            b"GET / HTTP/1.1\r\n",
            &OriginPolicy::default(),
            4096,
            |_| {},
        );
        ws
    }

    #[test]
    fn a_handshake_abandoned_by_the_peer_gets_no_answer() {
        let mut ws = half_open();
        ws.peer_closed();
        let mut out = BytesMut::from(&b"SD frame"[..]);
        ws.fill(Some(&mut out), true);
        assert!(out.is_empty() && ws.wire.is_empty());
    }

    #[test]
    fn an_unfinished_handshake_gets_408_or_503_and_engine_bytes_are_dropped() {
        use crate::protocol::{ErrorCode, GeneralFailure};
        let timeout = Frame::push(
            Message::DisconnectAck(DisconnectAck {
                reason: DisconnectReason::LoginTimeout,
            }),
            true,
        );
        let busy = Frame::push(
            Message::GeneralFailure(GeneralFailure::new(ErrorCode::ServerBusy, "full")),
            true,
        );
        for (frame, status) in [
            (timeout, &b"HTTP/1.1 408 Request Timeout\r\n"[..]),
            (busy, &b"HTTP/1.1 503 Service Unavailable\r\n"[..]),
        ] {
            let mut ws = half_open();
            let mut out = BytesMut::from(&frame.to_vec()[..]);
            ws.fill(Some(&mut out), true);
            assert!(out.is_empty());
            assert!(ws.wire.starts_with(status), "{:?}", ws.wire);
        }
    }
}
