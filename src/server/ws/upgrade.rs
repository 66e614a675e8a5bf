//! The WebSocket opening handshake (RFC 6455 section 4.2): reads an HTTP/1.1 upgrade
//! request head and decides: `101 Switching Protocols`, or a refusal with its status.
//!
//! Owns the checks and the response bytes; not the socket, not the deadline (the login
//! deadline bounds the handshake: the engine does not know it is one). Pure: it is given
//! the bytes received so far.

use ring::digest;

use crate::server::http::{closing_head, TEXT};

/// The longest request head taken (request line and headers), in bytes: beyond it, 431.
pub(crate) const MAX_HEAD: usize = 8 * 1024;

/// Headers a request may have (a browser sends about 15).
const MAX_HEADERS: usize = 48;

/// The subprotocol a client may offer (`Sec-WebSocket-Protocol`); selected when offered.
pub(crate) const SUBPROTOCOL: &str = "sessiond";

/// RFC 6455 1.3: appended to the client's key before hashing.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Which browser origins may open a WebSocket (`--ws-allowed-origin`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginPolicy {
    /// Lowercased origins allowed; `*` among them allows any.
    allowed: Vec<String>,
}

impl OriginPolicy {
    /// Allows exactly `origins` (`*`: any). None: no request that carries an Origin.
    pub fn new<S: AsRef<str>>(origins: &[S]) -> OriginPolicy {
        OriginPolicy {
            allowed: origins
                .iter()
                .map(|o| o.as_ref().trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// Whether every origin is allowed (`*`).
    pub fn allows_any(&self) -> bool {
        self.allowed.iter().any(|a| a == "*")
    }

    /// Whether a request with this Origin header (None: no header, not a browser) may
    /// upgrade.
    pub(crate) fn allows(&self, origin: Option<&str>) -> bool {
        let Some(origin) = origin else {
            return true;
        };
        self.allowed
            .iter()
            .any(|a| a == "*" || a.eq_ignore_ascii_case(origin.trim_end_matches('/')))
    }
}

impl std::fmt::Display for OriginPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.allowed.is_empty() {
            return f.write_str("none");
        }
        f.write_str(&self.allowed.join(", "))
    }
}

/// What the head received so far decides.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// More bytes are needed.
    Partial,
    /// Upgrade: the response to write, and how many bytes of the input were the head
    /// (the rest is the first WebSocket data).
    Accept { response: Vec<u8>, head_len: usize },
    /// Refused: the response to write before closing, and a reason for the log.
    Refuse {
        response: Vec<u8>,
        why: &'static str,
    },
}

/// The HTTP refusals, with their status lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    BadRequest,
    Forbidden,
    MethodNotAllowed,
    RequestTimeout,
    UpgradeRequired,
    HeadTooLarge,
    Unavailable,
}

impl Refusal {
    fn status(self) -> &'static str {
        match self {
            Refusal::BadRequest => "400 Bad Request",
            Refusal::Forbidden => "403 Forbidden",
            Refusal::MethodNotAllowed => "405 Method Not Allowed",
            Refusal::RequestTimeout => "408 Request Timeout",
            Refusal::UpgradeRequired => "426 Upgrade Required",
            Refusal::HeadTooLarge => "431 Request Header Fields Too Large",
            Refusal::Unavailable => "503 Service Unavailable",
        }
    }

    /// The response: status, the headers that tell a client what to do, a line of text.
    pub(crate) fn response(self, body: &str) -> Vec<u8> {
        let extra = match self {
            Refusal::MethodNotAllowed => "Allow: GET\r\n",
            Refusal::UpgradeRequired => "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n",
            _ => "",
        };
        let text = format!("{body}\n");
        let head = closing_head(self.status(), extra, TEXT, text.len());
        (head + &text).into_bytes()
    }
}

fn refuse(r: Refusal, why: &'static str) -> Decision {
    Decision::Refuse {
        response: r.response(why),
        why,
    }
}

