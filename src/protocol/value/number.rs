//! Number normalization: one canonical [`Number`] for each numeric value, whatever wire form it
//! arrived in (msgpack int of any width, float32/64, decimal text, JSON number text).
//!
//! The canonical form is: `Int` when the value is an integer that fits `i64`; `Float` when it is a
//! non-integer exactly representable in `f64` (or ±infinity); otherwise `Decimal` with canonical
//! text (no leading or trailing zeros, plain notation unless the exponent is absurdly large).

use super::Number;

/// Decimal texts with an exponent beyond this are refused rather than expanded.
const MAX_EXPONENT: i64 = 1_000_000_000;
/// Plain notation is used up to this many zeros of padding; beyond it, scientific notation.
const MAX_PLAIN_PADDING: i64 = 1000;

/// A decimal number: `(-1)^negative × digits × 10^exp`.
#[derive(Debug, PartialEq, Eq)]
struct Decimal {
    negative: bool,
    /// Significant digits without leading or trailing zeros; empty for zero.
    digits: String,
    exp: i64,
}

/// Parses decimal text (`-12.5e3`, `.5`, `7.`, `Inf`), the forms Go's `big.ParseFloat` accepts
/// in base 10. Returns `None` when the text is not a number.
fn parse_decimal(text: &str) -> Option<Decimal> {
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
        None => (mantissa, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int_part.is_empty() && frac_part.is_empty()
        || !all_digits(int_part)
        || !all_digits(frac_part)
    {
        return None;
    }
    let mut exp: i64 = match exponent {
        None => 0,
        Some(e) => {
            let (neg, digits) = match e.as_bytes().first()? {
                b'-' => (true, &e[1..]),
                b'+' => (false, &e[1..]),
                _ => (false, e),
            };
            if digits.is_empty() || !all_digits(digits) {
                return None;
            }
            let digits = digits.trim_start_matches('0');
            // More than ten digits is beyond MAX_EXPONENT anyway; avoids overflow.
            if digits.len() > 10 {
                return None;
            }
            let magnitude: i64 = if digits.is_empty() {
                0
            } else {
                digits.parse().ok()?
            };
            if magnitude > MAX_EXPONENT {
                return None;
            }
            if neg { -magnitude } else { magnitude }
        }
    };
    exp -= i64::try_from(frac_part.len()).ok()?;
    let mut digits = String::with_capacity(int_part.len() + frac_part.len());
    digits.push_str(int_part);
    digits.push_str(frac_part);
    let significant = digits.trim_start_matches('0');
    let trimmed = significant.trim_end_matches('0');
    exp += i64::try_from(significant.len() - trimmed.len()).ok()?;
    if trimmed.is_empty() {
        return Some(Decimal {
            negative: false,
            digits: String::new(),
            exp: 0,
        });
    }
    Some(Decimal {
        negative,
        digits: trimmed.to_owned(),
        exp,
    })
}

/// Whether `text` spells infinity the way `big.ParseFloat` accepts it.
fn parse_infinity(text: &str) -> Option<f64> {
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    rest.eq_ignore_ascii_case("inf").then_some(if negative {
        f64::NEG_INFINITY
    } else {
        f64::INFINITY
    })
}

impl Decimal {
    fn sign(&self) -> &'static str {
        if self.negative { "-" } else { "" }
    }

    /// The canonical [`Number`] for this decimal.
    fn into_number(self) -> Number {
        if self.digits.is_empty() {
            return Number::Int(0);
        }
        let len = self.digits.len() as i64;
        if self.exp >= 0 {
            if len + self.exp <= 19 {
                let mut text = String::from(self.sign());
                text.push_str(&self.digits);
                text.extend(std::iter::repeat_n('0', self.exp as usize));
                if let Ok(i) = text.parse::<i64>() {
                    return Number::Int(i);
                }
            }
            return Number::Decimal(self.render());
        }
        // A non-integer is exact in f64 only if it has at most ~770 significant digits; the
        // check parses it, then compares the float's exact expansion against the input.
        if len <= 800 {
            let text = format!("{}{}e{}", self.sign(), self.digits, self.exp);
            if let Ok(f) = text.parse::<f64>()
                && f.is_finite()
                && exact_decimal(f).as_ref() == Some(&self)
            {
                return Number::Float(f);
            }
        }
        Number::Decimal(self.render())
    }

    /// Canonical text: plain notation (`-123.45`, `0.001`), scientific for absurd exponents.
    fn render(&self) -> String {
        if self.digits.is_empty() {
            return "0".to_owned();
        }
        let len = self.digits.len() as i64;
        let mut out = String::from(self.sign());
        if self.exp >= 0 && self.exp <= MAX_PLAIN_PADDING {
            out.push_str(&self.digits);
            out.extend(std::iter::repeat_n('0', self.exp as usize));
            return out;
        }
        let point = len + self.exp; // digits before the decimal point
        if self.exp < 0 && point > 0 {
            let (int, frac) = self.digits.split_at(point as usize);
            out.push_str(int);
            out.push('.');
            out.push_str(frac);
            return out;
        }
        if self.exp < 0 && -point <= MAX_PLAIN_PADDING {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-point) as usize));
            out.push_str(&self.digits);
            return out;
        }
        let (first, rest) = self.digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        out.push('e');
        out.push_str(&(self.exp + len - 1).to_string());
        out
    }
}

