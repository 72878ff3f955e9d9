//! String quoting (`jsonnetfmt`'s default string style `s`): a quoted string is re-escaped in
//! single quotes, or in double quotes when its value holds a single quote and no double quote.

use super::lexer::{TokKind, Token};
use super::SyntaxError;

/// The value of a quoted string's text (between the quotes, escapes as written), or why it is
/// not valid.
pub(super) fn unescape(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let escaped = chars
            .next()
            .ok_or("truncated escape sequence in string literal")?;
        out.push(match escaped {
            '"' | '\'' | '\\' | '/' => escaped,
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'u' => {
                let high = hex4(&mut chars)?;
                let code = if (0xd800..0xdc00).contains(&high) {
                    let low = match (chars.next(), chars.next()) {
                        (Some('\\'), Some('u')) => hex4(&mut chars)?,
                        _ => return Err(NON_BMP.to_owned()),
                    };
                    if !(0xdc00..0xe000).contains(&low) {
                        return Err(NON_BMP.to_owned());
                    }
                    0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00)
                } else if (0xdc00..0xe000).contains(&high) {
                    return Err(NON_BMP.to_owned());
                } else {
                    high
                };
                char::from_u32(code).ok_or(NON_BMP)?
            }
            other => {
                return Err(format!(
                    "unknown escape sequence in string literal: {other:?}"
                ))
            }
        });
    }
    Ok(out)
}

const NON_BMP: &str = "invalid non-BMP Unicode escape in string literal";

fn hex4(chars: &mut std::str::Chars<'_>) -> Result<u32, String> {
    let mut code = 0;
    for _ in 0..4 {
        let digit = chars
            .next()
            .and_then(|c| c.to_digit(16))
            .ok_or("truncated unicode escape sequence in string literal")?;
        code = code * 16 + digit;
    }
    Ok(code)
}

/// `value` escaped for a string in `'` (`single`) or `"` quotes.
pub(super) fn escape(value: &str, single: bool) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        match c {
            '"' if !single => out.push_str("\\\""),
            '\'' if single => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || (0x7f..=0x9f).contains(&(c as u32)) => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// Re-quotes every quoted string (verbatim strings and text blocks stay as written); fails on
/// an invalid escape.
pub(super) fn string_style(toks: &mut [Token]) -> Result<(), SyntaxError> {
    for tok in toks {
        if !matches!(tok.kind, TokKind::StrDouble | TokKind::StrSingle) {
            continue;
        }
        let value = unescape(&tok.text).map_err(|message| SyntaxError {
            line: tok.line,
            message,
        })?;
        let singles = value.contains('\'');
        let doubles = value.contains('"');
        if singles && doubles {
            continue;
        }
        let single = !singles;
        tok.text = escape(&value, single).into();
        tok.kind = if single {
            TokKind::StrSingle
        } else {
            TokKind::StrDouble
        };
    }
    Ok(())
}
