//! The ceiling for benchmarks: a bare mio echo server, one thread, one `Poll`, writing back
//! whatever it reads. The load generator drives it exactly like sessiond (`--target echo`),
//! so the ratio between the two is the cost of sessiond's own work per heartbeat.
//!
//! ```text
//! cargo run --release --example echo -- 127.0.0.1:7451
//! ```

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;

use clap::Parser;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

/// A bare mio echo server: the ceiling for loadgen's `--target echo`.
#[derive(Parser)]
#[command(name = "echo")]
struct Args {
    /// The address to listen on.
    #[arg(value_name = "HOST:PORT", default_value = "127.0.0.1:7451")]
    addr: SocketAddr,
}

const LISTENER: Token = Token(usize::MAX);

struct Conn {
    stream: TcpStream,
    pending: Vec<u8>,
    writable: bool,
}

fn main() -> io::Result<()> {
    let Args { addr } = Args::parse();
    let mut poll = Poll::new()?;
    let mut listener = TcpListener::bind(addr)?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    println!("echo listening on {}", listener.local_addr()?);
    let mut conns: HashMap<usize, Conn> = HashMap::new();
    let mut next = 0usize;
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match poll.poll(&mut events, None) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for ev in events.iter() {
            if ev.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            stream.set_nodelay(true)?;
                            let t = Token(next);
                            next += 1;
                            poll.registry()
                                .register(&mut stream, t, Interest::READABLE)?;
                            conns.insert(
                                t.0,
                                Conn {
                                    stream,
                                    pending: Vec::new(),
                                    writable: false,
                                },
                            );
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            eprintln!("accept: {e}");
                            break;
                        }
                    }
                }
                continue;
            }
            let key = ev.token().0;
            let Some(c) = conns.get_mut(&key) else {
                continue;
            };
            let mut closed = false;
            loop {
                match c.stream.read(&mut buf) {
                    Ok(0) => {
                        closed = true;
                        break;
                    }
                    Ok(n) => c.pending.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => {
                        closed = true;
                        break;
                    }
                }
            }
            while !closed && !c.pending.is_empty() {
                match c.stream.write(&c.pending) {
                    Ok(n) => {
                        c.pending.drain(..n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => closed = true,
                }
            }
            if closed {
                if let Some(mut c) = conns.remove(&key) {
                    let _ = poll.registry().deregister(&mut c.stream);
                }
                continue;
            }
            let want = !c.pending.is_empty();
            if want != c.writable {
                let interest = if want {
                    Interest::READABLE | Interest::WRITABLE
                } else {
                    Interest::READABLE
                };
                poll.registry()
                    .reregister(&mut c.stream, ev.token(), interest)?;
                c.writable = want;
            }
        }
    }
}
