//! Spark's datetime patterns (`timestampFormat`, `dateFormat`, …) translated to chrono formats,
//! and Spark's default (pattern-less) date and timestamp forms.
//!
//! Supported pattern letters (Spark 3's `DateTimeFormatter`-based set):
//!
//! | Spark | chrono | meaning |
//! |---|---|---|
//! | `yyyy`, `y`, `uuuu` / `yy` | `%Y` / `%y` | year / two-digit year |
//! | `M`, `MM` / `MMM` / `MMMM` (also `L`) | `%m` / `%b` / `%B` | month number / short / full name |
//! | `d`, `dd` | `%d` | day of month |
//! | `D` | `%j` | day of year |
//! | `H`, `HH` / `h`, `hh` | `%H` / `%I` | hour 0–23 / 1–12 |
//! | `m`, `mm`, `s`, `ss` | `%M`, `%S` | minute, second |
//! | `.S`…`.SSSSSSSSS` | `%.f` | a `.` and 1 to 9 fraction digits |
//! | `SSS`, `SSSSSS`, `SSSSSSSSS` (no `.` before) | `%3f`, `%6f`, `%9f` | exactly that many digits |
//! | `a` | `%p` | AM/PM |
//! | `E`…`EEE` / `EEEE` | `%a` / `%A` | day-of-week name (checked against the date) |
//! | `X`…`XXXXX`, `x`…`xxxxx`, `Z`…`ZZZ`, `ZZZZZ` | `%#z` | `Z` or `±HH[[:]MM]` |
//! | `'text'`, `''` | literal | quoted text, a single quote |
//! | `[…]` | — | an optional section (each combination is tried) |
//!
//! Zone names (`VV`, `z`, `O`, `ZZZZ`), eras, quarters and week-based fields are refused with an
//! error naming the letter. Fields the pattern leaves out default as in Spark: year 1970, month
//! and day 1, time 00:00:00; a value without a zone is UTC (this engine's session time zone).
//! Parsing is somewhat more lenient than Spark's: `M` and `MM` both take one or two digits, and
//! `.SSS` takes 1 to 9 digits (beyond microseconds they are truncated).

use chrono::format::{Parsed, StrftimeItems};
use chrono::{NaiveDate, NaiveDateTime};

use crate::event::{Micros, parse_timestamp};

/// Why a Spark datetime pattern cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("datetime pattern `{pattern}`, position {at}: {why}")]
pub struct PatternError {
    /// The pattern.
    pub pattern: String,
    /// 0-based character position of the problem.
    pub at: usize,
    /// What is wrong and what to write instead.
    pub why: String,
}

/// A compiled Spark datetime pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateTimePattern {
    pattern: String,
    formats: Vec<String>,
}

/// At most this many alternatives from `[…]` optional sections.
const MAX_ALTERNATIVES: usize = 64;

