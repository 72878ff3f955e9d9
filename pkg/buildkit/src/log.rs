//! BuildKit's log chunks cut into lines as a terminal shows them. BuildKit sends a command's
//! output in chunks cut anywhere, mid-line or mid-character; the renderers and the build's
//! failure tail both need whole lines.

/// What a terminal would show of one line of output: the text after its last carriage return
/// (progress bars redraw themselves with `\r`); a line that ends with `\r` keeps what the last
/// redraw wrote.
pub fn as_shown(line: &str) -> &str {
    let line = line.trim_end_matches('\r');
    line.rsplit('\r').next().unwrap_or(line)
}

/// The longest partial line kept while waiting for its end (a command printing a progress bar
/// with `\r` and never a newline must not grow it without bound).
pub const PARTIAL_LIMIT: usize = 8192;

/// Cuts a stream of output chunks into complete lines, keeping a partial last line for the
/// next chunk.
#[derive(Debug, Default, Clone)]
pub struct Lines {
    partial: String,
    /// The first bytes of a character that the chunk ended inside of (BuildKit cuts output
    /// anywhere): the next chunk completes it.
    cut: Vec<u8>,
}

/// How many bytes at the end of `bytes` begin a character that is not complete yet.
fn cut_character(bytes: &[u8]) -> usize {
    for at in (bytes.len().saturating_sub(3)..bytes.len()).rev() {
        match bytes[at] {
            0x80..=0xbf => continue,
            0xc0.. => {
                return match std::str::from_utf8(&bytes[at..]) {
                    Err(e) if e.valid_up_to() == 0 && e.error_len().is_none() => bytes.len() - at,
                    _ => 0,
                }
            }
            _ => return 0,
        }
    }
    0
}

impl Lines {
    /// The complete lines `chunk` ends, as shown on a terminal.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        let mut bytes = std::mem::take(&mut self.cut);
        bytes.extend_from_slice(chunk);
        self.cut = bytes.split_off(bytes.len() - cut_character(&bytes));
        self.partial.push_str(&String::from_utf8_lossy(&bytes));
        let mut lines = Vec::new();
        while let Some(end) = self.partial.find('\n') {
            let rest = self.partial.split_off(end + 1);
            let line = std::mem::replace(&mut self.partial, rest);
            lines.push(as_shown(line.trim_end_matches('\n')).to_owned());
        }
        if self.partial.len() > PARTIAL_LIMIT {
            // Only what the last redraw wrote can still matter.
            let shown = as_shown(&self.partial).to_owned();
            self.partial = shown;
            if self.partial.len() > PARTIAL_LIMIT {
                lines.push(std::mem::take(&mut self.partial));
            }
        }
        lines
    }

    /// The partial line, if any (the output ended without a newline).
    pub fn flush(&mut self) -> Option<String> {
        let cut = std::mem::take(&mut self.cut);
        self.partial.push_str(&String::from_utf8_lossy(&cut));
        let line = std::mem::take(&mut self.partial);
        let shown = as_shown(&line);
        (!shown.is_empty()).then(|| shown.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carriage_returns_keep_the_last_redraw() {
        assert_eq!(as_shown("10%\r50%\r100%"), "100%");
        assert_eq!(as_shown("done\r"), "done");
        assert_eq!(as_shown("plain"), "plain");
        let mut lines = Lines::default();
        assert_eq!(lines.push(b"a\rb"), Vec::<String>::new());
        assert_eq!(lines.push(b"\rc\r\nnext\n"), ["c", "next"]);
        assert_eq!(lines.push(b"tail"), Vec::<String>::new());
        assert_eq!(lines.flush().as_deref(), Some("tail"));
        assert_eq!(lines.flush(), None);
    }

    #[test]
    fn a_progress_bar_without_newlines_stays_small() {
        let mut lines = Lines::default();
        for i in 0..10_000 {
            assert!(lines.push(format!("{i}%\r").as_bytes()).is_empty());
        }
        assert_eq!(lines.flush().as_deref(), Some("9999%"));
    }
}
