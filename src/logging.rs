//! The server's log: lines as text or as one JSON object each, a filter that SIGHUP can
//! replace, and a bound on how fast any one source can write.
//!
//! Owns the process's `log::Log`. The filter is the `RUST_LOG` syntax (`info`,
//! `sessiond=debug,rustls=warn`), parsed by env_logger; formatting and writing are here.
//!
//! Design: lines a peer can cause (a TLS library's warning for every bad handshake, a
//! refusal per connection) would otherwise let any client grow the log without bound, so
//! every target (module path) gets a budget per window: the crate's own targets 200 lines
//! a second, other crates' 10 lines per 10 s. Past it lines are counted, not written, and
//! one line says how many were dropped when the window ends (written with the next line
//! of any target, so at most one window late). Nothing here sees a password or a token:
//! the server never formats one into a message.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use log::{Level, Log, Metadata, Record};

/// `--log-format`: lines for people, or one JSON object per line for a log collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// `[time LEVEL target] message`
    #[default]
    Text,
    /// `{"time":...,"level":...,"target":...,"message":...,"fields":{...}}`
    Json,
}

impl std::fmt::Display for LogFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

/// The levels a filter may name.
const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// Checks a filter in `RUST_LOG` syntax: comma-separated `LEVEL` or `MODULE=LEVEL`
/// (env_logger would ignore a bad part with a warning; a server should refuse it).
pub fn check_filter(spec: &str) -> Result<String, String> {
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let level = part.rsplit_once('=').map_or(
            part,
            |(module, level)| {
                if module.is_empty() {
                    ""
                } else {
                    level
                }
            },
        );
        if !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            return Err(format!(
                "`{part}`: a filter part is LEVEL or MODULE=LEVEL, LEVEL one of {}",
                LEVELS.join(", ")
            ));
        }
    }
    Ok(spec.to_owned())
}

/// Lines per window for a target before it is held back.
fn budget(target: &str) -> (u32, Duration) {
    if target == "sessiond" || target.starts_with("sessiond::") {
        (200, Duration::from_secs(1))
    } else {
        (10, Duration::from_secs(10))
    }
}

/// Per target: the window's start, lines written in it, lines dropped.
#[derive(Debug, Default)]
struct Limiter {
    targets: HashMap<String, (Option<Instant>, u32, u64)>,
    /// The earliest end of a window with lines dropped: other targets are looked at only
    /// then, not with every line.
    next_due: Option<Instant>,
}

impl Limiter {
    /// The counts of lines dropped so far, whatever their windows (at exit).
    fn take_dropped(&mut self) -> Vec<(String, u64, Duration)> {
        let mut out = Vec::new();
        for (t, (_, _, dropped)) in self.targets.iter_mut() {
            if *dropped > 0 {
                out.push((t.clone(), std::mem::take(dropped), budget(t).1));
            }
        }
        self.next_due = None;
        out
    }

    /// Whether a line of `target` may be written at `now`; and the summaries of windows
    /// that ended with lines dropped, to write first.
    fn admit(&mut self, target: &str, now: Instant) -> (bool, Vec<(String, u64, Duration)>) {
        let mut summaries = Vec::new();
        if self.next_due.is_some_and(|d| now >= d) {
            self.next_due = None;
            for (t, (start, count, dropped)) in self.targets.iter_mut() {
                let window = budget(t).1;
                let Some(s) = *start else { continue };
                if now.duration_since(s) >= window {
                    if *dropped > 0 {
                        summaries.push((t.clone(), *dropped, window));
                    }
                    (*start, *count, *dropped) = (None, 0, 0);
                } else if *dropped > 0 {
                    let end = s + window;
                    self.next_due = Some(self.next_due.map_or(end, |d| d.min(end)));
                }
            }
        }
        let (limit, window) = budget(target);
        if !self.targets.contains_key(target) {
            self.targets.insert(target.to_owned(), (None, 0, 0));
        }
        let Some(entry) = self.targets.get_mut(target) else {
            return (true, summaries);
        };
        // this target's own window, when it ended without lines dropped
        if entry.0.is_some_and(|s| now.duration_since(s) >= window) && entry.2 == 0 {
            *entry = (None, 0, 0);
        }
        let start = *entry.0.get_or_insert(now);
        if entry.1 < limit {
            entry.1 += 1;
            (true, summaries)
        } else {
            entry.2 += 1;
            let end = start + window;
            self.next_due = Some(self.next_due.map_or(end, |d| d.min(end)));
            (false, summaries)
        }
    }
}

