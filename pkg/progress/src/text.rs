//! Text helpers shared by the renderers: step names on one line, log output cut into lines the
//! way a terminal would show them, times.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `name` on one line: BuildKit names a run step by its command, which may span lines; line
/// breaks are shown as `\n` and `\r` so that they never break the layout.
pub fn one_line(name: &str) -> String {
    if !name.contains(['\n', '\r']) {
        return name.to_owned();
    }
    name.replace('\r', "\\r").replace('\n', "\\n")
}

/// What a terminal would show of one line of output: the text after its last carriage return
/// (progress bars redraw themselves with `\r`); a line that ends with `\r` keeps what the last
/// redraw wrote.
pub fn as_shown(line: &str) -> &str {
    let line = line.trim_end_matches('\r');
    line.rsplit('\r').next().unwrap_or(line)
}

/// `line` without terminal control: ANSI escape sequences (colours, cursor moves, titles) and
/// other control characters are dropped, a tab is a space. For the tty's live view, which a
/// command's own escapes would otherwise recolour or move.
pub fn printable(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => match chars.next() {
                // CSI: parameters and intermediates up to a final byte in @..~.
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC (a window title, a hyperlink): up to BEL or ESC \.
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\x07' {
                            break;
                        }
                        if c == '\x1b' {
                            chars.next_if_eq(&'\\');
                            break;
                        }
                    }
                }
                // nF (a character set, `ESC ( B`): intermediates, then one final character.
                Some(' '..='/') => {
                    while chars.next_if(|c| (' '..='/').contains(c)).is_some() {}
                    chars.next();
                }
                // Any other escape is two characters.
                _ => {}
            },
            '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The longest partial line kept while waiting for its end (a command printing a progress bar
/// with `\r` and never a newline must not grow it without bound).
const PARTIAL_LIMIT: usize = 8192;

/// Cuts a stream of output chunks into complete lines, keeping a partial last line for the
/// next chunk.
#[derive(Debug, Default)]
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

/// Seconds with one decimal and a unit: `1.5s`.
pub fn seconds(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

/// `time` in RFC 3339, UTC, with milliseconds: `2024-05-01T12:34:56.789Z`.
pub fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (date, clock) = civil(since.as_secs());
    format!("{date}T{clock}.{:03}Z", since.subsec_millis())
}

/// `seconds` and `nanos` since the epoch in RFC 3339 with as many fraction digits as needed,
/// as Go's `time.RFC3339Nano` prints them (BuildKit's own JSON).
pub fn rfc3339_nanos(seconds: i64, nanos: i32) -> String {
    let (date, clock) = civil(u64::try_from(seconds).unwrap_or_default());
    let fraction = format!("{:09}", nanos.clamp(0, 999_999_999));
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() {
        format!("{date}T{clock}Z")
    } else {
        format!("{date}T{clock}.{fraction}Z")
    }
}

/// The date and the time of day of `seconds` since the epoch (Howard Hinnant's civil-from-days).
fn civil(seconds: u64) -> (String, String) {
    let days = (seconds / 86_400) as i64;
    let rem = seconds % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        format!("{year:04}-{month:02}-{day:02}"),
        format!("{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60),
    )
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

    #[test]
    fn names_stay_on_one_line() {
        assert_eq!(one_line("echo a\necho b\r"), "echo a\\necho b\\r");
        assert_eq!(one_line("go test"), "go test");
    }

    #[test]
    fn times_are_rfc3339_utc() {
        let at = UNIX_EPOCH + Duration::from_millis(1_714_566_896_789);
        assert_eq!(rfc3339(at), "2024-05-01T12:34:56.789Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(
            rfc3339_nanos(1_714_566_896, 120_000_000),
            "2024-05-01T12:34:56.12Z"
        );
        assert_eq!(rfc3339_nanos(0, 0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn printable_drops_escapes_and_control_characters() {
        assert_eq!(printable("plain text"), "plain text");
        assert_eq!(printable("\x1b[1;31mred\x1b[0m done"), "red done");
        assert_eq!(printable("\x1b[2K\x1b[1Gbar"), "bar");
        assert_eq!(printable("\x1b]0;title\x07text"), "text");
        assert_eq!(
            printable("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\"),
            "link"
        );
        assert_eq!(printable("a\tb\x08c\x00"), "a bc");
        assert_eq!(printable("\x1b(Bx\x1b7y"), "xy");
        assert_eq!(printable("unfinished \x1b["), "unfinished ");
        assert_eq!(printable("日本 é"), "日本 é");
    }
}
