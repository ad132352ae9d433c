//! A line holding one JSON object of scalar values — the usual shape of a line — split into its
//! keys and the text of its values without a full JSON parse.
//!
//! The scanner accepts a strict subset of JSON: keys without escapes; values that are strings
//! without escapes or control characters, numbers in JSON's grammar, `true`, `false` or
//! `null`; JSON whitespace between tokens. Anything else — an escape, a nested object or array,
//! a malformed token, text after the object — gives `None`, and the caller parses the line with
//! serde_json as before, so every reason a reject carries is still serde_json's. A line the
//! scanner accepts is one serde_json accepts, with the same entries in the same order and each
//! value's text exactly as `RawValue::get` gives it (`scans_as_serde_json_parses`).
//!
//! Written by hand because serde_json's general deserializer was most of the decoder's time on
//! such lines (about 200 ns of a ~120-byte line), and the SIMD parsers measured slower still on
//! lines this short (README, "The JSON scanner").

/// Calls `entry(key, value text)` for each entry of `line`, in order, when it is a flat object
/// the scanner reads (see the module docs); `false` when it is not, or when `entry` returned
/// `false` (the caller wants the line parsed by serde_json). Entries already seen by `entry`
/// are then to be discarded.
pub fn scan<'a>(line: &'a str, mut entry: impl FnMut(&'a str, &'a str) -> bool) -> bool {
    scan_entries(line, &mut entry).is_some()
}

fn scan_entries<'a>(line: &'a str, entry: &mut impl FnMut(&'a str, &'a str) -> bool) -> Option<()> {
    let b = line.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return (skip_ws(b, i + 1) == b.len()).then_some(());
    }
    loop {
        // A key: a string without escapes.
        let key_end = string_end(b, i)?;
        let key = line.get(i + 1..key_end)?;
        i = skip_ws(b, key_end + 1);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(b, i + 1);
        let value_end = match *b.get(i)? {
            b'"' => string_end(b, i)? + 1,
            b'-' | b'0'..=b'9' => number_end(b, i)?,
            b't' => literal_end(b, i, b"true")?,
            b'f' => literal_end(b, i, b"false")?,
            b'n' => literal_end(b, i, b"null")?,
            _ => return None,
        };
        if !entry(key, line.get(i..value_end)?) {
            return None;
        }
        i = skip_ws(b, value_end);
        match *b.get(i)? {
            b',' => i = skip_ws(b, i + 1),
            b'}' => return (skip_ws(b, i + 1) == b.len()).then_some(()),
            _ => return None,
        }
    }
}

/// JSON's whitespace: space, tab, line feed, carriage return.
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// The index of the closing quote of the string opening at `i`, if it has no escape and no
/// control character (which JSON forbids unescaped).
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let rest = b.get(i + 1..)?;
    let n = rest.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
    (rest[n] == b'"').then_some(i + 1 + n)
}

/// The end of the number starting at `i`, in JSON's grammar:
/// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
fn number_end(b: &[u8], mut i: usize) -> Option<usize> {
    let digits = |b: &[u8], mut i: usize| {
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        (i > start).then_some(i)
    };
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    i = match *b.get(i)? {
        b'0' => i + 1,
        b'1'..=b'9' => digits(b, i)?,
        _ => return None,
    };
    if b.get(i) == Some(&b'.') {
        i = digits(b, i + 1)?;
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = b.get(i) {
            i += 1;
        }
        i = digits(b, i)?;
    }
    Some(i)
}

/// The end of `word` at `i`, if it is there.
fn literal_end(b: &[u8], i: usize, word: &[u8]) -> Option<usize> {
    (b.get(i..i + word.len()) == Some(word)).then_some(i + word.len())
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use rand::{Rng, SeedableRng};
    use serde_json::value::RawValue;

    use super::*;

    /// serde_json's reading of a line as an object: its entries in order, or `None`.
    fn serde_entries(line: &str) -> Option<Vec<(String, String)>> {
        struct Pairs;
        impl<'de> serde::de::Visitor<'de> for Pairs {
            type Value = Vec<(String, String)>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = map.next_key::<Cow<'de, str>>()? {
                    let v: &'de RawValue = map.next_value()?;
                    out.push((k.into_owned(), v.get().to_string()));
                }
                Ok(out)
            }
        }
        let mut de = serde_json::Deserializer::from_str(line);
        let pairs = serde::Deserializer::deserialize_map(&mut de, Pairs).ok()?;
        de.end().ok()?;
        Some(pairs)
    }

    fn entries(line: &str) -> Option<Vec<(String, String)>> {
        let mut out = Vec::new();
        scan(line, |k, v| {
            out.push((k.to_string(), v.to_string()));
            true
        })
        .then_some(out)
    }

    /// Every line the scanner accepts — seed events, and hundreds of thousands of random
    /// mutations of them (bytes inserted, deleted, replaced by JSON's tricky characters) — is
    /// one serde_json accepts with the same entries; and the plain lines are accepted (the fast
    /// path is taken).
    #[test]
    fn scans_as_serde_json_parses() {
        let plain = [
            r#"{"event_id":"b00000-000001","timestamp":"2026-11-24T10:00:26.953758","user_id":214,"event_type":"click","value":650.61}"#,
            r#" { "a" : -0.5e+3 , "b":true,"c" :false, "d": null ,"e":"","f":0 } "#,
            "{}",
            "\t{\"é\":\"ü ✓\"}\r",
            r#"{"a":1,"a":2}"#,
            r#"{"x":-0,"y":1E5,"z":12.0e-7}"#,
            r#"{"big":1e400,"n":-123456789012345678901234567890}"#,
        ];
        for line in plain {
            let got = entries(line);
            assert!(got.is_some(), "{line} is plain");
            assert_eq!(got, serde_entries(line), "{line}");
        }
        for line in [
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            r#"{"a":1e}"#,
            r#"{"a":-}"#,
            r#"{"a":1,}"#,
            r#"{"a":1} x"#,
            r#"{"a":tru}"#,
            r#"{"a" 1}"#,
            "{\"a\":\"x\u{1}\"}",
            r#"{"a":"x\"y"}"#,
            r#"{"a":[1]}"#,
            r#"{"a":{}}"#,
            r#"{a:1}"#,
            r#"{"a":1"#,
            "[1]",
            "",
        ] {
            assert_eq!(entries(line), None, "{line} is left to serde_json");
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let tricky: &[u8] = b" \t\r\n{}[]:,\"\\-+.eE0123456789tfnulrsa\x01\x7f";
        let (mut accepted, mut tried) = (0, 0);
        for _ in 0..200_000 {
            let mut bytes = plain[rng.random_range(0..plain.len())].as_bytes().to_vec();
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(0..=bytes.len());
                let c = tricky[rng.random_range(0..tricky.len())];
                match rng.random_range(0..3) {
                    0 => bytes.insert(at, c),
                    1 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    _ if at < bytes.len() => bytes[at] = c,
                    _ => {}
                }
            }
            let Ok(line) = std::str::from_utf8(&bytes) else {
                continue;
            };
            tried += 1;
            if let Some(e) = entries(line) {
                accepted += 1;
                assert_eq!(Some(e), serde_entries(line), "{line}");
            }
        }
        assert!(
            accepted > tried / 20 && accepted < tried,
            "{accepted} of {tried} accepted"
        );
    }
}
