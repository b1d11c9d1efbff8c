//! DynamoDB numbers: decimals of up to 38 significant digits, magnitude 1E-130 to
//! under 1E+126, stored and compared exactly (never through f64).

use std::cmp::Ordering;
use std::fmt;

/// Why a number was refused; texts as DynamoDB words them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    #[error("The parameter cannot be converted to a numeric value: {0}")]
    NotNumeric(String),
    #[error("Attempting to store more than 38 significant digits in a Number")]
    TooPrecise,
    #[error(
        "Number overflow. Attempting to store a number with magnitude larger than supported range"
    )]
    Overflow,
    #[error(
        "Number underflow. Attempting to store a number with magnitude smaller than supported range"
    )]
    Underflow,
}

/// An exact decimal: value = (-1)^negative × 0.d1d2…dn × 10^exponent, with d1 != 0 and
/// dn != 0; zero has no digits (and is never negative).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Number {
    negative: bool,
    /// ASCII digits, no leading or trailing zeros.
    digits: Vec<u8>,
    exponent: i32,
}

impl Number {
    /// Parses a number as DynamoDB accepts it: `[+-]digits[.digits][e[+-]digits]`.
    pub fn parse(text: &str) -> Result<Self, NumberError> {
        let bad = || NumberError::NotNumeric(text.to_owned());
        let bytes = text.as_bytes();
        let mut i = 0;
        let mut negative = false;
        if let Some(&c) = bytes.first()
            && (c == b'+' || c == b'-')
        {
            negative = c == b'-';
            i = 1;
        }
        let int_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let int_part = &bytes[int_start..i];
        let mut frac_part: &[u8] = &[];
        if i < bytes.len() && bytes[i] == b'.' {
            i += 1;
            let s = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            frac_part = &bytes[s..i];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(bad());
        }
        let mut exp: i64 = 0;
        if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
            i += 1;
            let mut exp_neg = false;
            if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
                exp_neg = bytes[i] == b'-';
                i += 1;
            }
            let s = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if s == i || i - s > 6 {
                return Err(bad());
            }
            let v: i64 = text[s..i].parse().map_err(|_| bad())?;
            exp = if exp_neg { -v } else { v };
        }
        if i != bytes.len() {
            return Err(bad());
        }
        // All digits, then strip leading zeros (adjusting nothing: the point position is
        // counted from the integer part) and trailing zeros.
        let mut all: Vec<u8> = int_part.iter().chain(frac_part).copied().collect();
        let mut point = int_part.len() as i64; // digits before the decimal point
        let lead = all.iter().take_while(|&&d| d == b'0').count();
        all.drain(..lead);
        point -= lead as i64;
        while all.last() == Some(&b'0') {
            all.pop();
        }
        if all.is_empty() {
            return Ok(Self::zero());
        }
        if all.len() > 38 {
            return Err(NumberError::TooPrecise);
        }
        let exponent = point + exp;
        // value = 0.d1… × 10^exponent; DynamoDB allows 1E-130 ..= 9.99…E+125.
        if exponent > 126 {
            return Err(NumberError::Overflow);
        }
        if exponent < -129 {
            return Err(NumberError::Underflow);
        }
        Ok(Self {
            negative,
            digits: all,
            exponent: exponent as i32,
        })
    }

    pub fn zero() -> Self {
        Self {
            negative: false,
            digits: Vec::new(),
            exponent: 0,
        }
    }

    pub fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// Significant digits (ASCII), without leading or trailing zeros.
    pub fn digits(&self) -> &[u8] {
        &self.digits
    }

    /// The exponent e in 0.digits × 10^e.
    pub fn exponent(&self) -> i32 {
        self.exponent
    }

    /// Bytes this number counts for in an item's size (DynamoDB: about one byte per
    /// two significant digits, plus one).
    pub fn size(&self) -> usize {
        self.digits.len().div_ceil(2) + 1
    }

    fn cmp_magnitude(&self, other: &Self) -> Ordering {
        match (self.is_zero(), other.is_zero()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            _ => {}
        }
        self.exponent
            .cmp(&other.exponent)
            .then_with(|| self.digits.cmp(&other.digits))
    }
}

