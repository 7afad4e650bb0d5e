//! Newline-delimited JSON-RPC framing. Bytes arrive in arbitrary pieces; complete lines leave.
//! A partial line is kept between reads (and only then: an idle session holds no buffer). Two
//! bounds hold while reading, before anything grows: one line is at most `max_line` bytes, and
//! every connection's partial lines (and HTTP bodies being read, through [`Reservation`]s)
//! together hold at most the node's [`InputBudget`].

use std::sync::atomic::{AtomicUsize, Ordering};

/// Why a stream's framing ended it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// A line longer than the limit arrived.
    LineTooLong,
    /// The node's budget for partially read input is spent (many connections sent long
    /// unfinished lines at once).
    BudgetExhausted,
}

/// The node-wide budget of bytes held in partial lines, shared by every connection: without
/// it, N connections each sending `max_line - 1` bytes without a newline hold N × `max_line`.
#[derive(Debug)]
pub struct InputBudget {
    limit: usize,
    held: AtomicUsize,
}

impl InputBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        InputBudget {
            limit,
            held: AtomicUsize::new(0),
        }
    }

    /// Bytes held in partial lines right now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Takes `bytes` for a body read whole (an HTTP request), until the reservation drops; None
    /// when the budget has no room for them.
    pub fn reserve(&self, bytes: usize) -> Option<Reservation<'_>> {
        // Lazily: a Reservation built and dropped would give back bytes never taken.
        self.try_take(bytes).then(|| Reservation {
            budget: self,
            bytes,
        })
    }

    fn try_take(&self, bytes: usize) -> bool {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(bytes).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: usize) {
        if bytes > 0 {
            self.held.fetch_sub(bytes, Ordering::AcqRel);
        }
    }
}

/// Bytes taken from an [`InputBudget`], given back on drop.
#[derive(Debug)]
pub struct Reservation<'b> {
    budget: &'b InputBudget,
    bytes: usize,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
    }
}

/// The unfinished tail of one stream, between reads. Its capacity is what it charges to the
/// budget, so the bound covers what is allocated, not only what is used.
#[derive(Debug)]
pub struct LineBuffer<'b> {
    carry: Vec<u8>,
    max_line: usize,
    budget: &'b InputBudget,
}

impl<'b> LineBuffer<'b> {
    /// An empty buffer for lines of at most `max_line` bytes, charging `budget`.
    pub fn new(max_line: usize, budget: &'b InputBudget) -> Self {
        LineBuffer {
            carry: Vec::new(),
            max_line,
            budget,
        }
    }

    /// Feeds `bytes`, calling `on_line` for each complete line (without its `\n`; a trailing `\r`
    /// and blank lines are dropped). Lines completed before an error are still delivered.
    pub fn feed(&mut self, bytes: &[u8], mut on_line: impl FnMut(&[u8])) -> Result<(), FrameError> {
        let mut rest = bytes;
        if !self.carry.is_empty() {
            match rest.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    if self.carry.len() + end > self.max_line {
                        return Err(FrameError::LineTooLong);
                    }
                    self.append(&rest[..end])?;
                    emit(&self.carry, &mut on_line);
                    self.release();
                    rest = &rest[end + 1..];
                }
                None => return self.append(rest),
            }
        }
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            if end > self.max_line {
                return Err(FrameError::LineTooLong);
            }
            emit(&rest[..end], &mut on_line);
            rest = &rest[end + 1..];
        }
        self.append(rest)
    }

    /// True when a partial line is waiting for its end.
    pub fn has_partial(&self) -> bool {
        !self.carry.is_empty()
    }

    /// Bytes this buffer holds allocated (and charges to the budget).
    pub fn allocated(&self) -> usize {
        self.carry.capacity()
    }

    /// Keeps `bytes` as (part of) the partial line, growing within both bounds first.
    fn append(&mut self, bytes: &[u8]) -> Result<(), FrameError> {
        if bytes.is_empty() {
            return Ok(());
        }
        let needed = self.carry.len() + bytes.len();
        if needed > self.max_line {
            return Err(FrameError::LineTooLong);
        }
        let capacity = self.carry.capacity();
        if needed > capacity {
            // Doubling keeps a slow drip linear; the cap keeps the allocation within max_line.
            let grown = needed.max(capacity * 2).max(64).min(self.max_line);
            if !self.budget.try_take(grown - capacity) {
                return Err(FrameError::BudgetExhausted);
            }
            self.carry.reserve_exact(grown - self.carry.len());
            // The allocator may hand out more than asked (Vec<u8> does not today): charge it too.
            let rounded = self.carry.capacity() - grown;
            if rounded > 0 {
                self.budget.held.fetch_add(rounded, Ordering::AcqRel);
            }
        }
        self.carry.extend_from_slice(bytes);
        Ok(())
    }

    /// Gives the partial line's memory back: idle sessions must stay small.
    fn release(&mut self) {
        self.budget.give_back(self.carry.capacity());
        self.carry = Vec::new();
    }
}

