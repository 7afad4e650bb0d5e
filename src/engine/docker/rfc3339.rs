//! The engine's RFC 3339 timestamps (`State.StartedAt`) as an uptime, without a date crate.

/// Seconds from an RFC 3339 timestamp (`2026-11-26T20:11:02.123Z`) to now.
pub(crate) fn seconds_since_rfc3339(text: &str) -> Option<u64> {
    let (date, time) = text.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.get(..8)?.split(':').map(|p| p.parse::<i64>().ok());
    let (hour, minute, second) = (t.next()??, t.next()??, t.next()??);
    if year < 1971 {
        return None; // "0001-01-01T00:00:00Z" means never started
    }
    // Days from civil date (Howard Hinnant's algorithm, public domain description).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let started = days * 86_400 + hour * 3600 + minute * 60 + second;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs() as i64;
    u64::try_from(now - started).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_start_times_become_uptimes() {
        assert_eq!(seconds_since_rfc3339("0001-01-01T00:00:00Z"), None);
        let uptime = seconds_since_rfc3339("2020-01-01T00:00:00.123456Z").unwrap();
        assert!(uptime > 86_400 * 365);
    }
}
