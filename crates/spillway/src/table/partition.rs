//! DynamoDB's partition hash of a key value, as its parallel scans show it: a scan's
//! `Segment` of `TotalSegments` holds the items whose hash falls in that segment's
//! share of the 4,096 hash buckets (so segment 0 of 2 is segments 0 and 1 of 4), and
//! clients that split work by segment see the same items per segment as on AWS.
//!
//! The hash is MD5 over the salt `Outliers` and the key's bytes (a string's UTF-8, a
//! binary's bytes, a number in DynamoDB's own decimal encoding); its first 12 bits name
//! the bucket. This is not spillway's on-disk order (`table::key`); only segment
//! membership uses it.

use md5::{Digest, Md5};

use super::number::Number;
use super::value::AttributeValue;

/// Buckets a hash value falls into.
pub const BUCKETS: u64 = 4096;

/// The bucket (0..4096) of a hash key value; `None` for a value that cannot be a key.
pub fn bucket(value: &AttributeValue) -> Option<u64> {
    let bytes = match value {
        AttributeValue::S(s) => s.as_bytes().to_vec(),
        AttributeValue::B(b) => b.to_vec(),
        AttributeValue::N(n) => number_bytes(n),
        _ => return None,
    };
    let mut md5 = Md5::new();
    md5.update(b"Outliers");
    md5.update(&bytes);
    let digest = md5.finalize();
    Some((u64::from(digest[0]) << 4) | u64::from(digest[1] >> 4))
}

/// The segment of `total` that holds `bucket`: segment s covers the buckets from
/// ceil(4096·s/total) to ceil(4096·(s+1)/total) - 1, which is floor(bucket·total/4096).
pub fn segment(bucket: u64, total: u64) -> u64 {
    bucket * total / BUCKETS
}

/// A number in DynamoDB's binary decimal form: a sign-and-exponent byte, then two
/// digits per byte (base 100, each stored plus one, or as 101 minus the pair for a
/// negative number, which also ends with 102 when it is short).
fn number_bytes(n: &Number) -> Vec<u8> {
    if n.is_zero() {
        return vec![0x80];
    }
    let negative = n.is_negative();
    let exponent = n.exponent();
    // An odd exponent is evened by a leading zero digit.
    let pad = usize::from(exponent % 2 != 0);
    let digits: Vec<i64> = std::iter::repeat_n(0, pad)
        .chain(n.digits().iter().map(|d| i64::from(d - b'0')))
        .collect();
    let pairs = digits.len().div_ceil(2);
    let mut out: Vec<i64> = Vec::with_capacity(pairs + 2);
    let mut head = (i64::from(exponent) + pad as i64).div_euclid(2) - 64;
    if negative {
        head = !head;
    }
    out.push(head);
    for pair in digits.chunks(2) {
        let v = pair[0] * 10 + pair.get(1).copied().unwrap_or(0);
        out.push(if negative { 101 - v } else { v + 1 });
    }
    if negative && pairs < 20 {
        out.push(102);
    }
    out.into_iter().map(|b| (b & 0xff) as u8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> u64 {
        bucket(&AttributeValue::S(text.into())).expect("a key")
    }

    fn n(text: &str) -> u64 {
        bucket(&AttributeValue::N(Number::parse(text).expect("number"))).expect("a key")
    }

    #[test]
    fn keys_fall_in_the_segments_aws_puts_them_in() {
        // Placements a parallel scan of 4,096 segments shows at AWS.
        assert_eq!(segment(s("3635"), 4096), 0);
        assert_eq!(segment(s("228"), 4096), 0);
        assert_eq!(segment(s("1668"), 4096), 1);
        assert_eq!(segment(s("3435"), 4096), 4);
        assert_eq!(segment(n("251"), 4096), 1);
        assert_eq!(segment(n("2388"), 4096), 4095);
    }

    #[test]
    fn segments_nest() {
        for key in 0..500 {
            let b = s(&key.to_string());
            assert_eq!(segment(b, 2), segment(b, 4) / 2);
            assert!(segment(b, 1_000_000) < 1_000_000);
        }
    }

    #[test]
    fn numbers_encode_as_dynamodb_does() {
        assert_eq!(number_bytes(&Number::parse("0").expect("n")), [0x80]);
        // 251 = 0.251e3: odd exponent, so digits 0,2,5,1 -> pairs 02, 51.
        assert_eq!(
            number_bytes(&Number::parse("251").expect("n")),
            [0xc2, 3, 52]
        );
        // Negative: complemented head, 101 - pair, then 102.
        assert_eq!(
            number_bytes(&Number::parse("-251").expect("n")),
            [0x3d, 99, 50, 102]
        );
    }
}
