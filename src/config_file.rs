//! `--config FILE`: the server's options from a TOML file.
//!
//! Owns reading the file and turning it into command-line arguments, nothing else: a key
//! is a long option without its dashes (`max-connections`, or `max_connections`), a value
//! is a string or an integer (an array repeats the option), and the arguments it makes go
//! before the ones typed, so that a flag overrides the file. Every option therefore has one
//! declaration (`cli`), one parser, one range check and one help text, whether it comes
//! from the file or the command line.
//!
//! Design: expanding into arguments rather than deserializing into a struct of its own
//! keeps the file and the flags from ever disagreeing on a name, a default or a limit; the
//! price is that the file holds only what a flag can say (no sections), which is all the
//! server has.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

/// The option that names the file.
pub const FLAG: &str = "--config";

/// Where `--config` names a file: its path (the last one given wins), or `None`.
pub fn path_in(args: &[OsString]) -> Result<Option<PathBuf>, String> {
    let mut found = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == OsStr::new("--") {
            break;
        }
        if a == OsStr::new(FLAG) {
            let p = it.next().ok_or(format!("{FLAG} needs a file"))?;
            found = Some(PathBuf::from(p));
        } else if let Some(p) = a.to_str().and_then(|s| s.strip_prefix("--config=")) {
            found = Some(PathBuf::from(p));
        }
    }
    Ok(found)
}

/// The arguments the file at `path` stands for (`--key=value`, sorted by key); `known`
/// says whether a long option (without dashes) may appear in it.
pub fn arguments(
    path: &Path,
    known: &dyn Fn(&str) -> Option<OptionKind>,
) -> Result<Vec<OsString>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the config file {}: {e}", path.display()))?;
    from_text(&text, known).map_err(|e| format!("config file {}: {e}", path.display()))
}

/// What a known option takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionKind {
    /// A value (`listen = "..."`, `max-connections = 5`).
    Value,
    /// Nothing: a switch, on with `true` (`reuse-port = true`), off with `false`.
    Switch,
}

fn from_text(
    text: &str,
    known: &dyn Fn(&str) -> Option<OptionKind>,
) -> Result<Vec<OsString>, String> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
    let mut out = Vec::new();
    for (key, value) in &table {
        let name = key.replace('_', "-");
        let kind = known(&name).filter(|_| name != FLAG.trim_start_matches('-'));
        let Some(kind) = kind else {
            return Err(format!(
                "unknown option `{key}` (keys are the long options without `--`; see \
                 `sessiond --help`)"
            ));
        };
        if kind == OptionKind::Switch {
            match value {
                toml::Value::Boolean(true) => out.push(OsString::from(format!("--{name}"))),
                toml::Value::Boolean(false) => {}
                other => {
                    return Err(format!(
                        "`{key}` is a {}: this option is a switch, true or false",
                        other.type_str()
                    ))
                }
            }
            continue;
        }
        let values = match value {
            toml::Value::Array(items) => items.iter().collect(),
            one => vec![one],
        };
        for v in values {
            let text = match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Table(_) => {
                    return Err(format!(
                        "`{key}` is a section; every option goes at the top level"
                    ))
                }
                other => {
                    return Err(format!(
                        "`{key}` is a {}: a value is a string (\"...\") or an integer",
                        other.type_str()
                    ))
                }
            };
            out.push(OsString::from(format!("--{name}={text}")));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(name: &str) -> Option<OptionKind> {
        match name {
            "listen" | "max-connections" | "tls-cert" => Some(OptionKind::Value),
            "reuse-port" => Some(OptionKind::Switch),
            _ => None,
        }
    }

    fn args(text: &str) -> Result<Vec<String>, String> {
        from_text(text, &known).map(|v| v.into_iter().map(|a| a.into_string().unwrap()).collect())
    }

    #[test]
    fn keys_become_long_options_with_their_values() {
        let got = args(
            "# a comment\nlisten = \"127.0.0.1:7000\"\nmax_connections = 5\n\
             tls-cert = [\"a.pem\", \"b.pem\"]\n",
        )
        .unwrap();
        assert_eq!(
            got,
            [
                "--listen=127.0.0.1:7000",
                "--max-connections=5",
                "--tls-cert=a.pem",
                "--tls-cert=b.pem",
            ]
        );
        assert_eq!(args("").unwrap(), Vec::<String>::new());
        assert_eq!(args("reuse-port = true").unwrap(), ["--reuse-port"]);
        assert_eq!(args("reuse-port = false").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn what_is_not_an_option_value_is_refused_with_its_key() {
        let e = args("lisen = \"x\"").unwrap_err();
        assert!(e.contains("unknown option `lisen`"), "{e}");
        let e = args("config = \"other.toml\"").unwrap_err();
        assert!(e.contains("unknown option `config`"), "{e}");
        let e = args("listen = true").unwrap_err();
        assert!(e.contains("`listen` is a boolean"), "{e}");
        let e = args("[server]\nlisten = \"x\"").unwrap_err();
        assert!(e.contains("unknown option `server`"), "{e}");
        let e = args("reuse-port = \"yes\"").unwrap_err();
        assert!(e.contains("switch, true or false"), "{e}");
        let e = args("max-connections = 1.5").unwrap_err();
        assert!(e.contains("string"), "{e}");
        let e = args("listen = ").unwrap_err();
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn the_last_config_flag_names_the_file() {
        let a = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(path_in(&a(&["--listen", "x"])), Ok(None));
        assert_eq!(
            path_in(&a(&["--config", "a.toml", "--config=b.toml"])),
            Ok(Some(PathBuf::from("b.toml")))
        );
        assert!(path_in(&a(&["--config"])).is_err());
        assert_eq!(path_in(&a(&["--", "--config", "a"])), Ok(None));
    }
}