/// Decides on the request head in `input` (the bytes received so far).
pub(crate) fn decide(input: &[u8], origins: &OriginPolicy) -> Decision {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(input) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if input.len() < MAX_HEAD => return Decision::Partial,
        Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
            return refuse(Refusal::HeadTooLarge, "request head too large")
        }
        Err(_) => return refuse(Refusal::BadRequest, "malformed HTTP request"),
    };
    if head_len > MAX_HEAD {
        return refuse(Refusal::HeadTooLarge, "request head too large");
    }
    if req.method != Some("GET") {
        return refuse(Refusal::MethodNotAllowed, "a WebSocket upgrade is a GET");
    }
    if req.version != Some(1) {
        return refuse(Refusal::BadRequest, "a WebSocket upgrade needs HTTP/1.1");
    }
    let mut host = false;
    let mut upgrade = false;
    let mut connection = false;
    let mut version = None;
    let mut keys: Vec<&[u8]> = Vec::new();
    let mut origins_seen: Vec<&[u8]> = Vec::new();
    let mut offered = false;
    for h in req.headers.iter() {
        let (name, value) = (h.name, h.value);
        if name.eq_ignore_ascii_case("host") {
            host = true;
        } else if name.eq_ignore_ascii_case("upgrade") {
            upgrade |= has_token(value, "websocket");
        } else if name.eq_ignore_ascii_case("connection") {
            connection |= has_token(value, "upgrade");
        } else if name.eq_ignore_ascii_case("sec-websocket-version") {
            version = Some(value);
        } else if name.eq_ignore_ascii_case("sec-websocket-key") {
            keys.push(value);
        } else if name.eq_ignore_ascii_case("origin") {
            origins_seen.push(value);
        } else if name.eq_ignore_ascii_case("sec-websocket-protocol") {
            offered |= has_token(value, SUBPROTOCOL);
        }
    }
    // In protocol.md's order: an upgrade at all, its version, its form, then the origin.
    if !upgrade || !connection {
        return refuse(
            Refusal::UpgradeRequired,
            "this port speaks the sessiond protocol over WebSocket only",
        );
    }
    if version.map(trim) != Some(b"13".as_slice()) {
        return refuse(Refusal::UpgradeRequired, "WebSocket version 13 only");
    }
    if !host {
        return refuse(Refusal::BadRequest, "no Host header");
    }
    let key = match keys.as_slice() {
        [k] if valid_key(trim(k)) => trim(k),
        [] | [_] => {
            return refuse(
                Refusal::BadRequest,
                "missing or malformed Sec-WebSocket-Key",
            )
        }
        _ => return refuse(Refusal::BadRequest, "more than one Sec-WebSocket-Key"),
    };
    let origin = match origins_seen.as_slice() {
        [] => None,
        [o] => match std::str::from_utf8(o) {
            Ok(o) => Some(o.trim()),
            Err(_) => return refuse(Refusal::BadRequest, "Origin is not text"),
        },
        _ => return refuse(Refusal::BadRequest, "more than one Origin"),
    };
    if !origins.allows(origin) {
        return refuse(
            Refusal::Forbidden,
            "this origin may not connect (--ws-allowed-origin)",
        );
    }
    let mut response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
        accept_key(key)
    )
    .into_bytes();
    if offered {
        response.extend_from_slice(format!("Sec-WebSocket-Protocol: {SUBPROTOCOL}\r\n").as_bytes());
    }
    response.extend_from_slice(b"\r\n");
    Decision::Accept { response, head_len }
}

/// Whether a comma-separated header value lists `token` (ASCII case-insensitive).
fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| trim(t).eq_ignore_ascii_case(token.as_bytes()))
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &v[start..end]
}

