//! Text helpers shared by the renderers: step names on one line, log lines made printable, times.
//! Log output is cut into lines by [`brewkit_buildkit::log::Lines`], which the build's failure
//! tail uses too.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use brewkit_buildkit::log::Lines;

/// `name` on one line: BuildKit names a run step by its command, which may span lines; line
/// breaks are shown as `\n` and `\r` so that they never break the layout.
pub fn one_line(name: &str) -> String {
    if !name.contains(['\n', '\r']) {
        return name.to_owned();
    }
    name.replace('\r', "\\r").replace('\n', "\\n")
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
