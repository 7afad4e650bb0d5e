//! Human-written durations (`30s`, `1m30s`, `1.5s`, `5min`) and sizes (`4GiB`, `50MiB`) as they
//! appear in cluster files and on the command line (one grammar for both).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration in jiff's "friendly" grammar: `500ms`, `30s`, `1.5s`, `1m30s`, `90s`, `5min`, `2h`, `7d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(pub Duration);

/// A size in bytes written like `512MiB`, `4GiB`, `100GiB` or `50m` (docker's shorthand, binary units).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

const DURATION_HINT: &str = "write numbers with units ms, s, m (or min), h or d, like `30s`, `1.5s`, `1m30s` or `5min` (jiff's friendly duration grammar), at least 0 and in whole milliseconds";
const SIZE_HINT: &str =
    "write a whole number followed by B, KiB, MiB, GiB or TiB, like `512MiB` or `4GiB`";

/// Splits `12abc` into (12, "abc"); None when there is no leading number.
fn split_number(text: &str) -> Option<(u64, &str)> {
    let text = text.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let value = text[..digits].parse().ok()?;
    Some((value, text[digits..].trim()))
}

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // jiff's friendly grammar is what operators type (and what humantime, now unmaintained,
        // accepted); days there are 24 h, which is what a retention or a timeout means.
        static PARSER: jiff::fmt::friendly::SpanParser = jiff::fmt::friendly::SpanParser::new();
        let bad = || format!("`{text}` is not a duration: {DURATION_HINT}");
        let trimmed = text.trim();
        // A bare number has no unit to guess; jiff accepts none either, but say so plainly.
        if trimmed.is_empty() || trimmed.starts_with(['-', '+']) {
            return Err(bad());
        }
        let duration = PARSER
            .parse_unsigned_duration(trimmed)
            .or_else(|_| parse_days(trimmed).ok_or(()))
            .map_err(|_| bad())?;
        if duration.subsec_nanos() % 1_000_000 != 0 {
            return Err(bad());
        }
        Ok(HumanDuration(duration))
    }
}

/// `7d`, `30 days`: days as 24 hours, should the friendly parser refuse calendar units.
fn parse_days(text: &str) -> Option<Duration> {
    let (value, unit) = split_number(text)?;
    matches!(unit, "d" | "day" | "days")
        .then(|| value.checked_mul(86_400).map(Duration::from_secs))
        .flatten()
}

impl fmt::Display for HumanDuration {
    /// Prints the largest unit that represents the value exactly (`7d`, `5m`, `1500ms`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        if millis == 0 {
            // As the user most likely wrote it (`0s`), not `0ms`.
            return f.write_str("0s");
        }
        for (unit, size) in [
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
        ] {
            if millis != 0 && millis.is_multiple_of(size) {
                return write!(f, "{}{unit}", millis / size);
            }
        }
        write!(f, "{millis}ms")
    }
}

