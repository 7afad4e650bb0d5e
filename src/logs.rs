//! `erlmcp-gen logs`: the nodes' lines (and Prometheus's with `--prometheus`), each prefixed
//! with its source's name, aligned and colored on a terminal, merged in time order. Native
//! clusters are read from the state directory's log files, Docker ones through the engine's
//! logs API; `--follow` keeps printing new lines until Ctrl-C.

use std::collections::VecDeque;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anstyle::{AnsiColor, Style};
use jiff::Timestamp;

/// Lines kept per source when `--tail` is not given: reading a long-lived node's whole log
/// into memory is what this bound prevents.
pub const DEFAULT_MAX_LINES: usize = 100_000;
/// The longest line kept whole; longer ones are cut (a node logs JSON lines far shorter).
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// How often `--follow` looks for new lines in a native cluster's files.
pub const FOLLOW_POLL: Duration = Duration::from_millis(250);

/// What to show.
#[derive(Debug, Clone, Default)]
pub struct LogRequest {
    /// Sources by name (`node1`, `prometheus`); empty: every node.
    pub sources: Vec<String>,
    /// Only the last N lines of each source.
    pub tail: Option<usize>,
    /// Only lines newer than this.
    pub since: Option<Duration>,
    /// Print each line's time before it.
    pub timestamps: bool,
    /// Include Prometheus's log.
    pub prometheus: bool,
}

impl LogRequest {
    /// The sources to read, from the cluster's node names.
    pub fn sources_of(&self, nodes: &[String]) -> Result<Vec<String>, String> {
        let mut sources: Vec<String> = if self.sources.is_empty() {
            nodes.to_vec()
        } else {
            for name in &self.sources {
                if !nodes.contains(name) && name != "prometheus" {
                    return Err(format!(
                        "no node `{name}` in this cluster; it has {}",
                        nodes.join(", ")
                    ));
                }
            }
            self.sources.clone()
        };
        if self.prometheus && !sources.iter().any(|s| s == "prometheus") {
            sources.push("prometheus".into());
        }
        Ok(sources)
    }

    /// Lines kept per source.
    pub fn max_lines(&self) -> usize {
        self.tail
            .unwrap_or(DEFAULT_MAX_LINES)
            .min(DEFAULT_MAX_LINES)
    }
}

/// One line of one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Node name, or `prometheus`.
    pub source: String,
    /// When it was written, when the line says (or its source's previous line did).
    pub at: Option<Timestamp>,
    /// The line, without its newline.
    pub text: String,
}

/// The time a line carries: erlmcp-node's JSON `"timestamp"`, Prometheus's logfmt `ts=`, or the
/// RFC 3339 prefix Docker adds with `timestamps`.
pub fn line_time(text: &str) -> Option<Timestamp> {
    let field = if let Some(rest) = text.split("\"timestamp\":\"").nth(1) {
        rest.split('"').next()?
    } else if let Some(rest) = text.strip_prefix("ts=") {
        rest.split(' ').next()?
    } else {
        text.split(' ').next()?
    };
    field.parse().ok()
}

/// Lines of one source's text, each timed by itself or by the line before it.
pub fn parse_lines(source: &str, text: &str) -> Vec<LogLine> {
    let mut last = None;
    text.lines()
        .map(|line| {
            let at = line_time(line).or(last);
            last = at;
            LogLine {
                source: source.to_string(),
                at,
                text: cut(line),
            }
        })
        .collect()
}

fn cut(line: &str) -> String {
    if line.len() <= MAX_LINE_BYTES {
        return line.to_string();
    }
    let mut end = MAX_LINE_BYTES;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}