/// RFC 6455 4.1: the key is 16 random bytes in base64: 22 characters and `==`.
fn valid_key(k: &[u8]) -> bool {
    k.len() == 24
        && k.ends_with(b"==")
        && k[..22]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 4.2.2): base64(SHA-1(key +
/// GUID)); a client checks the server's answer with it.
pub fn accept_key(key: &[u8]) -> String {
    let mut ctx = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(key);
    ctx.update(GUID.as_bytes());
    base64(ctx.finish().as_ref())
}

/// Standard base64 with padding (RFC 4648 4).
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUEST: &str = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\nSec-WebSocket-Protocol: chat, sessiond\r\nSec-WebSocket-Version: 13\r\n\r\n";

    fn status(d: &Decision) -> String {
        let bytes = match d {
            Decision::Accept { response, .. } | Decision::Refuse { response, .. } => response,
            Decision::Partial => return "partial".into(),
        };
        String::from_utf8_lossy(bytes)
            .lines()
            .next()
            .unwrap_or("")
            .to_owned()
    }

    #[test]
    fn rfc_6455_example_key() {
        // RFC 6455 1.3: the sample nonce and its accept value.
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn accepts_an_allowed_origin_and_selects_the_subprotocol() {
        let mut input = REQUEST.as_bytes().to_vec();
        input.extend_from_slice(&[0x82, 0x80]); // the first frame, pipelined
        let d = decide(&input, &OriginPolicy::new(&["http://EXAMPLE.com/"]));
        let Decision::Accept { response, head_len } = d else {
            panic!("{d:?}");
        };
        assert_eq!(head_len, REQUEST.len());
        let text = String::from_utf8(response).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
            "{text}"
        );
        assert!(text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(text.contains("Sec-WebSocket-Protocol: sessiond\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn origins_no_header_always_listed_exactly_or_any() {
        let none = OriginPolicy::default();
        assert!(none.allows(None));
        assert!(!none.allows(Some("http://example.com")));
        let one = OriginPolicy::new(&["https://app.example"]);
        assert!(one.allows(Some("https://APP.example")));
        assert!(!one.allows(Some("https://app.example.evil")));
        assert!(!one.allows(Some("http://app.example")));
        assert!(!one.allows(Some("null")));
        assert!(OriginPolicy::new(&["*"]).allows(Some("null")));
        let d = decide(REQUEST.as_bytes(), &none);
        assert_eq!(status(&d), "HTTP/1.1 403 Forbidden");
        let no_origin = REQUEST.replace("Origin: http://example.com\r\n", "");
        assert!(matches!(
            decide(no_origin.as_bytes(), &none),
            Decision::Accept { .. }
        ));
    }

    #[test]
    fn refusals_name_their_status() {
        let any = OriginPolicy::new(&["*"]);
        let case =
            |from: &str, to: &str| status(&decide(REQUEST.replace(from, to).as_bytes(), &any));
        assert_eq!(
            case("GET /chat", "POST /chat"),
            "HTTP/1.1 405 Method Not Allowed"
        );
        assert_eq!(
            case("HTTP/1.1\r\nHost", "HTTP/1.0\r\nHost"),
            "HTTP/1.1 400 Bad Request"
        );
        assert_eq!(
            case("Upgrade: websocket", "Upgrade: h2c"),
            "HTTP/1.1 426 Upgrade Required"
        );
        assert_eq!(
            case("keep-alive, Upgrade", "keep-alive"),
            "HTTP/1.1 426 Upgrade Required"
        );
        assert_eq!(
            case("Version: 13", "Version: 8"),
            "HTTP/1.1 426 Upgrade Required"
        );
        assert_eq!(
            case("Host: server.example.com\r\n", ""),
            "HTTP/1.1 400 Bad Request"
        );
        assert_eq!(
            case("dGhlIHNhbXBsZSBub25jZQ==", "short=="),
            "HTTP/1.1 400 Bad Request"
        );
        assert_eq!(
            status(&decide(b"\x16\x03\x01\x02\x00 x\r\n\r\n", &any)),
            "HTTP/1.1 400 Bad Request"
        );
        // A plain browser visit: told what the port is.
        let visit = decide(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", &any);
        let Decision::Refuse { response, .. } = &visit else {
            panic!("{visit:?}");
        };
        let text = String::from_utf8_lossy(response);
        assert!(
            text.contains("426 Upgrade Required\r\nUpgrade: websocket\r\n"),
            "{text}"
        );
        assert!(text.contains("Content-Length: "), "{text}");
    }

    #[test]
    fn partial_heads_wait_until_the_bound() {
        let any = OriginPolicy::new(&["*"]);
        assert_eq!(decide(&REQUEST.as_bytes()[..40], &any), Decision::Partial);
        let mut long = b"GET / HTTP/1.1\r\nX: ".to_vec();
        long.resize(MAX_HEAD, b'a');
        assert_eq!(
            status(&decide(&long, &any)),
            "HTTP/1.1 431 Request Header Fields Too Large"
        );
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..MAX_HEADERS + 1 {
            many.extend_from_slice(format!("X{i}: y\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(
            status(&decide(&many, &any)),
            "HTTP/1.1 431 Request Header Fields Too Large"
        );
    }
}
