//! A connection's byte buffers and the pool they come from and go back to.

use bytes::BytesMut;

/// A connection's byte buffers.
#[derive(Debug, Default)]
pub struct IoBufs {
    /// Bytes read but not yet decoded ([`crate::engine::Engine::handle_input`] appends).
    pub input: BytesMut,
    /// Encoded frames not yet written (the shell writes from it: [`crate::engine::Transmit`]).
    pub output: BytesMut,
}

/// Spare buffers, shared by all connections: a request borrows a pair, and the pair comes
/// back once its reply is written, so 10,000 idle connections hold no buffer memory, and
/// the heartbeat path does not allocate while at most `MAX_SPARE` connections are busy in
/// one loop turn (beyond that, a pair is allocated and freed per request).
#[derive(Debug, Default)]
pub struct BufPool {
    // Boxed on purpose: a connection holds `Box<IoBufs>`, and the box is reused whole.
    #[allow(clippy::vec_box)]
    spare: Vec<Box<IoBufs>>,
}

impl BufPool {
    /// Pairs kept for reuse: enough for a turn of 1,000 busy connections without an
    /// allocation each (64 cost ~10% of heartbeat throughput at 1,000 connections), few
    /// enough that the pairs a login burst leaves behind cost ~20 bytes a session at
    /// 10,000 (benches/BENCHMARKS.md).
    pub const MAX_SPARE: usize = 1024;
    /// A buffer that grew past this (a burst, a big frame) is freed, not kept.
    pub const MAX_KEPT_CAPACITY: usize = 256;

    pub(crate) fn take(&mut self) -> Box<IoBufs> {
        self.spare.pop().unwrap_or_default()
    }

    pub(crate) fn give(&mut self, mut b: Box<IoBufs>) {
        if self.spare.len() >= Self::MAX_SPARE {
            return;
        }
        for buf in [&mut b.input, &mut b.output] {
            buf.clear();
            if buf.capacity() > Self::MAX_KEPT_CAPACITY {
                *buf = BytesMut::new();
            }
        }
        self.spare.push(b);
    }

    /// Pairs waiting for reuse.
    pub fn spare(&self) -> usize {
        self.spare.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_is_bounded_and_frees_big_buffers() {
        let mut pool = BufPool::default();
        let mut b = pool.take();
        b.input.extend_from_slice(&[0; 100_000]);
        pool.give(b);
        assert_eq!(pool.spare(), 1);
        let b = pool.take();
        assert!(b.input.capacity() <= BufPool::MAX_KEPT_CAPACITY && b.input.is_empty());
        for _ in 0..BufPool::MAX_SPARE + 10 {
            pool.give(Box::default());
        }
        assert_eq!(pool.spare(), BufPool::MAX_SPARE);
    }
}