#[derive(Debug)]
enum Node {
    Lit(String),
    Spec(&'static str),
    Optional(Vec<Node>),
}

impl DateTimePattern {
    /// Translates `pattern` (Spark's letters) to chrono formats.
    pub fn compile(pattern: &str) -> Result<Self, PatternError> {
        let chars: Vec<char> = pattern.chars().collect();
        let err = |at: usize, why: String| PatternError {
            pattern: pattern.to_string(),
            at,
            why,
        };
        let mut stack: Vec<Vec<Node>> = vec![Vec::new()];
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let seq = stack.last_mut().expect("the stack is never empty");
            match c {
                '\'' => {
                    if chars.get(i + 1) == Some(&'\'') {
                        seq.push(Node::Lit("'".into()));
                        i += 2;
                        continue;
                    }
                    let mut text = String::new();
                    let mut j = i + 1;
                    loop {
                        match chars.get(j) {
                            None => return Err(err(i, "unterminated quoted text; close it with `'`".into())),
                            Some('\'') if chars.get(j + 1) == Some(&'\'') => {
                                text.push('\'');
                                j += 2;
                            }
                            Some('\'') => break,
                            Some(&ch) => {
                                text.push(ch);
                                j += 1;
                            }
                        }
                    }
                    seq.push(Node::Lit(text));
                    i = j + 1;
                }
                '[' => {
                    stack.push(Vec::new());
                    i += 1;
                }
                ']' => {
                    if stack.len() == 1 {
                        return Err(err(i, "`]` without a matching `[`".into()));
                    }
                    let inner = stack.pop().expect("checked");
                    stack
                        .last_mut()
                        .expect("the stack is never empty")
                        .push(Node::Optional(inner));
                    i += 1;
                }
                c if c.is_ascii_alphabetic() => {
                    let n = chars[i..].iter().take_while(|&&x| x == c).count();
                    let bad = |why: &str| err(i, format!("`{}`: {why}", c.to_string().repeat(n)));
                    let spec = match (c, n) {
                        ('y' | 'u', 2) => "%y",
                        ('y' | 'u', _) => "%Y",
                        ('M' | 'L', 1 | 2) => "%m",
                        ('M' | 'L', 3) => "%b",
                        ('M' | 'L', 4) => "%B",
                        ('d', 1 | 2) => "%d",
                        ('D', 1..=3) => "%j",
                        ('H', 1 | 2) => "%H",
                        ('h', 1 | 2) => "%I",
                        ('m', 1 | 2) => "%M",
                        ('s', 1 | 2) => "%S",
                        ('S', 1..=9) => {
                            if let Some(Node::Lit(prev)) = seq.last_mut()
                                && prev.ends_with('.')
                            {
                                prev.pop();
                                "%.f"
                            } else {
                                match n {
                                    3 => "%3f",
                                    6 => "%6f",
                                    9 => "%9f",
                                    _ => {
                                        return Err(bad(
                                            "a fraction not after `.` must be SSS, SSSSSS or SSSSSSSSS",
                                        ));
                                    }
                                }
                            }
                        }
                        ('a', 1) => "%p",
                        ('E', 1..=3) => "%a",
                        ('E', 4) => "%A",
                        ('X' | 'x', 1..=5) | ('Z', 1..=3 | 5) => "%#z",
                        ('V' | 'z' | 'O' | 'Z', _) => {
                            return Err(bad(
                                "zone names are not supported; use X (Z or +01) or XXX (Z or +01:00)",
                            ));
                        }
                        (
                            'G' | 'Q' | 'q' | 'w' | 'W' | 'Y' | 'e' | 'c' | 'F' | 'k' | 'K' | 'n' | 'N' | 'A'
                            | 'B',
                            _,
                        ) => {
                            return Err(bad("this field is not supported"));
                        }
                        (_, 1..=9) if "yuMLdDHhmsaEXx".contains(c) => {
                            return Err(bad("too many letters"));
                        }
                        _ => return Err(bad("unknown pattern letter; quote literal text as 'text'")),
                    };
                    seq.push(Node::Spec(spec));
                    i += n;
                }
                c => {
                    match seq.last_mut() {
                        Some(Node::Lit(prev)) => prev.push(c),
                        _ => seq.push(Node::Lit(c.to_string())),
                    }
                    i += 1;
                }
            }
        }
        if stack.len() > 1 {
            return Err(err(chars.len(), "`[` without a matching `]`".into()));
        }
        let formats = expand(&stack[0]);
        if formats.len() > MAX_ALTERNATIVES {
            return Err(err(
                0,
                format!("more than {MAX_ALTERNATIVES} combinations of optional sections"),
            ));
        }
        Ok(Self {
            pattern: pattern.to_string(),
            formats,
        })
    }

    /// The Spark pattern.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The chrono formats tried in turn (one per combination of optional sections, the fullest
    /// first).
    pub fn formats(&self) -> &[String] {
        &self.formats
    }

