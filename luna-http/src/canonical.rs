//! The canonical form of a JSON request body (spec §6, "Idempotency"), and the structural
//! limits every body must meet.
//!
//! One pass over the bytes checks that the body is JSON (RFC 8259, UTF-8), nests at most
//! [`MAX_DEPTH`] levels and holds no duplicate object key (compared after unescaping), and
//! writes the canonical text: object members sorted by key, no insignificant whitespace,
//! strings re-escaped one way, every number kept exactly as written (`1e400` stays `1e400`).
//! Two bodies have the same canonical text exactly when they are the same JSON value as
//! written, so a fingerprint of it never confuses two accepted requests.
//!
//! `serde_json::Value` cannot be this form: it rounds or refuses big numbers and keeps the last
//! of duplicate keys.

use std::fmt;

/// The deepest nesting a body may have (the top-level object is level 1).
pub const MAX_DEPTH: usize = 64;

/// Why a body has no canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CanonicalError {
    /// Not JSON: what was expected and the byte offset.
    Syntax {
        /// What went wrong.
        message: &'static str,
        /// Where.
        offset: usize,
    },
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// An object holds the same key twice.
    DuplicateKey(String),
}

impl fmt::Display for CanonicalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CanonicalError::Syntax { message, offset } => {
                write!(f, "{message} at byte {offset}")
            }
            CanonicalError::TooDeep => write!(f, "nested deeper than {MAX_DEPTH} levels"),
            CanonicalError::DuplicateKey(k) => write!(f, "duplicate key {k:?}"),
        }
    }
}

impl std::error::Error for CanonicalError {}

/// The canonical text of a JSON document, or why it has none.
pub fn canonicalize(input: &[u8]) -> Result<String, CanonicalError> {
    if let Err(e) = std::str::from_utf8(input) {
        return Err(CanonicalError::Syntax {
            message: "invalid UTF-8",
            offset: e.valid_up_to(),
        });
    }
    let mut p = Parser { b: input, i: 0 };
    let mut out = String::with_capacity(input.len());
    p.value(0, &mut out)?;
    p.ws();
    if p.i != p.b.len() {
        return Err(p.err("trailing characters"));
    }
    Ok(out)
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn err(&self, message: &'static str) -> CanonicalError {
        CanonicalError::Syntax {
            message,
            offset: self.i,
        }
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8, message: &'static str) -> Result<(), CanonicalError> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(message))
        }
    }

    fn value(&mut self, depth: usize, out: &mut String) -> Result<(), CanonicalError> {
        self.ws();
        match self.peek() {
            Some(b'{') => self.object(depth + 1, out),
            Some(b'[') => self.array(depth + 1, out),
            Some(b'"') => {
                let s = self.string()?;
                push_string(out, &s);
                Ok(())
            }
            Some(b'-' | b'0'..=b'9') => self.number(out),
            Some(b't') => self.literal(b"true", out),
            Some(b'f') => self.literal(b"false", out),
            Some(b'n') => self.literal(b"null", out),
            Some(_) => Err(self.err("expected a value")),
            None => Err(self.err("unexpected end of input")),
        }
    }

    fn object(&mut self, depth: usize, out: &mut String) -> Result<(), CanonicalError> {
        if depth > MAX_DEPTH {
            return Err(CanonicalError::TooDeep);
        }
        self.i += 1;
        let mut members: Vec<(String, String)> = Vec::new();
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
        } else {
            loop {
                self.ws();
                if self.peek() != Some(b'"') {
                    return Err(self.err("expected a key"));
                }
                let key = self.string()?;
                self.ws();
                self.eat(b':', "expected ':'")?;
                let mut v = String::new();
                self.value(depth, &mut v)?;
                members.push((key, v));
                self.ws();
                match self.peek() {
                    Some(b',') => self.i += 1,
                    Some(b'}') => {
                        self.i += 1;
                        break;
                    }
                    _ => return Err(self.err("expected ',' or '}'")),
                }
            }
        }
        members.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(w) = members.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(CanonicalError::DuplicateKey(w[0].0.clone()));
        }
        out.push('{');
        for (n, (k, v)) in members.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            push_string(out, k);
            out.push(':');
            out.push_str(v);
        }
        out.push('}');
        Ok(())
    }

    fn array(&mut self, depth: usize, out: &mut String) -> Result<(), CanonicalError> {
        if depth > MAX_DEPTH {
            return Err(CanonicalError::TooDeep);
        }
        self.i += 1;
        out.push('[');
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
        } else {
            let mut first = true;
            loop {
                if !first {
                    out.push(',');
                }
                first = false;
                self.value(depth, out)?;
                self.ws();
                match self.peek() {
                    Some(b',') => self.i += 1,
                    Some(b']') => {
                        self.i += 1;
                        break;
                    }
                    _ => return Err(self.err("expected ',' or ']'")),
                }
            }
        }
        out.push(']');
        Ok(())
    }

    fn literal(&mut self, word: &'static [u8], out: &mut String) -> Result<(), CanonicalError> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            // The literals are ASCII.
            out.push_str(std::str::from_utf8(word).unwrap_or("null"));
            Ok(())
        } else {
            Err(self.err("expected a literal"))
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.i - start
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, copied as written.
    fn number(&mut self, out: &mut String) -> Result<(), CanonicalError> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.err("expected a digit")),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return Err(self.err("expected a digit after '.'"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(self.err("expected an exponent"));
            }
        }
        // The grammar above only accepts ASCII.
        out.push_str(std::str::from_utf8(&self.b[start..self.i]).unwrap_or("0"));
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, CanonicalError> {
        let Some(h) = self.b.get(self.i..self.i + 4) else {
            return Err(self.err("short \\u escape"));
        };
        let mut v = 0u32;
        for &c in h {
            let d = char::from(c)
                .to_digit(16)
                .ok_or_else(|| self.err("bad \\u escape"))?;
            v = v * 16 + d;
        }
        self.i += 4;
        Ok(v)
    }

    /// A string starting at `"`, unescaped. The input is valid UTF-8 (checked up front).
    fn string(&mut self) -> Result<String, CanonicalError> {
        self.i += 1;
        let mut s = String::new();
        loop {
            let run = self.i;
            while let Some(c) = self.peek() {
                if c == b'"' || c == b'\\' || c < 0x20 {
                    break;
                }
                self.i += 1;
            }
            // A run between ASCII delimiters of valid UTF-8 is valid UTF-8.
            s.push_str(std::str::from_utf8(&self.b[run..self.i]).unwrap_or_default());
            match self.peek() {
                Some(b'"') => {
                    self.i += 1;
                    return Ok(s);
                }
                Some(b'\\') => {
                    self.i += 1;
                    self.escape(&mut s)?;
                }
                Some(_) => return Err(self.err("control character in a string")),
                None => return Err(self.err("unterminated string")),
            }
        }
    }

    fn escape(&mut self, s: &mut String) -> Result<(), CanonicalError> {
        let c = self.peek().ok_or_else(|| self.err("unterminated escape"))?;
        self.i += 1;
        let ch = match c {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = self.hex4()?;
                let code = if (0xD800..0xDC00).contains(&hi) {
                    if self.b.get(self.i..self.i + 2) != Some(b"\\u") {
                        return Err(self.err("lone surrogate"));
                    }
                    self.i += 2;
                    let lo = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&lo) {
                        return Err(self.err("lone surrogate"));
                    }
                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                } else if (0xDC00..0xE000).contains(&hi) {
                    return Err(self.err("lone surrogate"));
                } else {
                    hi
                };
                char::from_u32(code).ok_or_else(|| self.err("bad \\u escape"))?
            }
            _ => return Err(self.err("bad escape")),
        };
        s.push(ch);
        Ok(())
    }
}