struct Logger {
    filter: RwLock<env_logger::Logger>,
    format: LogFormat,
    limiter: Mutex<Limiter>,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

fn build_filter(spec: &str) -> env_logger::Logger {
    env_logger::Builder::new().parse_filters(spec).build()
}

/// Installs the log with `format` and the filter `spec`; once per process (a second call
/// changes nothing and says so).
pub fn init(format: LogFormat, spec: &str) -> Result<(), String> {
    let filter = build_filter(spec);
    let max = filter.filter();
    let logger = Logger {
        filter: RwLock::new(filter),
        format,
        limiter: Mutex::new(Limiter::default()),
    };
    LOGGER
        .set(logger)
        .map_err(|_| "the log is already set up".to_owned())?;
    let logger = LOGGER.get().expect("just set");
    log::set_logger(logger).map_err(|e| e.to_string())?;
    log::set_max_level(max);
    Ok(())
}

/// Replaces the filter (SIGHUP). Does nothing if the log was not set up here.
pub fn set_filter(spec: &str) {
    if let Some(l) = LOGGER.get() {
        let f = build_filter(spec);
        log::set_max_level(f.filter());
        if let Ok(mut w) = l.filter.write() {
            *w = f;
        }
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.filter.read().is_ok_and(|f| f.enabled(metadata))
    }

    fn log(&self, record: &Record<'_>) {
        if !self.filter.read().is_ok_and(|f| f.matches(record)) {
            return;
        }
        #[allow(clippy::disallowed_methods)] // the log is part of the shell: it owns the clock
        let now = Instant::now();
        let (admit, summaries) = match self.limiter.lock() {
            Ok(mut l) => l.admit(record.target(), now),
            Err(_) => (true, Vec::new()),
        };
        let mut out = std::io::stderr().lock();
        for (target, dropped, window) in summaries {
            let _ = out.write_all(self.dropped_line(&target, dropped, window).as_bytes());
        }
        if admit {
            let line = self.line(record.level(), record.target(), &record.args().to_string());
            let _ = out.write_all(line.as_bytes());
        }
    }

    /// Writes what is still held back (the counts of lines dropped), then flushes.
    fn flush(&self) {
        let pending: Vec<(String, u64, Duration)> = match self.limiter.lock() {
            Ok(mut l) => l.take_dropped(),
            Err(_) => Vec::new(),
        };
        let mut out = std::io::stderr().lock();
        for (target, dropped, window) in pending {
            let _ = out.write_all(self.dropped_line(&target, dropped, window).as_bytes());
        }
        let _ = out.flush();
    }
}

impl Logger {
    /// The line that says how many lines of `target` were dropped.
    fn dropped_line(&self, target: &str, dropped: u64, window: Duration) -> String {
        let message = format!(
            "{dropped} more line(s) from {target} were not written in the last {window:?} \
             (at most {} per {window:?})",
            budget(target).0
        );
        self.line(Level::Warn, "sessiond::logging", &message)
    }