impl Drop for LineBuffer<'_> {
    fn drop(&mut self) {
        self.budget.give_back(self.carry.capacity());
    }
}

fn emit(line: &[u8], on_line: &mut impl FnMut(&[u8])) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if !line.iter().all(u8::is_ascii_whitespace) {
        on_line(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lines(pieces: &[&[u8]], max: usize) -> (Vec<String>, Result<(), FrameError>) {
        let budget = InputBudget::new(usize::MAX);
        let mut buffer = LineBuffer::new(max, &budget);
        let mut out = Vec::new();
        for piece in pieces {
            let result = buffer.feed(piece, |l| out.push(String::from_utf8_lossy(l).into_owned()));
            if result.is_err() {
                return (out, result);
            }
        }
        (out, Ok(()))
    }

    #[test]
    fn splits_lines_across_reads() {
        let (out, result) = lines(&[b"{\"a\":1}\n{\"b\"", b":2}\r\n\n", b"{\"c\":3}\n"], 100);
        assert_eq!(out, ["{\"a\":1}", "{\"b\":2}", "{\"c\":3}"]);
        assert_eq!(result, Ok(()));
    }

    #[test]
    fn one_byte_at_a_time_works() {
        let text = b"{\"slow\":\"drip\"}\n";
        let pieces: Vec<&[u8]> = text.chunks(1).collect();
        let (out, _) = lines(&pieces, 100);
        assert_eq!(out, ["{\"slow\":\"drip\"}"]);
    }

    #[test]
    fn too_long_lines_are_errors_whether_whole_or_in_pieces() {
        let too_long = Err(FrameError::LineTooLong);
        assert_eq!(lines(&[b"0123456789\n"], 5).1, too_long);
        assert_eq!(lines(&[b"012", b"345", b"678"], 5).1, too_long);
        assert_eq!(lines(&[b"0123456789"], 5).1, too_long);
    }

    #[test]
    fn an_idle_buffer_holds_no_memory_and_no_budget() {
        let budget = InputBudget::new(1000);
        let mut buffer = LineBuffer::new(100, &budget);
        buffer.feed(b"{\"partial\"", |_| {}).unwrap();
        assert!(buffer.has_partial());
        assert!(budget.held() > 0);
        buffer.feed(b":1}\n", |_| {}).unwrap();
        assert!(!buffer.has_partial());
        assert_eq!(buffer.carry.capacity(), 0);
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn partial_lines_of_many_streams_share_one_budget() {
        // Three streams, each within its own line limit, together past the node's budget.
        let budget = InputBudget::new(2_500);
        let mut streams: Vec<LineBuffer> =
            (0..3).map(|_| LineBuffer::new(1_000, &budget)).collect();
        let chunk = [b'x'; 900];
        assert_eq!(streams[0].feed(&chunk, |_| {}), Ok(()));
        assert_eq!(streams[1].feed(&chunk, |_| {}), Ok(()));
        assert_eq!(
            streams[2].feed(&chunk, |_| {}),
            Err(FrameError::BudgetExhausted)
        );
        assert!(budget.held() <= budget.limit());
        // A stream that ends frees its share for the others.
        streams.truncate(1);
        let mut again = LineBuffer::new(1_000, &budget);
        assert_eq!(again.feed(&chunk, |_| {}), Ok(()));
        drop((streams, again));
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn reservations_share_the_budget_and_give_it_back() {
        let budget = InputBudget::new(1_000);
        let body = budget.reserve(800).expect("room");
        let mut stream = LineBuffer::new(1_000, &budget);
        assert_eq!(
            stream.feed(&[b'x'; 300], |_| {}),
            Err(FrameError::BudgetExhausted)
        );
        assert!(budget.reserve(300).is_none());
        drop(body);
        assert_eq!(budget.held(), 0);
        assert_eq!(stream.feed(&[b'x'; 300], |_| {}), Ok(()));
    }

    /// The reference: the complete lines of `stream`, as the framing should deliver them.
    fn expected_lines(stream: &[u8], max: usize) -> (Vec<Vec<u8>>, bool) {
        let mut out = Vec::new();
        let mut parts = stream.split(|&b| b == b'\n').peekable();
        while let Some(part) = parts.next() {
            let last = parts.peek().is_none();
            if part.len() > max {
                return (out, true);
            }
            if !last {
                let line = part.strip_suffix(b"\r").unwrap_or(part);
                if !line.iter().all(u8::is_ascii_whitespace) {
                    out.push(line.to_vec());
                }
            }
        }
        (out, false)
    }

    fn stream_and_cuts() -> impl Strategy<Value = (Vec<u8>, Vec<usize>)> {
        // Newlines and `\r` are frequent so short and long lines, blanks and CRLF all show up.
        let byte = prop_oneof![3 => any::<u8>(), 1 => Just(b'\n'), 1 => Just(b'\r')];
        (
            proptest::collection::vec(byte, 0..600),
            proptest::collection::vec(0usize..600, 0..20),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_chunking_yields_exactly_the_complete_lines_within_bounds(
            (stream, mut cuts) in stream_and_cuts(),
            max in 1usize..80,
        ) {
            cuts.retain(|&c| c <= stream.len());
            cuts.sort_unstable();
            let budget = InputBudget::new(usize::MAX);
            let mut buffer = LineBuffer::new(max, &budget);
            let mut got = Vec::new();
            let mut failed = false;
            let mut start = 0;
            for end in cuts.into_iter().chain([stream.len()]) {
                let result = buffer.feed(&stream[start..end], |l| got.push(l.to_vec()));
                prop_assert!(buffer.allocated() <= max, "holds {} > {max}", buffer.allocated());
                prop_assert_eq!(budget.held(), buffer.allocated());
                start = end;
                if result.is_err() {
                    prop_assert_eq!(result, Err(FrameError::LineTooLong));
                    failed = true;
                    break;
                }
            }
            let (want, too_long) = expected_lines(&stream, max);
            prop_assert_eq!(failed, too_long);
            if failed {
                // Lines before the offending one came out; none after it.
                prop_assert!(got.len() <= want.len());
                prop_assert_eq!(&got[..], &want[..got.len()]);
            } else {
                prop_assert_eq!(got, want);
            }
        }

        #[test]
        fn many_streams_never_hold_more_than_the_budget(
            feeds in proptest::collection::vec((0usize..4, proptest::collection::vec(prop_oneof![9 => Just(b'x'), 1 => Just(b'\n')], 0..300)), 0..40),
            limit in 0usize..1_000,
        ) {
            let budget = InputBudget::new(limit);
            let mut streams: Vec<Option<LineBuffer>> = (0..4).map(|_| Some(LineBuffer::new(400, &budget))).collect();
            for (which, bytes) in feeds {
                if let Some(stream) = streams[which].as_mut()
                    && stream.feed(&bytes, |_| {}).is_err()
                {
                    streams[which] = None; // the transport closes it
                }
                prop_assert!(budget.held() <= limit);
                let total: usize = streams.iter().flatten().map(LineBuffer::allocated).sum();
                prop_assert_eq!(budget.held(), total);
            }
            drop(streams);
            prop_assert_eq!(budget.held(), 0);
        }
    }
}