/// Keeps what the request asks for of one source: newer than `since` (against `now`), the last
/// `tail` of those.
pub fn select(lines: Vec<LogLine>, request: &LogRequest, now: Timestamp) -> Vec<LogLine> {
    let since = request.since.and_then(|d| {
        let d = jiff::SignedDuration::try_from(d).ok()?;
        now.checked_sub(d).ok()
    });
    let mut kept: VecDeque<LogLine> = VecDeque::new();
    if request.max_lines() == 0 {
        return Vec::new();
    }
    for line in lines {
        if since.is_some_and(|since| line.at.is_none_or(|at| at < since)) {
            continue;
        }
        if kept.len() == request.max_lines() {
            kept.pop_front();
        }
        kept.push_back(line);
    }
    kept.into()
}

/// Every source's lines in time order; lines of one source keep their order, and untimed lines
/// come first.
pub fn merge(per_source: Vec<Vec<LogLine>>) -> Vec<LogLine> {
    let mut all: Vec<LogLine> = per_source.into_iter().flatten().collect();
    all.sort_by_key(|line| line.at);
    all
}

/// Writes lines as `node1      | text`, the names aligned and each source in its own color.
#[derive(Debug)]
pub struct Printer {
    sources: Vec<String>,
    width: usize,
    timestamps: bool,
}

const COLORS: [AnsiColor; 6] = [
    AnsiColor::Cyan,
    AnsiColor::Yellow,
    AnsiColor::Green,
    AnsiColor::Magenta,
    AnsiColor::Blue,
    AnsiColor::Red,
];

impl Printer {
    /// A printer for these sources.
    pub fn new(sources: &[String], timestamps: bool) -> Self {
        Printer {
            width: sources.iter().map(|s| s.chars().count()).max().unwrap_or(0),
            sources: sources.to_vec(),
            timestamps,
        }
    }

    /// One line, styled (the terminal layer drops the styles where color is off).
    pub fn format(&self, line: &LogLine) -> String {
        let index = self
            .sources
            .iter()
            .position(|s| *s == line.source)
            .unwrap_or(0);
        let style = Style::new().fg_color(Some(COLORS[index % COLORS.len()].into()));
        let time = match (self.timestamps, line.at) {
            (true, Some(at)) => format!("{at} "),
            (true, None) => "- ".to_string(),
            (false, _) => String::new(),
        };
        format!(
            "{style}{:<width$} |{style:#} {time}{}",
            line.source,
            line.text,
            width = self.width
        )
    }
}

/// A native cluster's log file for a source.
pub fn native_log_path(state_dir: &Path, source: &str) -> PathBuf {
    state_dir.join("logs").join(format!("{source}.log"))
}

/// Reads the native cluster's files: each source's selected lines, and where each file ended
/// (for `--follow`). A missing file is an empty source.
pub fn read_native(
    state_dir: &Path,
    sources: &[String],
    request: &LogRequest,
) -> std::io::Result<(Vec<Vec<LogLine>>, Vec<u64>)> {
    let now = Timestamp::now();
    let mut lines = Vec::new();
    let mut ends = Vec::new();
    for source in sources {
        let path = native_log_path(state_dir, source);
        let text = match std::fs::read(&path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        ends.push(text.len() as u64);
        lines.push(select(parse_lines(source, &text), request, now));
    }
    Ok((lines, ends))
}

/// Follows one native log file from an offset: complete new lines on each call.
#[derive(Debug)]
pub struct FileFollower {
    source: String,
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
    last: Option<Timestamp>,
}

impl FileFollower {
    /// Starts at `offset` (where the first read ended).
    pub fn new(state_dir: &Path, source: &str, offset: u64) -> Self {
        FileFollower {
            source: source.to_string(),
            path: native_log_path(state_dir, source),
            offset,
            partial: Vec::new(),
            last: None,
        }
    }

    /// The lines completed since the last call. A file that shrank (a restarted process
    /// truncating it) is read again from its start.
    pub fn poll(&mut self) -> std::io::Result<Vec<LogLine>> {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return Ok(Vec::new());
        };
        let len = file.metadata()?.len();
        if len < self.offset {
            self.offset = 0;
            self.partial.clear();
        }
        file.seek(SeekFrom::Start(self.offset))?;
        let mut fresh = Vec::new();
        file.take(len - self.offset).read_to_end(&mut fresh)?;
        self.offset += fresh.len() as u64;
        self.partial.extend_from_slice(&fresh);
        let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') else {
            // No newline yet: keep waiting, but never hold more than one line's bound.
            if self.partial.len() > MAX_LINE_BYTES {
                self.partial.push(b'\n');
                return self.poll_complete(self.partial.len() - 1);
            }
            return Ok(Vec::new());
        };
        self.poll_complete(end)
    }

    fn poll_complete(&mut self, end: usize) -> std::io::Result<Vec<LogLine>> {
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        let mut lines = parse_lines(&self.source, &String::from_utf8_lossy(&complete));
        for line in &mut lines {
            line.at = line.at.or(self.last);
            self.last = line.at;
        }
        Ok(lines)
    }
}

