//! AFL++ target: the frame decoder on arbitrary bytes (what a hostile peer can send).
//! Properties checked on every input: no panic; each frame decoded re-encodes to exactly
//! its bytes; decoding continues after payload errors and stops where framing breaks.
//!
//! ```text
//! cargo install cargo-afl
//! cargo afl build --release --features fuzz --example fuzz_decode
//! mkdir -p /tmp/fz/in && printf 'SD' > /tmp/fz/in/seed
//! cargo afl fuzz -i /tmp/fz/in -o /tmp/fz/out -V 600 target/release/examples/fuzz_decode
//! ```

use bytes::BytesMut;
use sessiond::protocol::{decode, decode_slice, DecodeLimits};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let mut buf = BytesMut::from(data);
        // bounded: every round consumes bytes or stops
        for _ in 0..data.len() + 1 {
            let before = buf.len();
            match decode(&mut buf, DecodeLimits::server(4096)) {
                Ok(Some(frame)) => {
                    let bytes = frame.to_vec();
                    let consumed = &data[data.len() - before..data.len() - buf.len()];
                    assert_eq!(bytes, consumed, "re-encoding differs");
                    assert_eq!(decode_slice(&bytes).unwrap().0, frame);
                }
                Ok(None) => break,
                Err(e) if e.kind.breaks_framing() => break,
                Err(_) => assert!(buf.len() < before, "a payload error consumed nothing"),
            }
        }
    });
}