impl Ord for Number {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.negative, other.negative) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => self.cmp_magnitude(other),
            (true, true) => other.cmp_magnitude(self),
        }
    }
}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Number {
    /// Canonical plain decimal, as DynamoDB returns numbers: `1.50` -> `1.5`, `1e2` -> `100`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("0");
        }
        let digits = std::str::from_utf8(&self.digits).map_err(|_| fmt::Error)?;
        if self.negative {
            f.write_str("-")?;
        }
        let e = self.exponent;
        let n = self.digits.len() as i32;
        if e <= 0 {
            write!(f, "0.{}{digits}", "0".repeat((-e) as usize))
        } else if e >= n {
            write!(f, "{digits}{}", "0".repeat((e - n) as usize))
        } else {
            let (a, b) = digits.split_at(e as usize);
            write!(f, "{a}.{b}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn n(t: &str) -> Number {
        Number::parse(t).unwrap()
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(n("1.50").to_string(), "1.5");
        assert_eq!(n("1e2").to_string(), "100");
        assert_eq!(n("-0.00100").to_string(), "-0.001");
        assert_eq!(n("-0").to_string(), "0");
        assert_eq!(n("+7").to_string(), "7");
        assert_eq!(n(".5").to_string(), "0.5");
        assert_eq!(n("5.").to_string(), "5");
        assert_eq!(n("123.456E-2").to_string(), "1.23456");
    }

    #[test]
    fn thirty_eight_digits_are_exact() {
        let t = "12345678901234567890123456789012345678";
        assert_eq!(n(t).to_string(), t);
        let t = "-0.12345678901234567890123456789012345678";
        assert_eq!(n(t).to_string(), t);
        assert_eq!(
            Number::parse("123456789012345678901234567890123456789"),
            Err(NumberError::TooPrecise)
        );
        // Trailing zeros are not significant.
        assert!(Number::parse("1234567890123456789012345678901234567800000").is_ok());
    }

    #[test]
    fn range_limits() {
        assert!(Number::parse("1E-130").is_ok());
        assert_eq!(Number::parse("1E-131"), Err(NumberError::Underflow));
        assert!(Number::parse("9.9999999999999999999999999999999999999E+125").is_ok());
        assert_eq!(Number::parse("1E+126"), Err(NumberError::Overflow));
    }

    #[test]
    fn garbage_is_refused() {
        for t in [
            "", "abc", "1..2", "1e", "--1", "1 ", " 1", "0x10", "NaN", "Infinity", "1e+", ".",
        ] {
            assert!(
                matches!(Number::parse(t), Err(NumberError::NotNumeric(_))),
                "{t:?}"
            );
        }
    }

    #[test]
    fn ordering_is_numeric() {
        let mut v: Vec<Number> = [
            "-10", "-1.25", "-1.2", "0", "0.001", "1.2", "1.25", "10", "1e3",
        ]
        .iter()
        .map(|t| n(t))
        .collect();
        let sorted = v.clone();
        v.reverse();
        v.sort();
        assert_eq!(v, sorted);
    }

    proptest! {
        #[test]
        fn integers_round_trip_and_order(a: i64, b: i64) {
            let (x, y) = (n(&a.to_string()), n(&b.to_string()));
            prop_assert_eq!(x.to_string(), a.to_string());
            prop_assert_eq!(x.cmp(&y), a.cmp(&b));
        }

        #[test]
        fn parse_never_panics(t in "\\PC{0,60}") {
            let _ = Number::parse(&t);
        }

        #[test]
        fn canonical_text_reparses_to_itself(t in "-?[0-9]{1,20}(\\.[0-9]{1,18})?(e-?[0-9]{1,2})?") {
            if let Ok(x) = Number::parse(&t) {
                prop_assert_eq!(Number::parse(&x.to_string()).unwrap(), x);
            }
        }
    }
}