impl HumanDuration {
    /// The duration in whole seconds, rounded up (for tools that only take seconds).
    pub fn as_secs_ceil(&self) -> u64 {
        self.0.as_millis().div_ceil(1000) as u64
    }
}

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{text}` is not a size: {SIZE_HINT}");
        let (value, unit) = split_number(text).ok_or_else(bad)?;
        let factor: u64 = match unit {
            "B" | "" => 1,
            "KiB" | "k" | "K" => 1 << 10,
            "MiB" | "m" | "M" => 1 << 20,
            "GiB" | "g" | "G" => 1 << 30,
            "TiB" | "t" | "T" => 1 << 40,
            _ => return Err(bad()),
        };
        value.checked_mul(factor).map(ByteSize).ok_or_else(bad)
    }
}

impl fmt::Display for ByteSize {
    /// Prints the largest binary unit that represents the value exactly (`4GiB`, `1536MiB`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, size) in [
            ("TiB", 1u64 << 40),
            ("GiB", 1 << 30),
            ("MiB", 1 << 20),
            ("KiB", 1 << 10),
        ] {
            if self.0 != 0 && self.0.is_multiple_of(size) {
                return write!(f, "{}{unit}", self.0 / size);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl ByteSize {
    /// Docker's shorthand (`4096m`, `50m`): the daemon and compose read these as binary units.
    pub fn docker_shorthand(&self) -> String {
        if self.0.is_multiple_of(1 << 20) {
            format!("{}m", self.0 >> 20)
        } else if self.0.is_multiple_of(1 << 10) {
            format!("{}k", self.0 >> 10)
        } else {
            format!("{}b", self.0)
        }
    }

    /// An approximate, readable form for measured sizes (`23.5GiB`, `812.3MiB`).
    pub fn approx(&self) -> String {
        let bytes = self.0 as f64;
        for (unit, size) in [
            ("TiB", 1u64 << 40),
            ("GiB", 1 << 30),
            ("MiB", 1 << 20),
            ("KiB", 1 << 10),
        ] {
            if self.0 >= size {
                return format!("{:.1}{unit}", bytes / size as f64);
            }
        }
        format!("{}B", self.0)
    }

    /// Whole gibibytes, rounded up (Colima takes memory and disk in GiB).
    pub fn gib_ceil(&self) -> u64 {
        self.0.div_ceil(1 << 30)
    }
}

macro_rules! text_serde {
    ($ty:ty) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }
    };
}

text_serde!(HumanDuration);
text_serde!(ByteSize);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print() {
        for (text, millis, printed) in [
            ("0s", 0, "0s"),
            ("0ms", 0, "0s"),
            ("500ms", 500, "500ms"),
            ("30s", 30_000, "30s"),
            ("5m", 300_000, "5m"),
            ("90s", 90_000, "90s"),
            ("2h", 7_200_000, "2h"),
            ("7d", 604_800_000, "7d"),
            ("1m30s", 90_000, "90s"),
            ("1.5s", 1_500, "1500ms"),
            ("5min", 300_000, "5m"),
            ("2h 30m", 9_000_000, "150m"),
            ("1.5m", 90_000, "90s"),
        ] {
            let parsed: HumanDuration = text.parse().unwrap();
            assert_eq!(parsed.0.as_millis(), millis, "{text}");
            assert_eq!(parsed.to_string(), printed);
        }
    }

    #[test]
    fn bad_durations_say_how_to_write_one() {
        for text in ["", "5", "5 parsecs", "m5", "-3s", "1.0001ms", "PT5M"] {
            let error = text.parse::<HumanDuration>().unwrap_err();
            assert!(
                error.contains("like `30s`, `1.5s`, `1m30s`"),
                "{text}: {error}"
            );
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// What `Display` prints (into rendered files) parses back to the same duration.
        #[test]
        fn printed_durations_parse_back(millis in 0u64..=100 * 86_400_000) {
            let duration = HumanDuration(Duration::from_millis(millis));
            let parsed: HumanDuration = duration.to_string().parse().unwrap();
            proptest::prop_assert_eq!(parsed, duration);
        }

        /// `XmYs` (how operators write it) is X minutes plus Y seconds.
        #[test]
        fn minutes_and_seconds_add_up(m in 0u64..10_000, s in 0u64..60) {
            let parsed: HumanDuration = format!("{m}m{s}s").parse().unwrap();
            proptest::prop_assert_eq!(parsed.0, Duration::from_secs(m * 60 + s));
        }
    }

    #[test]
    fn sizes_parse_and_print() {
        for (text, bytes, printed, docker) in [
            ("4GiB", 4u64 << 30, "4GiB", "4096m"),
            ("512MiB", 512 << 20, "512MiB", "512m"),
            ("50m", 50 << 20, "50MiB", "50m"),
            ("100GiB", 100 << 30, "100GiB", "102400m"),
            ("1000B", 1000, "1000B", "1000b"),
        ] {
            let parsed: ByteSize = text.parse().unwrap();
            assert_eq!(parsed.0, bytes, "{text}");
            assert_eq!(parsed.to_string(), printed);
            assert_eq!(parsed.docker_shorthand(), docker);
        }
    }

    #[test]
    fn bad_sizes_say_how_to_write_one() {
        for text in ["", "4GB", "four", "4.5GiB"] {
            let error = text.parse::<ByteSize>().unwrap_err();
            assert!(error.contains("like `512MiB`"), "{text}: {error}");
        }
    }
}
