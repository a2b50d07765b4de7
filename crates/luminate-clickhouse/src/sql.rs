//! The only way a string from outside (tenant, metric name, dimension key or value, filter, prefix,
//! database name) enters SQL text: [`quote`] for string literals and [`quote_ident`] for identifiers.
//!
//! ClickHouse 18.16 has no server-side query parameters (they arrived in 19.11), so statements are text.
//! Rather than splice strings anywhere, every statement is built from fixed SQL fragments, integers
//! formatted by Rust, and the output of these two functions. They escape every byte that could end
//! the literal or change how it is read (quote, backslash) and every control byte (so NUL, newlines and
//! tabs never reach the lexer raw); all other bytes, including UTF-8 sequences, pass through unchanged,
//! and ClickHouse stores strings as bytes, so what is stored equals what was given.

use std::fmt::Write;

/// A ClickHouse string literal holding exactly the bytes of `s`: `'` and `\` are backslash-escaped,
/// control bytes (0x00–0x1F, 0x7F) are written as `\xHH`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\x{:02X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A back-quoted ClickHouse identifier naming exactly `name` (database names from the configuration).
pub fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('`');
    for c in name.chars() {
        match c {
            '`' => out.push_str("\\`"),
            '\\' => out.push_str("\\\\"),
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\x{:02X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('`');
    out
}

/// `s` percent-encoded for a URL query parameter (RFC 3986 unreserved bytes pass, all others are `%HH`).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_only_wrapped() {
        assert_eq!(quote("api_latency"), "'api_latency'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn quotes_and_backslashes_are_escaped() {
        assert_eq!(quote("it's"), r"'it\'s'");
        assert_eq!(quote(r"a\b"), r"'a\\b'");
        // A trailing backslash must not escape the closing quote.
        assert_eq!(quote("x\\"), r"'x\\'");
        assert_eq!(quote(r"\'"), r"'\\\''");
    }

    #[test]
    fn injection_stays_inside_the_literal() {
        assert_eq!(
            quote("'; DROP TABLE points; --"),
            r"'\'; DROP TABLE points; --'"
        );
        // Every quote inside the literal is preceded by an odd number of backslashes.
        let q = quote(r"\'; DROP TABLE x; --\");
        let inner = &q[1..q.len() - 1];
        let bytes = inner.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'\'' {
                let run = bytes[..i].iter().rev().take_while(|&&c| c == b'\\').count();
                assert_eq!(run % 2, 1, "unescaped quote at {i} in {q}");
            }
        }
    }

    #[test]
    fn control_bytes_are_hex_escaped() {
        assert_eq!(quote("a\0b"), r"'a\x00b'");
        assert_eq!(quote("l1\nl2\r"), r"'l1\x0Al2\x0D'");
        assert_eq!(quote("k\tv"), r"'k\x09v'");
        assert_eq!(quote("\x7f\x1b"), r"'\x7F\x1B'");
    }

    #[test]
    fn unicode_passes_unchanged() {
        assert_eq!(quote("café ☃ 日本 🎉"), "'café ☃ 日本 🎉'");
        // U+2028 and other non-ASCII "control-like" characters are plain bytes to ClickHouse.
        assert_eq!(quote("a\u{2028}b"), "'a\u{2028}b'");
    }

    #[test]
    fn identifiers_are_back_quoted() {
        assert_eq!(quote_ident("luminate"), "`luminate`");
        assert_eq!(quote_ident("a`b\\c"), r"`a\`b\\c`");
        assert_eq!(quote_ident("x\ny"), r"`x\x0Ay`");
    }

    #[test]
    fn percent_encoding_keeps_unreserved_bytes() {
        assert_eq!(percent_encode("luminate-1_a.b~"), "luminate-1_a.b~");
        assert_eq!(
            percent_encode("INSERT INTO `d`.p (a) FORMAT RowBinary"),
            "INSERT%20INTO%20%60d%60.p%20%28a%29%20FORMAT%20RowBinary"
        );
        assert_eq!(percent_encode("é&="), "%C3%A9%26%3D");
    }
}
