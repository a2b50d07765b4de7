//! Numbers of the write body: read as JSON's grammar says, converted correctly rounded (integers that
//! fit i64 stay integers), and named in errors as `serde_json` names them.

use serde::de::Unexpected;

use super::{EOF_VALUE, INVALID_NUMBER, OUT_OF_RANGE, Result, Scanner};
use crate::wire::WireScalar;

/// A number as JSON's grammar read it.
pub(super) enum Number {
    /// A plain non-negative integer that fits u64.
    Unsigned(u64),
    /// A negative plain integer whose magnitude fits u64.
    Negative(u64),
    /// Anything else: a fraction, an exponent, or too many digits.
    Float(f64),
}

impl Number {
    /// As `serde_json` hands it to a visitor: integers that fit i64 stay integers (`-0` does not).
    pub(super) fn scalar<'a>(self) -> WireScalar<'a> {
        match self {
            Self::Unsigned(u) => {
                i64::try_from(u).map_or(WireScalar::Float(u as f64), WireScalar::Int)
            }
            Self::Negative(m) => {
                let negated = (m as i64).wrapping_neg();
                if negated >= 0 {
                    WireScalar::Float(-(m as f64))
                } else {
                    WireScalar::Int(negated)
                }
            }
            Self::Float(f) => WireScalar::Float(f),
        }
    }

    /// Named as in a refusal of the value's type.
    pub(super) fn unexpected(self) -> String {
        match self {
            Self::Unsigned(u) => Unexpected::Unsigned(u).to_string(),
            Self::Negative(m) => {
                let negated = (m as i64).wrapping_neg();
                if negated >= 0 {
                    float_unexpected(-(m as f64))
                } else {
                    Unexpected::Signed(negated).to_string()
                }
            }
            Self::Float(f) => float_unexpected(f),
        }
    }
}

/// A float named as `serde_json` names it (not as `serde` does).
fn float_unexpected(f: f64) -> String {
    format!("floating point `{}`", zmij::Buffer::new().format(f))
}

impl Scanner<'_> {
    /// A number, at its first byte (`-` or a digit).
    pub(super) fn number(&mut self) -> Result<Number> {
        let start = self.pos;
        let negative = self.bytes[start] == b'-';
        if negative {
            self.pos += 1;
        }
        // The integer part, kept while it fits u64.
        let Some(first) = self.peek() else {
            return Err(self.error(EOF_VALUE));
        };
        self.pos += 1;
        let mut magnitude: Option<u64> = match first {
            b'0' => {
                if self.peek_or_null().is_ascii_digit() {
                    return Err(self.peek_error(INVALID_NUMBER));
                }
                Some(0)
            }
            b'1'..=b'9' => {
                let mut m = u64::from(first - b'0');
                let mut fits = true;
                while let Some(d @ b'0'..=b'9') = self.peek() {
                    self.pos += 1;
                    if fits {
                        match m
                            .checked_mul(10)
                            .and_then(|m| m.checked_add(u64::from(d - b'0')))
                        {
                            Some(next) => m = next,
                            None => fits = false,
                        }
                    }
                }
                fits.then_some(m)
            }
            _ => return Err(self.error(INVALID_NUMBER)),
        };
        let mut fraction_digits = 0usize;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            while let Some(d @ b'0'..=b'9') = self.peek() {
                self.pos += 1;
                fraction_digits += 1;
                magnitude = magnitude
                    .and_then(|m| m.checked_mul(10))
                    .and_then(|m| m.checked_add(u64::from(d - b'0')));
            }
            if fraction_digits == 0 {
                return Err(match self.peek() {
                    Some(_) => self.peek_error(INVALID_NUMBER),
                    None => self.peek_error(EOF_VALUE),
                });
            }
        }
        let mut exponent: i64 = 0;
        let has_exponent = matches!(self.peek(), Some(b'e' | b'E'));
        if has_exponent {
            self.pos += 1;
            let positive_exponent = match self.peek() {
                Some(b'+') => {
                    self.pos += 1;
                    true
                }
                Some(b'-') => {
                    self.pos += 1;
                    false
                }
                _ => true,
            };
            match self.peek() {
                None => return Err(self.error(EOF_VALUE)),
                Some(d) => {
                    self.pos += 1;
                    if !d.is_ascii_digit() {
                        return Err(self.error(INVALID_NUMBER));
                    }
                    exponent = i64::from(d - b'0');
                }
            }
            while let Some(d @ b'0'..=b'9') = self.peek() {
                self.pos += 1;
                exponent = exponent * 10 + i64::from(d - b'0');
                if exponent > i64::from(i32::MAX) {
                    // Past any exponent a finite, non-zero value can have.
                    let digits = &self.bytes[start..self.pos];
                    let zero = digits
                        .iter()
                        .take_while(|&&b| b != b'e' && b != b'E')
                        .all(|&b| matches!(b, b'0' | b'.' | b'-'));
                    if !zero && positive_exponent {
                        return Err(self.error(OUT_OF_RANGE));
                    }
                    while let Some(b'0'..=b'9') = self.peek() {
                        self.pos += 1;
                    }
                    return Ok(Number::Float(if negative { -0.0 } else { 0.0 }));
                }
            }
            if !positive_exponent {
                exponent = -exponent;
            }
        }
        if fraction_digits == 0
            && !has_exponent
            && let Some(m) = magnitude
        {
            return Ok(if negative {
                Number::Negative(m)
            } else {
                Number::Unsigned(m)
            });
        }
        let value = match magnitude {
            // Both exact in an f64, so one correctly rounded operation (Clinger's fast path).
            Some(m)
                if m <= 1 << 53 && (-22..=22).contains(&(exponent - fraction_digits as i64)) =>
            {
                let e = exponent - fraction_digits as i64;
                let m = m as f64;
                let v = if e >= 0 {
                    m * POWERS_OF_TEN[e as usize]
                } else {
                    m / POWERS_OF_TEN[(-e) as usize]
                };
                if negative { -v } else { v }
            }
            _ => self.text[start..self.pos]
                .parse::<f64>()
                .map_err(|_| self.error(INVALID_NUMBER))?,
        };
        if value.is_infinite() {
            return Err(self.error(OUT_OF_RANGE));
        }
        Ok(Number::Float(value))
    }
}

/// 10^0 ..= 10^22, every one exact in an f64.
const POWERS_OF_TEN: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];