    /// Parses `text`: the date and time, and the zone offset in seconds if the text has one.
    pub fn parse(&self, text: &str) -> Result<(NaiveDateTime, Option<i32>), String> {
        let mut first = None;
        for f in &self.formats {
            match parse_with(text, f) {
                Ok(v) => return Ok(v),
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        Err(format!(
            "`{}` does not match the pattern `{}` ({})",
            short(text),
            self.pattern,
            first.unwrap_or_else(|| "empty pattern".into())
        ))
    }

    /// Parses a timestamp: epoch microseconds, UTC unless the text has a zone.
    pub fn parse_timestamp(&self, text: &str) -> Result<Micros, String> {
        let (dt, offset) = self.parse(text)?;
        Ok(dt.and_utc().timestamp_micros() - i64::from(offset.unwrap_or(0)) * 1_000_000)
    }

    /// Parses a timestamp without a time zone; a text with a zone is refused.
    pub fn parse_timestamp_ntz(&self, text: &str) -> Result<Micros, String> {
        let (dt, offset) = self.parse(text)?;
        if offset.is_some() {
            return Err(format!(
                "`{}` has a time zone, which a timestamp_ntz cannot hold",
                short(text)
            ));
        }
        Ok(dt.and_utc().timestamp_micros())
    }

    /// Parses a date: days since 1970-01-01.
    pub fn parse_date(&self, text: &str) -> Result<i32, String> {
        let (dt, _) = self.parse(text)?;
        Ok(days(dt.date()))
    }
}

fn expand(seq: &[Node]) -> Vec<String> {
    let mut out = vec![String::new()];
    for node in seq {
        match node {
            Node::Lit(t) => {
                let t = t.replace('%', "%%");
                out.iter_mut().for_each(|s| s.push_str(&t));
            }
            Node::Spec(s) => out.iter_mut().for_each(|o| o.push_str(s)),
            Node::Optional(inner) => {
                let mut alts = expand(inner);
                alts.push(String::new());
                let mut next = Vec::with_capacity(out.len() * alts.len());
                for o in &out {
                    for a in &alts {
                        next.push(format!("{o}{a}"));
                    }
                }
                next.truncate(MAX_ALTERNATIVES + 1);
                out = next;
            }
        }
    }
    out
}

fn parse_with(text: &str, format: &str) -> Result<(NaiveDateTime, Option<i32>), String> {
    let mut p = Parsed::new();
    chrono::format::parse(&mut p, text, StrftimeItems::new(format)).map_err(|e| e.to_string())?;
    let e = |r: chrono::ParseResult<()>| r.map_err(|e| e.to_string());
    if p.year().is_none() && p.year_mod_100().is_none() {
        e(p.set_year(1970))?;
    }
    if p.ordinal().is_none() {
        if p.month().is_none() {
            e(p.set_month(1))?;
        }
        if p.day().is_none() {
            e(p.set_day(1))?;
        }
    }
    if p.hour_mod_12().is_none() {
        e(p.set_hour(0))?;
    } else if p.hour_div_12().is_none() {
        e(p.set_ampm(false))?;
    }
    if p.minute().is_none() {
        e(p.set_minute(0))?;
    }
    let date = p.to_naive_date().map_err(|e| e.to_string())?;
    let time = p.to_naive_time().map_err(|e| e.to_string())?;
    Ok((date.and_time(time), p.offset()))
}

fn days(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32
}

fn short(text: &str) -> String {
    const MAX: usize = 60;
    if text.len() <= MAX {
        return text.to_string();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Spark's pattern-less date forms (`stringToDate`): `yyyy`, `yyyy-[m]m`, `yyyy-[m]m-[d]d`,
/// optionally followed by `T` or a space and anything (ignored); the year has 4 to 7 digits.
/// Surrounding whitespace is ignored.
fn default_date(text: &str, allow_rest: bool) -> Option<NaiveDate> {
    let b = text.as_bytes();
    let mut pos = 0;
    let mut segs = [0u32, 1, 1];
    for (k, seg) in segs.iter_mut().enumerate() {
        let start = pos;
        let mut v = 0u32;
        while pos < b.len() && b[pos].is_ascii_digit() && pos - start < 7 {
            v = v * 10 + u32::from(b[pos] - b'0');
            pos += 1;
        }
        let n = pos - start;
        *seg = v;
        let ok = if k == 0 {
            (4..=7).contains(&n)
        } else {
            (1..=2).contains(&n)
        };
        if !ok {
            return None;
        }
        match b.get(pos) {
            None => break,
            Some(b'-') if k < 2 => pos += 1,
            Some(b'T' | b' ') if allow_rest => break,
            _ => return None,
        }
    }
    NaiveDate::from_ymd_opt(i32::try_from(segs[0]).ok()?, segs[1], segs[2])
}

/// A date without a `dateFormat`: Spark's forms (see `default_date`), or — Spark 1.5's way of
/// storing dates — a whole number of days since 1970-01-01.
pub fn parse_default_date(text: &str) -> Result<i32, String> {
    let t = text.trim();
    if let Some(d) = default_date(t, true) {
        return Ok(days(d));
    }
    if !t.is_empty()
        && let Ok(n) = t.parse::<i32>()
    {
        return Ok(n);
    }
    Err(format!("`{}` is not a date (yyyy-MM-dd)", short(text)))
}

/// A timestamp without a `timestampFormat`: ISO-8601 as [`parse_timestamp`] reads it (UTC unless
/// the text has a zone), or a date alone (midnight UTC), as Spark's fallback parser reads them.
pub fn parse_default_timestamp(text: &str) -> Result<Micros, String> {
    let t = text.trim();
    match parse_timestamp(t) {
        Ok(ts) => Ok(ts),
        Err(e) => match default_date(t, false) {
            Some(d) => Ok(i64::from(days(d)) * 86_400_000_000),
            None => Err(e.to_string()),
        },
    }
}

/// A `timestamp_ntz` without a `timestampNTZFormat`: as [`parse_default_timestamp`], but a text
/// with a zone is refused (Spark's `parseWithoutTimeZone(allowTimeZone = false)`).
pub fn parse_default_timestamp_ntz(text: &str) -> Result<Micros, String> {
    let t = text.trim();
    let ts = parse_default_timestamp(t)?;
    if t.get(10..)
        .is_some_and(|rest| rest.contains(['Z', 'z', '+', '-']))
    {
        return Err(format!(
            "`{}` has a time zone, which a timestamp_ntz cannot hold",
            short(text)
        ));
    }
    Ok(ts)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Micros = 1_795_514_400_000_000; // 2026-11-24T10:00:00Z

    #[test]
    fn translates_spark_letters() {
        let f = |p: &str| DateTimePattern::compile(p).unwrap().formats().to_vec();
        assert_eq!(f("yyyy-MM-dd'T'HH:mm:ss"), ["%Y-%m-%dT%H:%M:%S"]);
        assert_eq!(
            f("yyyy-MM-dd'T'HH:mm:ss[.SSS][XXX]"),
            [
                "%Y-%m-%dT%H:%M:%S%.f%#z",
                "%Y-%m-%dT%H:%M:%S%.f",
                "%Y-%m-%dT%H:%M:%S%#z",
                "%Y-%m-%dT%H:%M:%S"
            ]
        );
        assert_eq!(f("dd/MM/yy hh:mm a"), ["%d/%m/%y %I:%M %p"]);
        assert_eq!(f("yyyyMMddHHmmssSSS"), ["%Y%m%d%H%M%S%3f"]);
        assert_eq!(
            f("EEE, d MMM yyyy 'at' HH 'o''clock' 100%"),
            ["%a, %d %b %Y at %H o'clock 100%%"]
        );
        assert_eq!(f("''yyyy''"), ["'%Y'"]);
    }

    #[test]
    fn parses_with_patterns() {
        let p = DateTimePattern::compile("yyyy-MM-dd'T'HH:mm:ss[.SSS][XXX]").unwrap();
        assert_eq!(p.parse_timestamp("2026-11-24T10:00:00"), Ok(BASE));
        assert_eq!(p.parse_timestamp("2026-11-24T10:00:00.5"), Ok(BASE + 500_000));
        assert_eq!(p.parse_timestamp("2026-11-24T11:00:00+01:00"), Ok(BASE));
        assert_eq!(p.parse_timestamp("2026-11-24T10:00:00.123Z"), Ok(BASE + 123_000));
        assert!(p.parse_timestamp_ntz("2026-11-24T10:00:00Z").is_err());
        assert_eq!(p.parse_timestamp_ntz("2026-11-24T10:00:00"), Ok(BASE));
        let p = DateTimePattern::compile("dd/MM/yyyy hh:mm a").unwrap();
        assert_eq!(p.parse_timestamp("24/11/2026 10:00 AM"), Ok(BASE));
        assert_eq!(
            p.parse_timestamp("24/11/2026 10:00 PM"),
            Ok(BASE + 12 * 3_600_000_000)
        );
        let p = DateTimePattern::compile("yyyyMMddHHmmssSSS").unwrap();
        assert_eq!(p.parse_timestamp("20261124100000250"), Ok(BASE + 250_000));
        let d = DateTimePattern::compile("dd.MM.yyyy").unwrap();
        assert_eq!(d.parse_date("02.01.1970"), Ok(1));
        let m = DateTimePattern::compile("yyyy-MM").unwrap();
        assert_eq!(m.parse_date("1970-02"), Ok(31));
        let e = d.parse_date("1970-01-02").unwrap_err();
        assert!(e.contains("does not match the pattern `dd.MM.yyyy`"), "{e}");
        assert!(d.parse_date("31.02.2026").is_err());
    }

    #[test]
    fn refuses_unsupported_patterns() {
        for (p, at) in [
            ("yyyy-MM-dd VV", 11),
            ("yyyy G", 5),
            ("HH:mm:ss SS", 9),
            ("'open", 0),
            ("[yyyy", 5),
            ("yyyy]", 4),
            ("yyyy-MMMMM", 5),
            ("yyyy-bb", 5),
        ] {
            let e = DateTimePattern::compile(p).unwrap_err();
            assert_eq!(e.at, at, "{p}: {e}");
        }
    }

    #[test]
    fn default_forms() {
        assert_eq!(parse_default_date("1970-01-02"), Ok(1));
        assert_eq!(parse_default_date("1970-1-2"), Ok(1));
        assert_eq!(parse_default_date("1970"), Ok(0));
        assert_eq!(parse_default_date(" 1970-02 "), Ok(31));
        assert_eq!(parse_default_date("1970-01-02T23:59:59"), Ok(1));
        assert_eq!(parse_default_date("123"), Ok(123));
        assert_eq!(parse_default_date("-1"), Ok(-1));
        for bad in [
            "",
            "1970-13-01",
            "1970-02-30",
            "70-01-01",
            "1970/01/01",
            "1970-01-01x",
            "soon",
        ] {
            assert!(parse_default_date(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_default_timestamp("2026-11-24T10:00:00"), Ok(BASE));
        assert_eq!(parse_default_timestamp("2026-11-24 11:00:00+01:00"), Ok(BASE));
        assert_eq!(parse_default_timestamp("1970-01-02"), Ok(86_400_000_000));
        assert!(parse_default_timestamp("2026-11-24T").is_err());
        assert_eq!(
            parse_default_timestamp_ntz("2026-11-24 10:00:00.000001"),
            Ok(BASE + 1)
        );
        assert!(parse_default_timestamp_ntz("2026-11-24T10:00:00Z").is_err());
        assert!(parse_default_timestamp_ntz("2026-11-24T10:00:00-01:00").is_err());
    }
}
