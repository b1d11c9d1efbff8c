//! Item keys: the order-preserving byte encoding of an item's primary key. STABLE: it is
//! part of the on-disk format (see `storage::keys`); never change an encoding.
//!
//! The item key is the hash key's encoding followed by the range key's (if the table has
//! one). Each part sorts like its value and is self-delimiting:
//!
//! - S and B: the bytes, with 0x00 escaped as 0x00 0xFF, then the terminator 0x00 0x00.
//! - N (value = ±0.d1d2…dn × 10^e):
//!   zero: `0x80`;
//!   positive: `0xC0`, (e + 0x8000) as u16 BE, the ASCII digits, `0x00`;
//!   negative: `0x40`, !(e + 0x8000) as u16 BE, each digit as 0xFF - ASCII, `0xFF`.

use crate::number::Number;
use crate::value::AttributeValue;

/// Appends the encoding of one key attribute value. Only S, N and B are key types.
pub fn encode_part(v: &AttributeValue, out: &mut Vec<u8>) {
    match v {
        AttributeValue::S(s) => encode_bytes(s.as_bytes(), out),
        AttributeValue::B(b) => encode_bytes(b, out),
        AttributeValue::N(n) => encode_number(n, out),
        other => unreachable!(
            "{} is not a key type; the schema check comes first",
            other.type_name()
        ),
    }
}

fn encode_bytes(b: &[u8], out: &mut Vec<u8>) {
    for &byte in b {
        out.push(byte);
        if byte == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0, 0]);
}

fn encode_number(n: &Number, out: &mut Vec<u8>) {
    if n.is_zero() {
        out.push(0x80);
        return;
    }
    let biased = (n.exponent() + 0x8000) as u16;
    if n.is_negative() {
        out.push(0x40);
        out.extend_from_slice(&(!biased).to_be_bytes());
        out.extend(n.digits().iter().map(|d| 0xFF - d));
        out.push(0xFF);
    } else {
        out.push(0xC0);
        out.extend_from_slice(&biased.to_be_bytes());
        out.extend_from_slice(n.digits());
        out.push(0x00);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc(v: &AttributeValue) -> Vec<u8> {
        let mut out = Vec::new();
        encode_part(v, &mut out);
        out
    }

    #[test]
    fn layout_is_stable() {
        assert_eq!(enc(&AttributeValue::S("a\0b".into())), b"a\0\xFFb\0\0");
        assert_eq!(enc(&AttributeValue::N(Number::parse("0").unwrap())), [0x80]);
        assert_eq!(
            enc(&AttributeValue::N(Number::parse("12").unwrap())),
            [0xC0, 0x80, 0x02, b'1', b'2', 0]
        );
    }

    proptest! {
        #[test]
        fn numbers_sort_like_values(a in -1_000_000i64..1_000_000, b in -1_000_000i64..1_000_000, sa in 0u32..6, sb in 0u32..6) {
            // Decimals a/10^sa and b/10^sb.
            let na = Number::parse(&format!("{a}e-{sa}")).unwrap();
            let nb = Number::parse(&format!("{b}e-{sb}")).unwrap();
            let (ea, eb) = (enc(&AttributeValue::N(na.clone())), enc(&AttributeValue::N(nb.clone())));
            prop_assert_eq!(ea.cmp(&eb), na.cmp(&nb));
        }

        #[test]
        fn strings_sort_like_bytes_and_compose(a: Vec<u8>, b: Vec<u8>, c: Vec<u8>, d: Vec<u8>) {
            let s = |v: &Vec<u8>| AttributeValue::B(v.clone().into());
            prop_assert_eq!(enc(&s(&a)).cmp(&enc(&s(&b))), a.cmp(&b));
            // (hash, range) pairs sort by hash, then range: parts are self-delimiting.
            let mut x = enc(&s(&a)); x.extend(enc(&s(&c)));
            let mut y = enc(&s(&b)); y.extend(enc(&s(&d)));
            prop_assert_eq!(x.cmp(&y), (a, c).cmp(&(b, d)));
        }
    }
}
