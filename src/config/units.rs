//! Human-written durations (`30s`, `5m`) and sizes (`4GiB`, `50MiB`) as they appear in cluster files.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written like `500ms`, `30s`, `5m`, `2h` or `7d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(pub Duration);

/// A size in bytes written like `512MiB`, `4GiB`, `100GiB` or `50m` (docker's shorthand, binary units).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

const DURATION_HINT: &str = "write a whole number followed by ms, s, m, h or d, like `30s` or `5m`";
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
        let bad = || format!("`{text}` is not a duration: {DURATION_HINT}");
        let (value, unit) = split_number(text).ok_or_else(bad)?;
        let millis_per_unit: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(bad()),
        };
        let millis = value.checked_mul(millis_per_unit).ok_or_else(bad)?;
        Ok(HumanDuration(Duration::from_millis(millis)))
    }
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
        ] {
            let parsed: HumanDuration = text.parse().unwrap();
            assert_eq!(parsed.0.as_millis(), millis, "{text}");
            assert_eq!(parsed.to_string(), printed);
        }
    }

    #[test]
    fn bad_durations_say_how_to_write_one() {
        for text in ["", "5", "5 minutes", "m5", "1.5s", "-3s"] {
            let error = text.parse::<HumanDuration>().unwrap_err();
            assert!(error.contains("like `30s`"), "{text}: {error}");
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