impl Number {
    /// Exact sum; an error when the result needs more than 38 significant digits or
    /// leaves DynamoDB's range.
    pub fn add(&self, other: &Number) -> Result<Number, NumberError> {
        if self.is_zero() {
            return Ok(other.clone());
        }
        if other.is_zero() {
            return Ok(self.clone());
        }
        // Align both as integers over the smaller unit: value = m × 10^(e - len(digits)).
        let unit = |n: &Number| n.exponent - n.digits.len() as i32;
        let low = unit(self).min(unit(other));
        let mantissa = |n: &Number| -> Vec<u8> {
            let mut d: Vec<u8> = n.digits.iter().map(|c| c - b'0').collect();
            d.extend(std::iter::repeat_n(0, (unit(n) - low) as usize));
            d
        };
        let (a, b) = (mantissa(self), mantissa(other));
        let (negative, digits) = if self.negative == other.negative {
            (self.negative, add_digits(&a, &b))
        } else {
            match cmp_digits(&a, &b) {
                Ordering::Equal => return Ok(Number::zero()),
                Ordering::Greater => (self.negative, sub_digits(&a, &b)),
                Ordering::Less => (other.negative, sub_digits(&b, &a)),
            }
        };
        let text: String = digits.iter().map(|d| (d + b'0') as char).collect();
        Number::parse(&format!("{}{text}e{low}", if negative { "-" } else { "" }))
    }

    /// Exact difference.
    pub fn sub(&self, other: &Number) -> Result<Number, NumberError> {
        let mut neg = other.clone();
        if !neg.is_zero() {
            neg.negative = !neg.negative;
        }
        self.add(&neg)
    }
}

fn trim(d: &[u8]) -> &[u8] {
    let lead = d.iter().take_while(|x| **x == 0).count();
    &d[lead.min(d.len().saturating_sub(1))..]
}

fn cmp_digits(a: &[u8], b: &[u8]) -> Ordering {
    let (a, b) = (trim(a), trim(b));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn add_digits(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(a.len().max(b.len()) + 1);
    let (mut i, mut j, mut carry) = (a.len(), b.len(), 0u8);
    while i > 0 || j > 0 || carry > 0 {
        let x = if i > 0 {
            i -= 1;
            a[i]
        } else {
            0
        };
        let y = if j > 0 {
            j -= 1;
            b[j]
        } else {
            0
        };
        let s = x + y + carry;
        out.push(s % 10);
        carry = s / 10;
    }
    out.reverse();
    out
}

/// a - b for a >= b.
fn sub_digits(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(a.len());
    let (mut i, mut j, mut borrow) = (a.len(), b.len(), 0i8);
    while i > 0 {
        i -= 1;
        let y = if j > 0 {
            j -= 1;
            b[j] as i8
        } else {
            0
        };
        let mut d = a[i] as i8 - y - borrow;
        borrow = 0;
        if d < 0 {
            d += 10;
            borrow = 1;
        }
        out.push(d as u8);
    }
    out.reverse();
    out
}

#[cfg(test)]
mod arithmetic_tests {
    use super::*;
    use proptest::prelude::*;

    fn n(t: &str) -> Number {
        Number::parse(t).unwrap()
    }

    #[test]
    fn decimal_sums_are_exact() {
        assert_eq!(n("0.1").add(&n("0.2")).unwrap().to_string(), "0.3");
        assert_eq!(n("1").sub(&n("1.000")).unwrap().to_string(), "0");
        assert_eq!(n("-5").add(&n("3.5")).unwrap().to_string(), "-1.5");
        assert_eq!(
            n("99999999999999999999999999999999999999")
                .add(&n("1"))
                .unwrap()
                .to_string(),
            "100000000000000000000000000000000000000"
        );
        assert_eq!(n("1e100").add(&n("1e-100")), Err(NumberError::TooPrecise));
    }

    proptest! {
        #[test]
        fn matches_integer_arithmetic(a in -1_000_000_000_000i64..1_000_000_000_000, b in -1_000_000_000_000i64..1_000_000_000_000) {
            prop_assert_eq!(n(&a.to_string()).add(&n(&b.to_string())).unwrap().to_string(), (a + b).to_string());
            prop_assert_eq!(n(&a.to_string()).sub(&n(&b.to_string())).unwrap().to_string(), (a - b).to_string());
        }
    }
}
