//! Values the write body's decoder skips (unknown fields, and what containers hold), as `serde_json`'s
//! `IgnoredAny` does: any depth, without recursion, failing where it fails.

use super::{
    CONTROL_CHARACTER, EOF_LIST, EOF_OBJECT, EOF_STRING, EOF_VALUE, EXPECTED_COLON,
    EXPECTED_LIST_END, EXPECTED_OBJECT_END, EXPECTED_VALUE, INVALID_ESCAPE, INVALID_NUMBER,
    KEY_NOT_STRING, Result, Scanner,
};

impl Scanner<'_> {
    /// Skips one value as `serde_json`'s `IgnoredAny` does: any depth, without recursion.
    pub(super) fn skip_value(&mut self) -> Result<()> {
        self.frames.clear();
        let mut enclosing: Option<u8> = None;
        loop {
            let Some(peek) = self.whitespace() else {
                return Err(self.peek_error(EOF_VALUE));
            };
            let frame = match peek {
                b'n' => {
                    self.pos += 1;
                    self.ident(b"ull")?;
                    None
                }
                b't' => {
                    self.pos += 1;
                    self.ident(b"rue")?;
                    None
                }
                b'f' => {
                    self.pos += 1;
                    self.ident(b"alse")?;
                    None
                }
                b'-' | b'0'..=b'9' => {
                    self.skip_number()?;
                    None
                }
                b'"' => {
                    self.pos += 1;
                    self.skip_string()?;
                    None
                }
                b'[' | b'{' => {
                    self.frames.extend(enclosing.take());
                    self.pos += 1;
                    Some(peek)
                }
                _ => return Err(self.peek_error(EXPECTED_VALUE)),
            };
            let (mut accept_comma, mut frame) = match frame {
                Some(frame) => (false, frame),
                None => match enclosing.take() {
                    Some(frame) => (true, frame),
                    None => match self.frames.pop() {
                        Some(frame) => (true, frame),
                        None => return Ok(()),
                    },
                },
            };
            loop {
                match self.whitespace() {
                    Some(b',') if accept_comma => {
                        self.pos += 1;
                        break;
                    }
                    Some(b']') if frame == b'[' => {}
                    Some(b'}') if frame == b'{' => {}
                    Some(_) => {
                        if accept_comma {
                            return Err(self.peek_error(if frame == b'[' {
                                EXPECTED_LIST_END
                            } else {
                                EXPECTED_OBJECT_END
                            }));
                        }
                        break;
                    }
                    None => {
                        return Err(self.peek_error(if frame == b'[' {
                            EOF_LIST
                        } else {
                            EOF_OBJECT
                        }));
                    }
                }
                self.pos += 1;
                frame = match self.frames.pop() {
                    Some(frame) => frame,
                    None => return Ok(()),
                };
                accept_comma = true;
            }
            if frame == b'{' {
                match self.whitespace() {
                    Some(b'"') => self.pos += 1,
                    Some(_) => return Err(self.peek_error(KEY_NOT_STRING)),
                    None => return Err(self.peek_error(EOF_OBJECT)),
                }
                self.skip_string()?;
                match self.whitespace() {
                    Some(b':') => self.pos += 1,
                    Some(_) => return Err(self.peek_error(EXPECTED_COLON)),
                    None => return Err(self.peek_error(EOF_OBJECT)),
                }
            }
            enclosing = Some(frame);
        }
    }

    /// A skipped number: only its grammar is checked.
    fn skip_number(&mut self) -> Result<()> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let first = self.peek_or_null();
        if self.pos < self.bytes.len() {
            self.pos += 1;
        }
        match first {
            b'0' => {
                if self.peek_or_null().is_ascii_digit() {
                    return Err(self.peek_error(INVALID_NUMBER));
                }
            }
            b'1'..=b'9' => {
                while self.peek_or_null().is_ascii_digit() {
                    self.pos += 1;
                }
            }
            _ => return Err(self.error(INVALID_NUMBER)),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            let digits_start = self.pos;
            while self.peek_or_null().is_ascii_digit() {
                self.pos += 1;
            }
            if self.pos == digits_start {
                return Err(self.peek_error(INVALID_NUMBER));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            let d = self.peek_or_null();
            if self.pos < self.bytes.len() {
                self.pos += 1;
            }
            if !d.is_ascii_digit() {
                return Err(self.error(INVALID_NUMBER));
            }
            while self.peek_or_null().is_ascii_digit() {
                self.pos += 1;
            }
        }
        Ok(())
    }

    /// A skipped string after its opening quote: escapes are checked for shape only (a lone surrogate
    /// passes, as in `serde_json`'s `IgnoredAny`).
    fn skip_string(&mut self) -> Result<()> {
        loop {
            self.skip_plain();
            match self.peek() {
                None => return Err(self.error(EOF_STRING)),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let Some(b) = self.peek() else {
                        return Err(self.error(EOF_STRING));
                    };
                    self.pos += 1;
                    match b {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                        b'u' => {
                            self.hex4()?;
                        }
                        _ => return Err(self.error(INVALID_ESCAPE)),
                    }
                }
                Some(_) => return Err(self.error(CONTROL_CHARACTER)),
            }
        }
    }
}