/// Where a Docker `--follow` stream picks up after the history it printed. The engine's `since`
/// is in whole seconds, so it sends the last printed second again: lines before the last printed
/// one are dropped, and of those stamped the same as it, as many as were printed, so a later line
/// with the same stamp is still shown.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FollowSeam {
    last: Option<Timestamp>,
    printed_at_last: usize,
}

impl FollowSeam {
    /// The seam after one source's printed history (in order).
    pub fn after(printed: &[LogLine]) -> Self {
        let last = printed.iter().rev().find_map(|line| line.at);
        FollowSeam {
            last,
            printed_at_last: printed
                .iter()
                .filter(|line| line.at.is_some() && line.at == last)
                .count(),
        }
    }

    /// The whole second to ask the engine for lines since (`now` when nothing was printed).
    pub fn since_second(&self, now: Timestamp) -> i64 {
        self.last.unwrap_or(now).as_second()
    }

    /// Whether a line of the follow stream is new (each resent one is refused once).
    pub fn admits(&mut self, line: &LogLine) -> bool {
        match (self.last, line.at) {
            (Some(last), Some(at)) if at < last => false,
            (Some(last), Some(at)) if at == last && self.printed_at_last > 0 => {
                self.printed_at_last -= 1;
                false
            }
            _ => true,
        }
    }
}

