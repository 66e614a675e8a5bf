//! protocol.md's hex examples, for the tests that check the codec against the spec.

use std::collections::BTreeMap;

/// Every ```` ```hex example=NAME ```` block of protocol.md, by name.
pub fn examples() -> BTreeMap<String, Vec<u8>> {
    let spec = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/protocol.md"))
        .expect("protocol.md");
    let mut out = BTreeMap::new();
    let mut lines = spec.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line.strip_prefix("```hex example=") else {
            continue;
        };
        let mut bytes = Vec::new();
        for l in lines.by_ref() {
            if l.starts_with("```") {
                break;
            }
            for tok in l.split_whitespace() {
                bytes.push(
                    u8::from_str_radix(tok, 16)
                        .unwrap_or_else(|_| panic!("example {name}: not a hex byte: {tok}")),
                );
            }
        }
        assert!(
            out.insert(name.trim().to_owned(), bytes).is_none(),
            "duplicate example {name}"
        );
    }
    out
}
