//! The client side of protocol.md's "WebSocket transport", as small as it can be: the
//! upgrade request and the check of its answer, masked client frames, and the server's
//! (unmasked) frames read back. Shared by the load generator and the tests (`#[path]`),
//! which want to see and send exact bytes.

use bytes::{Buf, BytesMut};

/// WebSocket opcodes (RFC 6455 5.2).
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xa;

/// The key every request of this client sends (RFC 6455's sample nonce): a real browser
/// picks a random one; the server only checks its form.
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// An upgrade request for `host` (as `Host:`), with `origin` if given, offering the
/// `sessiond` subprotocol.
pub fn upgrade_request(host: &str, origin: Option<&str>) -> Vec<u8> {
    let origin = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
    format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: sessiond\r\n{origin}\r\n"
    )
    .into_bytes()
}

/// The server's answer to the upgrade, once its head is complete in `input` (which then
/// keeps only what follows it): `Ok(Some(status line))`; an error if it is not a valid
/// 101 for [`KEY`].
pub fn read_upgrade(input: &mut BytesMut) -> Result<Option<String>, String> {
    let Some(end) = input.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if input.len() > 8192 {
            Err("no end to the upgrade response".into())
        } else {
            Ok(None)
        };
    };
    let head = String::from_utf8_lossy(&input[..end]).into_owned();
    input.advance(end + 4);
    let status = head.lines().next().unwrap_or("").to_owned();
    if !status.starts_with("HTTP/1.1 101 ") {
        return Err(format!("upgrade refused: {status}"));
    }
    let want = format!(
        "sec-websocket-accept: {}",
        sessiond::server::websocket_accept_key(KEY.as_bytes())
    );
    if !head.lines().any(|l| l.eq_ignore_ascii_case(&want)) {
        return Err(format!("wrong or missing Sec-WebSocket-Accept in {head:?}"));
    }
    Ok(Some(status))
}

/// Appends one final client frame (masked, as RFC 6455 requires of clients).
pub fn encode(opcode: u8, payload: &[u8], mask: [u8; 4], out: &mut Vec<u8>) {
    out.push(0x80 | opcode);
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
}

/// One whole server frame from the front of `input`: `(opcode, fin, payload)`, or None
/// until it is complete. An error for a masked server frame.
pub fn decode(input: &mut BytesMut) -> Result<Option<(u8, bool, Vec<u8>)>, String> {
    if input.len() < 2 {
        return Ok(None);
    }
    if input[1] & 0x80 != 0 {
        return Err("a masked frame from the server".into());
    }
    let (len, at) = match input[1] & 0x7f {
        126 if input.len() >= 4 => (u64::from(u16::from_be_bytes([input[2], input[3]])), 4),
        127 if input.len() >= 10 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&input[2..10]);
            (u64::from_be_bytes(b), 10)
        }
        126 | 127 => return Ok(None),
        n => (u64::from(n), 2),
    };
    let len = usize::try_from(len).map_err(|_| "frame too long")?;
    if input.len() < at + len {
        return Ok(None);
    }
    let (opcode, fin) = (input[0] & 0x0f, input[0] & 0x80 != 0);
    input.advance(at);
    let payload = input.split_to(len).to_vec();
    Ok(Some((opcode, fin, payload)))
}