/// Splits Docker's `2026-11-30T13:08:11.626772123Z text` into its time and text.
pub fn split_docker_timestamp(line: &str) -> (Option<Timestamp>, &str) {
    match line.split_once(' ') {
        Some((time, rest)) => match time.parse() {
            Ok(at) => (Some(at), rest),
            Err(_) => (None, line),
        },
        None => (None, line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: &str = r#"{"timestamp":"2026-11-30T13:08:11.626772Z","level":"INFO","fields":{"message":"serving"}}
{"timestamp":"2026-11-30T13:08:13.000000Z","level":"INFO","fields":{"message":"later"}}
"#;
    const PROMETHEUS: &str = "ts=2026-11-30T13:08:12.057Z caller=main.go:551 level=info msg=\"Starting\"\ncontinuation without a time\n";

    #[test]
    fn lines_are_timed_by_their_own_format() {
        let at = |s: &str| s.parse::<Timestamp>().ok();
        assert_eq!(
            line_time(NODE.lines().next().unwrap()),
            at("2026-11-30T13:08:11.626772Z")
        );
        assert_eq!(
            line_time(PROMETHEUS.lines().next().unwrap()),
            at("2026-11-30T13:08:12.057Z")
        );
        assert_eq!(line_time("no time here"), None);
        let (time, text) = split_docker_timestamp("2026-11-30T13:08:11.626772123Z hello there");
        assert_eq!((time.is_some(), text), (true, "hello there"));
    }

    #[test]
    fn sources_merge_in_time_order_and_untimed_lines_follow_their_predecessor() {
        let merged = merge(vec![
            parse_lines("node1", NODE),
            parse_lines("prometheus", PROMETHEUS),
        ]);
        let order: Vec<(&str, &str)> = merged
            .iter()
            .map(|l| (l.source.as_str(), &l.text[..l.text.len().min(12)]))
            .collect();
        assert_eq!(
            order,
            [
                ("node1", "{\"timestamp\""),
                ("prometheus", "ts=2026-11-3"),
                ("prometheus", "continuation"),
                ("node1", "{\"timestamp\""),
            ]
        );
    }

    #[test]
    fn tail_and_since_select_per_source() {
        let lines = parse_lines("node1", NODE);
        let now: Timestamp = "2026-11-30T13:08:14Z".parse().unwrap();
        let tail = LogRequest {
            tail: Some(1),
            ..LogRequest::default()
        };
        assert_eq!(select(lines.clone(), &tail, now).len(), 1);
        let none = LogRequest {
            tail: Some(0),
            ..LogRequest::default()
        };
        assert!(select(lines.clone(), &none, now).is_empty());
        let since = LogRequest {
            since: Some(Duration::from_secs(2)),
            ..LogRequest::default()
        };
        let kept = select(lines, &since, now);
        assert_eq!(kept.len(), 1);
        assert!(kept[0].text.contains("later"));
    }

    #[test]
    fn a_follow_stream_drops_what_was_printed_and_keeps_same_stamped_new_lines() {
        let line = |at: &str, text: &str| LogLine {
            source: "node1".into(),
            at: Some(at.parse().unwrap()),
            text: text.into(),
        };
        let printed = [
            line("2026-11-30T10:00:01.5Z", "a"),
            line("2026-11-30T10:00:02.5Z", "b"),
        ];
        let mut seam = FollowSeam::after(&printed);
        assert_eq!(
            seam.since_second(Timestamp::UNIX_EPOCH),
            "2026-11-30T10:00:02Z"
                .parse::<Timestamp>()
                .unwrap()
                .as_second()
        );
        // The engine resends the last second: b again, then a new line with b's stamp, then c.
        let resent = [
            line("2026-11-30T10:00:02.1Z", "earlier in that second"),
            line("2026-11-30T10:00:02.5Z", "b"),
            line("2026-11-30T10:00:02.5Z", "same stamp, new"),
            line("2026-11-30T10:00:03Z", "c"),
        ];
        let shown: Vec<&str> = resent
            .iter()
            .filter(|l| seam.admits(l))
            .map(|l| l.text.as_str())
            .collect();
        assert_eq!(shown, ["same stamp, new", "c"]);
        // Nothing printed: everything from now on is new.
        let mut fresh = FollowSeam::after(&[]);
        assert!(fresh.admits(&printed[0]));
    }

    #[test]
    fn names_are_aligned() {
        let printer = Printer::new(&["node1".into(), "prometheus".into()], false);
        let line = LogLine {
            source: "node1".into(),
            at: None,
            text: "hi".into(),
        };
        let plain = anstream::adapter::strip_str(&printer.format(&line)).to_string();
        assert_eq!(plain, "node1      | hi");
    }

    #[test]
    fn unknown_sources_are_refused_by_name() {
        let request = LogRequest {
            sources: vec!["node9".into()],
            ..LogRequest::default()
        };
        let error = request
            .sources_of(&["node1".into(), "node2".into()])
            .unwrap_err();
        assert!(
            error.contains("node9") && error.contains("node1, node2"),
            "{error}"
        );
    }

    #[test]
    fn a_follower_returns_only_complete_new_lines() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("logs")).unwrap();
        let path = native_log_path(dir.path(), "node1");
        std::fs::write(&path, "old\n").unwrap();
        let mut follower = FileFollower::new(dir.path(), "node1", 4);
        assert!(follower.poll().unwrap().is_empty());
        use std::io::Write as _;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(b"new one\nhalf").unwrap();
        let lines = follower.poll().unwrap();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].text, "new one");
        file.write_all(b" done\n").unwrap();
        assert_eq!(follower.poll().unwrap()[0].text, "half done");
    }
}
