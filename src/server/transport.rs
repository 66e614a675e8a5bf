//! Bytes between a socket and the engine, in the clear or through TLS.
//!
//! Owns the difference between the two: a plain connection reads and writes the socket;
//! a TLS one feeds what it reads to its `rustls::ServerConnection`, hands the decrypted
//! bytes on, and writes what rustls produces (handshake records included), the way
//! rustls's `tlsserver-mio` example drives it. Never blocks: every call stops at
//! `WouldBlock`.

use std::io::{self, Read, Write};

use bytes::{Buf, BytesMut};
use mio::net::TcpStream;
use rustls::ServerConnection;

use crate::protocol::{ErrorCode, Frame, GeneralFailure, Message};

/// What one read step produced.
pub(super) enum ReadStep {
    /// `n` bytes of application data in the buffer.
    Data(usize),
    /// Progress without application data yet (TLS records, a handshake); read again.
    Progress,
    WouldBlock,
    /// The peer closed its sending side.
    Eof,
    Failed(io::Error),
}

/// One read step: plaintext already decrypted first, else from the socket.
pub(super) fn read(
    stream: &mut TcpStream,
    tls: Option<&mut ServerConnection>,
    buf: &mut [u8],
    first: bool,
) -> ReadStep {
    let Some(tls) = tls else {
        return match stream.read(buf) {
            Ok(0) => ReadStep::Eof,
            Ok(n) => ReadStep::Data(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => ReadStep::WouldBlock,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => ReadStep::Progress,
            Err(e) => ReadStep::Failed(e),
        };
    };
    match tls.reader().read(buf) {
        Ok(0) => return ReadStep::Eof, // close_notify received
        Ok(n) => return ReadStep::Data(n),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => return ReadStep::Failed(e),
    }
    if first && plaintext_frame(stream) {
        // A client that forgot TLS: tell it in its own terms, since it cannot read an alert.
        let hint = Frame::push(
            Message::GeneralFailure(GeneralFailure::new(
                ErrorCode::TlsRequired,
                "this port speaks TLS: connect with TLS",
            )),
            true,
        );
        let _ = stream.write_all(&hint.to_vec());
        return ReadStep::Failed(io::Error::new(
            io::ErrorKind::InvalidData,
            "a plaintext sessiond frame on the TLS port",
        ));
    }
    match tls.read_tls(stream) {
        Ok(0) => ReadStep::Eof,
        Ok(_) => match tls.process_new_packets() {
            Ok(_) => ReadStep::Progress,
            Err(e) => {
                // rustls has queued an alert: send it (best effort) so the peer hears why.
                let _ = tls.write_tls(stream);
                ReadStep::Failed(io::Error::new(io::ErrorKind::InvalidData, e))
            }
        },
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => ReadStep::WouldBlock,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => ReadStep::Progress,
        Err(e) => ReadStep::Failed(e),
    }
}

/// Whether the bytes waiting on a fresh TLS connection begin like a frame of this protocol
/// (`53 44`, where a TLS record begins with a content type, 20 to 24).
fn plaintext_frame(stream: &TcpStream) -> bool {
    let mut head = [0u8; 2];
    matches!(stream.peek(&mut head), Ok(2) if head == [0x53, 0x44])
}

/// Writes `out` (None: only what TLS itself has to send, e.g. while replies are held)
/// until it is gone or the socket is full. Returns whether bytes are still pending.
pub(super) fn write(
    stream: &mut TcpStream,
    tls: Option<&mut ServerConnection>,
    mut out: Option<&mut BytesMut>,
) -> io::Result<bool> {
    let Some(tls) = tls else {
        let Some(out) = out else {
            return Ok(false);
        };
        while !out.is_empty() {
            match stream.write(out) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => out.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        return Ok(false);
    };
    loop {
        // Plaintext into rustls, as much as its buffer takes.
        if let Some(out) = out.as_deref_mut() {
            while !out.is_empty() {
                let n = tls.writer().write(out)?;
                if n == 0 {
                    break;
                }
                out.advance(n);
            }
        }
        if !tls.wants_write() {
            return Ok(out.is_some_and(|o| !o.is_empty()));
        }
        match tls.write_tls(stream) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