    fn line(&self, level: Level, target: &str, message: &str) -> String {
        #[allow(clippy::disallowed_methods)] // the log is part of the shell: it owns the clock
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        format_line(self.format, now_ms, level, target, message)
    }
}

/// One line of the log, with its newline.
fn format_line(
    format: LogFormat,
    unix_ms: u64,
    level: Level,
    target: &str,
    message: &str,
) -> String {
    let time = rfc3339(unix_ms);
    match format {
        LogFormat::Text => format!("[{time} {level:<5} {target}] {message}\n"),
        LogFormat::Json => {
            let mut s = String::with_capacity(96 + message.len());
            s.push_str("{\"time\":");
            json_str(&mut s, &time);
            s.push_str(",\"level\":");
            json_str(&mut s, level.as_str());
            s.push_str(",\"target\":");
            json_str(&mut s, target);
            s.push_str(",\"message\":");
            json_str(&mut s, message);
            s.push_str(",\"fields\":{");
            for (i, (k, v)) in fields(message).enumerate() {
                if i > 0 {
                    s.push(',');
                }
                json_str(&mut s, k);
                s.push(':');
                json_str(&mut s, v);
            }
            s.push_str("}}\n");
            s
        }
    }
}

/// The `name=value` words of a message (how the server writes what a line is about:
/// `user=alice peer=127.0.0.1:5000`), a value ending at the next space. A name is
/// lowercase letters, digits and `_`, starting with a letter.
fn fields(message: &str) -> impl Iterator<Item = (&str, &str)> {
    message.split_whitespace().filter_map(|word| {
        let (k, v) = word.split_once('=')?;
        let ok = k.starts_with(|c: char| c.is_ascii_lowercase())
            && k.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        ok.then_some((k, v))
    })
}

/// `s` as a JSON string, appended.
fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `2026-01-01T00:00:00.000Z`.
fn rfc3339(unix_ms: u64) -> String {
    let day = crate::client::utc(unix_ms); // "YYYY-MM-DD HH:MM:SS UTC"
    format!("{}T{}.{:03}Z", &day[..10], &day[11..19], unix_ms % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_are_one_object_with_the_message_and_its_fields() {
        let line = format_line(
            LogFormat::Json,
            1_767_225_600_123,
            Level::Info,
            "sessiond::engine",
            "login ok user=alice peer=127.0.0.1:5 client=\"a \\\"b\" note",
        );
        assert!(line.ends_with("}\n") && !line[..line.len() - 1].contains('\n'));
        assert!(line.starts_with(
            "{\"time\":\"2026-01-01T00:00:00.123Z\",\"level\":\"INFO\",\"target\":\"sessiond::engine\""
        ));
        assert!(line.contains("\"fields\":{\"user\":\"alice\",\"peer\":\"127.0.0.1:5\","));
        assert!(line.contains("\\\"a"), "{line}");
        let text = format_line(LogFormat::Text, 0, Level::Warn, "x", "m");
        assert_eq!(text, "[1970-01-01T00:00:00.000Z WARN  x] m\n");
        let mut s = String::new();
        json_str(&mut s, "a\u{1}\n");
        assert_eq!(s, "\"a\\u0001\\n\"");
    }

    #[test]
    fn a_flood_from_one_target_is_cut_and_counted() {
        let mut l = Limiter::default();
        #[allow(clippy::disallowed_methods)] // a made-up clock starts somewhere
        let t0 = Instant::now();
        let written = (0..100).filter(|_| l.admit("rustls::server", t0).0).count();
        assert_eq!(written, 10);
        // the crate's own lines have their own, larger budget
        assert!((0..150).all(|_| l.admit("sessiond::server", t0).0));
        // a window later: the count is said, and lines pass again
        let (ok, summaries) = l.admit("rustls::server", t0 + Duration::from_secs(10));
        assert!(ok);
        assert_eq!(
            summaries,
            [("rustls::server".to_owned(), 90, Duration::from_secs(10))]
        );
        let (_, again) = l.admit("rustls::server", t0 + Duration::from_secs(11));
        assert!(again.is_empty());
    }

    #[test]
    fn filters_are_checked() {
        assert!(check_filter("info").is_ok());
        assert!(check_filter("sessiond=debug,rustls=WARN").is_ok());
        assert!(check_filter("verbose").is_err());
        assert!(check_filter("=info").is_err());
        assert!(check_filter("sessiond=loud").is_err());
    }
}
