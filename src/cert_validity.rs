//! When the server's certificate stops being valid, read from it, so that a start (and a
//! reload) can say so: an expired certificate, or one that expires within 14 days.
//!
//! Owns the few steps of DER needed to reach `tbsCertificate.validity.notAfter` (RFC 5280
//! 4.1): a certificate is SEQUENCE { SEQUENCE { `[0]` version OPTIONAL, serialNumber,
//! signature, issuer, validity SEQUENCE { notBefore, notAfter }, ... }, ... }. Nothing
//! here verifies anything; rustls and the clients do that.

use std::io;
use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// How long before its end a certificate is worth a warning.
pub const WARN_BEFORE_SECS: u64 = 14 * 86_400;

/// One DER element: its tag, its contents, and what follows it.
fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |a, &b| a << 8 | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// `notAfter` of a DER certificate, as Unix seconds.
pub fn not_after(der: &[u8]) -> Option<u64> {
    let (0x30, cert, _) = element(der)? else {
        return None;
    };
    let (0x30, tbs, _) = element(cert)? else {
        return None;
    };
    let mut rest = tbs;
    // [0] EXPLICIT version, when present
    if rest.first() == Some(&0xa0) {
        rest = element(rest)?.2;
    }
    // serialNumber, signature, issuer
    for _ in 0..3 {
        rest = element(rest)?.2;
    }
    let (0x30, validity, _) = element(rest)? else {
        return None;
    };
    let (_, _, after_before) = element(validity)?;
    let (tag, time, _) = element(after_before)?;
    parse_time(tag, std::str::from_utf8(time).ok()?)
}

/// UTCTime (`YYMMDDHHMMSSZ`, 1950-2049) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
fn parse_time(tag: u8, t: &str) -> Option<u64> {
    let digits = t.strip_suffix('Z')?;
    let (year, rest) = match (tag, digits.len()) {
        (0x17, 12) => {
            let yy: u64 = digits[..2].parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &digits[2..])
        }
        (0x18, 14) => (digits[..4].parse().ok()?, &digits[4..]),
        _ => return None,
    };
    let n = |i: usize| rest.get(i..i + 2)?.parse::<u64>().ok();
    let (month, day, h, m, s) = (n(0)?, n(2)?, n(4)?, n(6)?, n(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day)? * 86_400 + h * 3600 + m * 60 + s)
}

/// Days since 1970-01-01 of a date in the proleptic Gregorian calendar (1970 or later).
fn days_from_civil(y: u64, m: u64, d: u64) -> Option<u64> {
    let y = if m <= 2 { y.checked_sub(1)? } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).checked_sub(719_468)
}

/// A warning about the first certificate in the PEM file `path` at `now_unix` (seconds):
/// expired, or expiring within [`WARN_BEFORE_SECS`]; None when it has longer, or when its
/// end cannot be read (rustls has accepted the file: nothing else to say).
pub fn warning(path: &Path, now_unix: u64) -> io::Result<Option<String>> {
    let Some(first) = CertificateDer::pem_file_iter(path)
        .map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })?
        .next()
        .transpose()
        .map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })?
    else {
        return Ok(None);
    };
    let Some(end) = not_after(first.as_ref()) else {
        return Ok(None);
    };
    let when = crate::client::utc(end.saturating_mul(1000));
    Ok(if end <= now_unix {
        Some(format!(
            "the certificate {} expired at {when}: clients will refuse it",
            path.display()
        ))
    } else if end - now_unix <= WARN_BEFORE_SECS {
        Some(format!(
            "the certificate {} expires at {when}, in {} day(s)",
            path.display(),
            (end - now_unix).div_ceil(86_400)
        ))
    } else {
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_dates_are_read_as_rfc_5280_writes_them() {
        assert_eq!(parse_time(0x17, "700101000000Z"), Some(0));
        assert_eq!(parse_time(0x17, "260101000000Z"), Some(1_767_225_600));
        assert_eq!(parse_time(0x18, "20260101000000Z"), Some(1_767_225_600));
        assert_eq!(parse_time(0x18, "20240229120000Z"), Some(1_709_208_000));
        assert_eq!(parse_time(0x17, "491231235959Z"), Some(2_524_607_999));
        assert_eq!(parse_time(0x17, "2601010000Z"), None);
        assert_eq!(parse_time(0x17, "261301000000Z"), None);
        assert_eq!(parse_time(0x04, "260101000000Z"), None);
    }

    #[test]
    fn damaged_der_is_none_not_a_panic() {
        assert_eq!(not_after(&[]), None);
        assert_eq!(not_after(&[0x30, 0x85, 1, 2, 3, 4, 5]), None);
        assert_eq!(not_after(&[0x30, 0x03, 0x30, 0x01]), None);
        for n in 0..64u8 {
            let junk: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37) ^ 0x30).collect();
            let _ = not_after(&junk);
        }
    }
}
