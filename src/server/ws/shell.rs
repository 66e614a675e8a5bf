//! The shell's side of a WebSocket connection: a read's bytes through the WebSocket layer
//! into the engine, and the engine's transmits out through it, over the transport (plain
//! or TLS). Kept here so that `server` only dispatches to it.

use std::io;
use std::time::Instant;

use bytes::BytesMut;
use log::debug;
use mio::net::TcpStream;

use super::{Fed, WsConn};
use crate::conn::ConnId;
use crate::engine::Engine;
use crate::server::{sock_in, transport, Io};

impl Io {
    /// The `n` bytes just read into `read_buf` for WebSocket connection `id`: the
    /// handshake or the frames; the binary payloads go to the engine in one call, as a TCP
    /// read's bytes do. Returns whether reading may go on (false: the input ended or the
    /// socket failed, and the engine has been told).
    pub(in crate::server) fn ws_data(
        &mut self,
        engine: &mut Engine,
        id: ConnId,
        n: usize,
        now: Instant,
    ) -> bool {
        let Some(sock) = sock_in(&mut self.socks, id) else {
            return false;
        };
        let Some(ws) = sock.ws.as_deref_mut() else {
            return false;
        };
        let max = engine.config().max_frame;
        ws.borrow_scratch(&mut self.ws_scratch);
        let upgrading = ws.upgrading();
        let inbox = &mut self.ws_inbox;
        let fed = ws.feed(&self.read_buf[..n], &self.ws_origins, max, |p| {
            inbox.extend_from_slice(p)
        });
        if !inbox.is_empty() {
            engine.handle_input(id, inbox, now);
            inbox.clear();
        }
        if upgrading && !ws.upgrading() {
            self.ws_upgrades[usize::from(!ws.open())] += 1;
        }
        // The handshake's response and pongs go now, before any answer.
        let written = transport::write(
            &mut sock.stream,
            sock.tls.as_deref_mut(),
            Some(&mut ws.wire),
        );
        ws.return_scratch(&mut self.ws_scratch);
        match written {
            Ok(true) if !sock.writable => engine.handle_writable(id),
            Ok(_) => {}
            Err(e) => {
                debug!("write error conn={}: {e}", id.index);
                self.drop_conn(engine, id, now);
                return false;
            }
        }
        if fed == Fed::Ended {
            engine.handle_peer_closed(id, now);
            return false;
        }
        true
    }
}

/// A WebSocket connection's transmit: the engine's frames (`out`) framed into its wire as
/// they fit, written until all is out or the socket is full. Returns whether bytes are
/// still pending (in the wire or in `out`).
pub(in crate::server) fn ws_write(
    stream: &mut TcpStream,
    mut tls: Option<&mut rustls::ServerConnection>,
    ws: &mut WsConn,
    scratch: &mut BytesMut,
    mut out: Option<&mut BytesMut>,
    close: bool,
) -> io::Result<bool> {
    ws.borrow_scratch(scratch);
    let pending = loop {
        ws.fill(out.as_deref_mut(), close);
        match transport::write(stream, tls.as_deref_mut(), Some(&mut ws.wire)) {
            Ok(true) => break Ok(true),
            Ok(false) if out.as_ref().is_none_or(|o| o.is_empty()) => break Ok(false),
            Ok(false) => {}
            Err(e) => break Err(e),
        }
    };
    ws.return_scratch(scratch);
    pending
}