/// Writes a string the one canonical way (serde_json's escaping: `"`, `\` and control
/// characters only).
fn push_string(out: &mut String, s: &str) {
    // Serialising a &str cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        canonicalize(s.as_bytes()).unwrap()
    }

    #[test]
    fn keys_are_sorted_and_whitespace_dropped_at_every_level() {
        assert_eq!(
            canon(" { \"b\" : [1, {\"d\":1,\"c\":2}] , \"a\":null }\n"),
            r#"{"a":null,"b":[1,{"c":2,"d":1}]}"#
        );
    }

    #[test]
    fn numbers_are_kept_exactly_as_written() {
        assert_eq!(canon("[1e400,-0,1.50,1E+2]"), "[1e400,-0,1.50,1E+2]");
        assert_ne!(canon("[1.0]"), canon("[1]"));
    }

    #[test]
    fn strings_are_unescaped_then_written_one_way() {
        assert_eq!(canon(r#"["\u0041\/\n"]"#), r#"["A/\n"]"#);
        assert_eq!(canon(r#"["\ud83d\ude00"]"#), "[\"\u{1F600}\"]");
    }

    #[test]
    fn duplicate_keys_are_refused_even_when_escaped_differently() {
        assert_eq!(
            canonicalize(br#"{"a":1,"\u0061":2}"#),
            Err(CanonicalError::DuplicateKey("a".into()))
        );
        assert!(canonicalize(br#"{"x":{"a":1,"a":1}}"#).is_err());
    }

    #[test]
    fn nesting_is_limited_to_64_levels() {
        let ok = format!("{}{}", "[".repeat(64), "]".repeat(64));
        assert!(canonicalize(ok.as_bytes()).is_ok());
        let deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
        assert_eq!(canonicalize(deep.as_bytes()), Err(CanonicalError::TooDeep));
        let very_deep = "[".repeat(1_000_000);
        assert_eq!(
            canonicalize(very_deep.as_bytes()),
            Err(CanonicalError::TooDeep)
        );
    }

    #[test]
    fn what_is_not_json_is_refused() {
        for bad in [
            "",
            "{",
            "{\"a\"}",
            "[1,]",
            "01",
            "1.",
            "-",
            "+1",
            "tru",
            "\"\u{1}\"",
            "\"\\x\"",
            "\"\\ud800\"",
            "\"\\udc00x\"",
            "{} x",
            "[1 2]",
            "{\"a\":1,}",
            "NaN",
            "\"abc",
        ] {
            assert!(canonicalize(bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert!(canonicalize(b"[\"\xff\"]").is_err(), "invalid UTF-8");
    }

    #[test]
    fn the_canonical_text_is_json_equal_to_the_input() {
        for s in [
            r#"{"z":[true,false,null,"é\"\\"],"a":{"y":-1.5e-3,"x":{}}}"#,
            "[[],{},\"\",0]",
        ] {
            let c = canon(s);
            let a: serde_json::Value = serde_json::from_str(s).unwrap();
            let b: serde_json::Value = serde_json::from_str(&c).unwrap();
            assert_eq!(a, b);
            assert_eq!(canon(&c), c, "canonical is a fixed point");
        }
    }
}
