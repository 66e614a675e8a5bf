//! The engine's inputs from its driver (`handle_*`), each with the `now` it happened at:
//! a connection accepted, bytes read, the peer's FIN, the socket writable again or gone,
//! deadlines, shutdown. (A hash's answer is in `auth_flow`, a batch made durable in
//! `durability`.)

use std::net::SocketAddr;
use std::time::Instant;

use log::{debug, info};

use super::{Engine, TimerKey};
use crate::conn::{Conn, ConnId};
use crate::protocol::{self, DisconnectReason, ErrorCode, Flags, GeneralFailure, Message};

impl Engine {
    /// A new connection (its socket accepted at `now`). Its login deadline starts now.
    /// Past the connection limits it gets a FATAL SERVER_BUSY push and closes at once.
    pub fn handle_accept(&mut self, peer: SocketAddr, now: Instant) -> ConnId {
        let entry = self.conns.vacant_entry();
        let id = ConnId {
            index: entry.key() as u32,
            generation: self.next_generation,
        };
        self.next_generation = self
            .next_generation
            .checked_add(1)
            .unwrap_or(std::num::NonZeroU32::MIN);
        let deadline = now + self.cfg.login_timeout;
        let mut conn = Conn::new(id, peer, deadline);
        conn.timer = Some(self.wheel.insert(deadline, TimerKey::Conn(id)));
        entry.insert(conn);
        self.stats.accepted += 1;
        debug!("accept conn={} peer={}", id.index, peer);
        let from_peer = self.per_address.entry(peer.ip()).or_insert(0);
        *from_peer += 1;
        let over_total =
            self.cfg.max_connections > 0 && self.conns.len() > self.cfg.max_connections;
        let over_peer = self.cfg.max_connections_per_address > 0
            && *from_peer as usize > self.cfg.max_connections_per_address;
        if over_total || over_peer {
            self.stats.connections_refused += 1;
            let why = if over_total {
                "server full: too many connections"
            } else {
                "too many connections from your address"
            };
            info!("connection refused ({why}): peer={peer}");
            self.begin_step();
            let busy = GeneralFailure::new(ErrorCode::ServerBusy, why);
            let flags = Flags::PUSH | Flags::FATAL;
            self.send(id, 0, flags, &Message::GeneralFailure(busy), now);
            self.close(id, now);
            self.end_step();
        }
        id
    }

    /// Bytes read from `id`'s socket: buffered, and the complete frames handled at once
    /// (at most `frames_per_turn`; the rest in the next turn). The driver reads only
    /// while [`Engine::wants_input`] says so; what it hands in beyond that is buffered.
    pub fn handle_input(&mut self, id: ConnId, bytes: &[u8], now: Instant) {
        let Some(c) = super::slot(&mut self.conns, id) else {
            return;
        };
        if c.is_closing() || c.input_closed {
            return; // nothing more is read once closing or after the FIN
        }
        c.io(&mut self.bufs).input.extend_from_slice(bytes);
        self.process(id, now);
    }

    /// The peer closed its sending side (read returned 0). Frames already received are
    /// still handled; then the connection closes.
    pub fn handle_peer_closed(&mut self, id: ConnId, now: Instant) {
        if let Some(c) = self.conn_mut(id) {
            c.input_closed = true;
            self.process(id, now);
        }
    }

    /// `id`'s socket can take more bytes: its output is transmitted this turn. (No
    /// `now`: it decides nothing.)
    pub fn handle_writable(&mut self, id: ConnId) {
        self.flag(id);
    }

    /// `id`'s socket is gone: closed after its last transmit (`Transmit::close`), or
    /// failed. Frees the slot; the session, if any, survives detached.
    pub fn handle_closed(&mut self, id: ConnId, now: Instant) {
        if self.conn(id).is_none() {
            return;
        }
        self.detach(id, now);
        let conn = self.conns.remove(id.index as usize);
        let ip = conn.peer.ip();
        if let Some(n) = self.per_address.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_address.remove(&ip);
            }
        }
        if conn.hashing() {
            self.policy.hash_done(ip);
        }
        if let Some(t) = conn.timer {
            self.wheel.cancel(t);
        }
        debug!("closed conn={} peer={}", id.index, conn.peer);
    }

    /// Fires every deadline that has passed by `now` (the turn calls it; a driver that
    /// sleeps wakes at [`Engine::poll_timeout`]).
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((_, key)) = self.wheel.poll_expired(now) {
            self.begin_step();
            match key {
                TimerKey::Conn(id) => self.conn_timer(id, now),
                TimerKey::Session(sid) => self.session_timer(sid, now),
                TimerKey::TombstoneSweep => {
                    self.sessions.forget_expired(self.unix_ms(now));
                    self.wheel
                        .insert(now + super::TOMBSTONE_SWEEP, TimerKey::TombstoneSweep);
                }
                TimerKey::Summary => self.summary_timer(now),
            }
            self.end_step();
        }
    }

    /// Graceful shutdown: every open connection gets SERVER_SHUTDOWN and DISCONNECT_ACK
    /// (SERVER_SHUTDOWN) and closes; sessions survive, detached, resumable after a restart.
    pub fn handle_shutdown(&mut self, now: Instant) {
        self.begin_step();
        let notice = Message::ServerShutdown(protocol::ServerShutdown {
            reconnect_after_ms: super::millis(self.cfg.shutdown_reconnect_after),
            message: "server shutting down; sessions survive: reconnect and resume".into(),
        });
        let ids: Vec<ConnId> = self.conns.iter().map(|(_, c)| c.id).collect();
        for id in ids {
            self.send(id, 0, Flags::PUSH, &notice, now);
            self.push_close(id, DisconnectReason::ServerShutdown, now);
        }
        self.end_step();
    }

    /// The store's fence passed (a cluster node's lease ran out: the other nodes may take
    /// its sessions over): every connection is told SERVER_SHUTDOWN (reconnect, to
    /// another node, and resume) and closed, and nothing is recorded, since nothing more
    /// may be written. A connection whose output waits for a change not yet durable gets
    /// nothing (that reply must not go out); it closes with the process.
    pub fn handle_fenced(&mut self, now: Instant) {
        self.begin_step();
        let notice = Message::ServerShutdown(protocol::ServerShutdown {
            reconnect_after_ms: 0,
            message: "this node lost its cluster lease: reconnect and resume".into(),
        });
        let ids: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.hold <= self.durable_seq)
            .map(|(_, c)| c.id)
            .collect();
        for id in ids {
            // Unbound without a detach record: the node writes nothing more.
            self.detach_for_end(id, now);
            self.send(id, 0, Flags::PUSH, &notice, now);
            self.push_close(id, DisconnectReason::ServerShutdown, now);
        }
        self.end_step();
    }
}
