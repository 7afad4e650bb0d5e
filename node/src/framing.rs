//! Newline-delimited JSON-RPC framing. Bytes arrive in arbitrary pieces; complete lines leave.
//! A partial line is kept between reads (and only then: an idle session holds no buffer), and a
//! line longer than the limit is an error rather than unbounded buffering.

/// A line longer than the limit arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTooLong;

/// The unfinished tail of the stream, between reads.
#[derive(Debug, Default)]
pub struct LineBuffer {
    carry: Vec<u8>,
}

impl LineBuffer {
    /// Feeds `bytes`, calling `on_line` for each complete line (without its `\n`; a trailing `\r`
    /// and blank lines are dropped).
    pub fn feed(
        &mut self,
        bytes: &[u8],
        max_line: usize,
        mut on_line: impl FnMut(&[u8]),
    ) -> Result<(), LineTooLong> {
        let mut rest = bytes;
        if !self.carry.is_empty() {
            match rest.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    if self.carry.len() + end > max_line {
                        return Err(LineTooLong);
                    }
                    self.carry.extend_from_slice(&rest[..end]);
                    let line = std::mem::take(&mut self.carry);
                    emit(&line, &mut on_line);
                    rest = &rest[end + 1..];
                }
                None => {
                    if self.carry.len() + rest.len() > max_line {
                        return Err(LineTooLong);
                    }
                    self.carry.extend_from_slice(rest);
                    return Ok(());
                }
            }
        }
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            if end > max_line {
                return Err(LineTooLong);
            }
            emit(&rest[..end], &mut on_line);
            rest = &rest[end + 1..];
        }
        if rest.len() > max_line {
            return Err(LineTooLong);
        }
        if !rest.is_empty() {
            self.carry.extend_from_slice(rest);
        }
        // Give back memory a long line took: idle sessions must stay small.
        if self.carry.is_empty() && self.carry.capacity() > 0 {
            self.carry = Vec::new();
        }
        Ok(())
    }

    /// True when a partial line is waiting for its end.
    pub fn has_partial(&self) -> bool {
        !self.carry.is_empty()
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

    fn lines(pieces: &[&[u8]], max: usize) -> (Vec<String>, Result<(), LineTooLong>) {
        let mut buffer = LineBuffer::default();
        let mut out = Vec::new();
        for piece in pieces {
            let result = buffer.feed(piece, max, |l| {
                out.push(String::from_utf8_lossy(l).into_owned())
            });
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
        assert_eq!(lines(&[b"0123456789\n"], 5).1, Err(LineTooLong));
        assert_eq!(lines(&[b"012", b"345", b"678"], 5).1, Err(LineTooLong));
        assert_eq!(lines(&[b"0123456789"], 5).1, Err(LineTooLong));
    }

    #[test]
    fn an_idle_buffer_holds_no_memory() {
        let mut buffer = LineBuffer::default();
        buffer.feed(b"{\"partial\"", 100, |_| {}).unwrap();
        assert!(buffer.has_partial());
        buffer.feed(b":1}\n", 100, |_| {}).unwrap();
        assert!(!buffer.has_partial());
        assert_eq!(buffer.carry.capacity(), 0);
    }
}
