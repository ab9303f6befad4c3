//! CSV safety. Export: cells a spreadsheet would run as a formula get a leading `'` (OWASP's
//! advice), and import takes it off again, so an export imports back exactly.
//!
//! Import: a reader between an upload and the CSV parser that bounds what one row may cost. It follows
//! CSV quoting as the parser does and hands rows on only once they are complete; a row longer
//! than [`MAX_ROW`] is dropped as it streams by (never buffered whole) and replaced by a marker
//! row, and a quote still open at the end of the file is replaced by another. Newlines are kept,
//! so the parser's line numbers stay those of the file.

use std::io::{self, Read};

/// Longest row accepted (bytes, its line break included).
pub const MAX_ROW: usize = 64 * 1024;
/// The row that stands for a row over [`MAX_ROW`].
pub const TOO_LONG: &[u8] = b"\0wagate:row-too-long\0";
/// The row that stands for a quoted field never closed before the end of the file.
pub const UNCLOSED: &[u8] = b"\0wagate:unclosed-quote\0";

/// First characters that make a spreadsheet treat a cell as a formula.
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

fn formula_like(cell: &str) -> bool {
    cell.trim_start_matches('\'').starts_with(FORMULA_START)
}

/// The cell as exported: `'` in front when it (after any leading `'`) starts like a formula.
pub fn defuse(cell: &str) -> std::borrow::Cow<'_, str> {
    if formula_like(cell) {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

/// The cell as imported: the `'` that [`defuse`] adds taken off again.
pub fn restore(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if formula_like(rest) => rest,
        _ => cell,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a field.
    Start,
    /// In a field that did not start with a quote.
    Unquoted,
    /// In a quoted field.
    Quoted,
    /// Just after a quote inside a quoted field (closing, or the first of a doubled quote).
    QuoteInQuoted,
}

/// See the module documentation.
pub struct RowGuard<R> {
    inner: R,
    delimiter: u8,
    state: State,
    /// The row being assembled (at most [`MAX_ROW`] bytes).
    row: Vec<u8>,
    /// Skipping an over-long row: the newlines it has had so far.
    skipping: Option<usize>,
    /// Complete rows ready to be read.
    out: Vec<u8>,
    out_pos: usize,
    chunk: Box<[u8]>,
    eof: bool,
}

impl<R: Read> RowGuard<R> {
    /// Guards `inner`, a CSV with this delimiter.
    pub fn new(inner: R, delimiter: u8) -> Self {
        Self {
            inner,
            delimiter,
            state: State::Start,
            row: Vec::new(),
            skipping: None,
            out: Vec::new(),
            out_pos: 0,
            chunk: vec![0; 16 * 1024].into_boxed_slice(),
            eof: false,
        }
    }

    /// Emits a marker row followed by `newlines` line breaks (the ones the dropped text had).
    fn marker(&mut self, marker: &[u8], newlines: usize) {
        self.out.extend_from_slice(marker);
        self.out.push(b'\n');
        self.out.extend(std::iter::repeat_n(b'\n', newlines));
    }

    /// Advances the quoting state by one byte; true when the byte ends the row.
    fn step(&mut self, b: u8) -> bool {
        let (next, ends) = match (self.state, b) {
            (State::Quoted, b'"') => (State::QuoteInQuoted, false),
            (State::Quoted, _) => (State::Quoted, false),
            (State::Start, b'"') => (State::Quoted, false),
            (State::QuoteInQuoted, b'"') => (State::Quoted, false),
            (_, b'\n' | b'\r') => (State::Start, true),
            (_, d) if d == self.delimiter => (State::Start, false),
            _ => (State::Unquoted, false),
        };
        self.state = next;
        ends
    }

    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            let ends = self.step(b);
            if let Some(newlines) = &mut self.skipping {
                if ends {
                    let n = *newlines;
                    self.skipping = None;
                    self.marker(TOO_LONG, n);
                } else if b == b'\n' {
                    *newlines += 1;
                }
                continue;
            }
            self.row.push(b);
            if ends {
                self.out.append(&mut self.row);
            } else if self.row.len() >= MAX_ROW {
                let newlines = self.row.iter().filter(|c| **c == b'\n').count();
                self.row = Vec::new();
                self.skipping = Some(newlines);
            }
        }
    }

    fn finish(&mut self) {
        if let Some(newlines) = self.skipping.take() {
            self.marker(TOO_LONG, newlines);
        } else if self.state == State::Quoted {
            let newlines = self.row.iter().filter(|c| **c == b'\n').count();
            self.row = Vec::new();
            self.marker(UNCLOSED, newlines);
        } else {
            self.out.append(&mut self.row);
        }
        self.eof = true;
    }
}

impl<R: Read> Read for RowGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.out_pos == self.out.len() && !self.eof {
            self.out.clear();
            self.out_pos = 0;
            let n = self.inner.read(&mut self.chunk)?;
            if n == 0 {
                self.finish();
            } else {
                let chunk = std::mem::take(&mut self.chunk);
                self.feed(&chunk[..n]);
                self.chunk = chunk;
            }
        }
        let n = buf.len().min(self.out.len() - self.out_pos);
        buf[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
        self.out_pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guarded(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        RowGuard::new(input, b',').read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn formula_cells_are_defused_and_restored_exactly() {
        for (cell, exported) in [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("@SUM(1)", "'@SUM(1)"),
            ("+cmd", "'+cmd"),
            ("-1+1", "'-1+1"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("'=already", "''=already"),
            ("O'Brien", "O'Brien"),
            ("'quoted'", "'quoted'"),
            ("plain", "plain"),
        ] {
            assert_eq!(defuse(cell), exported, "{cell:?}");
            assert_eq!(restore(exported), cell, "{cell:?}");
        }
        // A phone typed with a protective quote imports as the number.
        assert_eq!(restore("'+14155550100"), "+14155550100");
    }

    #[test]
    fn ordinary_csv_passes_unchanged() {
        let csv =
            b"phone,name\r\n+1415,\"Smith, \"\"Jo\"\"\nline two\"\n+1416,5'11\" tall\n+1417,x";
        assert_eq!(guarded(csv), csv.to_vec());
    }

    #[test]
    fn an_over_long_row_becomes_a_marker_with_its_newlines() {
        let mut csv = b"phone\n".to_vec();
        csv.extend_from_slice(b"\"");
        csv.extend(std::iter::repeat_n(b'a', MAX_ROW));
        csv.extend_from_slice(b"\nb\"\n+1415\n");
        let out = guarded(&csv);
        let mut want = b"phone\n".to_vec();
        want.extend_from_slice(TOO_LONG);
        want.extend_from_slice(b"\n\n+1415\n");
        assert_eq!(out, want);
    }

    #[test]
    fn a_quote_never_closed_becomes_a_marker() {
        let out = guarded(b"phone,name\n+1415,\"open\n+1416,x\n+1417,y\n");
        let mut want = b"phone,name\n".to_vec();
        want.extend_from_slice(UNCLOSED);
        want.extend_from_slice(b"\n\n\n\n");
        assert_eq!(out, want);
    }
}