/// The exact decimal value of a finite float (every finite `f64` has a finite decimal expansion;
/// 1100 significant digits cover the longest one).
fn exact_decimal(f: f64) -> Option<Decimal> {
    parse_decimal(&format!("{f:.1100e}"))
}

impl Number {
    /// Parses decimal number text (as msgpack and JSON carry it) into its canonical form.
    /// Returns `None` when the text is not a number.
    pub fn parse(text: &str) -> Option<Number> {
        if let Some(inf) = parse_infinity(text) {
            return Some(Number::Float(inf));
        }
        parse_decimal(text).map(Decimal::into_number)
    }

    /// The canonical form of a float; `None` for NaN, which cty cannot hold.
    pub fn from_f64(f: f64) -> Option<Number> {
        if f.is_nan() {
            return None;
        }
        if f.is_infinite() {
            return Some(Number::Float(f));
        }
        if f.fract() == 0.0 {
            // Exactly the floats in [-2^63, 2^63) convert to i64 without loss.
            if (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f) {
                return Some(Number::Int(f as i64));
            }
            return exact_decimal(f).map(Decimal::into_number);
        }
        Some(Number::Float(f))
    }

    /// This number in canonical form, so that equal numbers compare equal. `None` when a
    /// `Float` is NaN or a `Decimal` does not hold number text.
    pub fn normalized(&self) -> Option<Number> {
        match self {
            Number::Int(i) => Some(Number::Int(*i)),
            Number::Float(f) => Number::from_f64(*f),
            Number::Decimal(text) => Number::parse(text),
        }
    }

    /// The exact decimal text of this number (`Text('f', -1)` in go-cty terms). `None` for NaN.
    /// Infinity is `+Inf` / `-Inf`, which is not valid JSON.
    pub fn to_decimal_text(&self) -> Option<String> {
        match self.normalized()? {
            Number::Int(i) => Some(i.to_string()),
            Number::Float(f) if f.is_infinite() => {
                Some(if f > 0.0 { "+Inf" } else { "-Inf" }.to_owned())
            }
            Number::Float(f) => exact_decimal(f).map(|d| d.render()),
            Number::Decimal(text) => Some(text),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn integers_that_fit_i64_become_int() {
        assert_eq!(Number::parse("42"), Some(Number::Int(42)));
        assert_eq!(Number::parse("-4.20e1"), Some(Number::Int(-42)));
        assert_eq!(Number::parse("1e3"), Some(Number::Int(1000)));
        assert_eq!(Number::parse("-0"), Some(Number::Int(0)));
        assert_eq!(Number::parse("000.000"), Some(Number::Int(0)));
        assert_eq!(
            Number::parse("-9223372036854775808"),
            Some(Number::Int(i64::MIN))
        );
        assert_eq!(Number::from_f64(3.0), Some(Number::Int(3)));
        assert_eq!(Number::from_f64(-0.0), Some(Number::Int(0)));
    }

    #[test]
    fn exact_binary_fractions_become_float() {
        assert_eq!(Number::parse("0.5"), Some(Number::Float(0.5)));
        assert_eq!(Number::parse("-1.25"), Some(Number::Float(-1.25)));
        assert_eq!(Number::parse("+Inf"), Some(Number::Float(f64::INFINITY)));
        assert_eq!(
            Number::parse("-inf"),
            Some(Number::Float(f64::NEG_INFINITY))
        );
        // The exact expansion of the float 0.1 is a float; the decimal 0.1 is not.
        assert_eq!(
            Number::parse("0.1000000000000000055511151231257827021181583404541015625"),
            Some(Number::Float(0.1))
        );
    }

    #[test]
    fn everything_else_is_canonical_decimal_text() {
        assert_eq!(
            Number::parse("0.10"),
            Some(Number::Decimal("0.1".to_owned()))
        );
        assert_eq!(
            Number::parse("9223372036854775808"),
            Some(Number::Decimal("9223372036854775808".to_owned()))
        );
        assert_eq!(
            Number::parse("123456789012345678901234567890.000"),
            Some(Number::Decimal("123456789012345678901234567890".to_owned()))
        );
        assert_eq!(
            Number::parse("-1.5e-3000"),
            Some(Number::Decimal("-1.5e-3000".to_owned()))
        );
        assert_eq!(
            Number::from_f64(1e20),
            Some(Number::Decimal("100000000000000000000".to_owned()))
        );
    }

    #[test]
    fn non_numbers_are_refused() {
        for text in [
            "",
            "-",
            ".",
            "e5",
            "1e",
            "1e+",
            "abc",
            "1.2.3",
            "0x10",
            " 1",
            "1 ",
            "NaN",
            "1e99999999999",
        ] {
            assert_eq!(Number::parse(text), None, "{text:?}");
        }
        assert_eq!(Number::from_f64(f64::NAN), None);
    }

    #[test]
    fn decimal_text_round_trips() {
        for n in [
            Number::Int(-7),
            Number::Float(0.375),
            Number::Float(0.1),
            Number::Decimal("0.1".to_owned()),
            Number::Decimal("-123456789012345678901234567890".to_owned()),
            Number::Decimal("1.5e-3000".to_owned()),
        ] {
            let text = n.to_decimal_text().unwrap();
            assert_eq!(Number::parse(&text), Some(n));
        }
    }
}
