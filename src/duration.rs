//! Durations as Spark writes them: `"10 minutes"`, `"5 minutes"`, `"1 minute"`, `"30 seconds"`,
//! and the short forms `"10m"`, `"30s"`, `"500ms"`, `"1h"`.

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a duration (examples: `10 minutes`, `30 seconds`, `5s`, `500ms`)")]
pub struct DurationError(pub String);

/// Parses a duration to milliseconds. Several parts add up (`"1 minute 30 seconds"`).
pub fn parse_duration_ms(text: &str) -> Result<i64, DurationError> {
    let err = || DurationError(text.to_string());
    let mut total: i64 = 0;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(err());
    }
    let rest_lower = rest.to_ascii_lowercase();
    rest = rest_lower.as_str();
    if let Some(r) = rest.strip_prefix("interval") {
        rest = r.trim_start();
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(err());
        }
        let n: i64 = rest[..digits].parse().map_err(|_| err())?;
        rest = rest[digits..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = rest[unit_len..].trim_start();
        let ms: i64 = match unit {
            "ms" | "millisecond" | "milliseconds" => 1,
            "s" | "sec" | "secs" | "second" | "seconds" => 1_000,
            "m" | "min" | "mins" | "minute" | "minutes" => 60_000,
            "h" | "hour" | "hours" => 3_600_000,
            "d" | "day" | "days" => 86_400_000,
            "w" | "week" | "weeks" => 7 * 86_400_000,
            _ => return Err(err()),
        };
        total = n
            .checked_mul(ms)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(err)?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spark_and_short_forms() {
        assert_eq!(parse_duration_ms("10 minutes"), Ok(600_000));
        assert_eq!(parse_duration_ms("1 minute"), Ok(60_000));
        assert_eq!(parse_duration_ms("30 seconds"), Ok(30_000));
        assert_eq!(parse_duration_ms("5s"), Ok(5_000));
        assert_eq!(parse_duration_ms("500ms"), Ok(500));
        assert_eq!(parse_duration_ms("1 minute 30 seconds"), Ok(90_000));
        assert_eq!(parse_duration_ms("interval 2 hours"), Ok(7_200_000));
        for bad in ["", "ten minutes", "5 fortnights", "5", "-5s"] {
            assert!(parse_duration_ms(bad).is_err(), "{bad}");
        }
    }
}
