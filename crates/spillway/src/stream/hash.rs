//! The 128-bit hash-key space and how Kinesis divides it among shards.

use md5::{Digest, Md5};

use super::StreamError;

/// An inclusive range of hash keys owned by one shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashKeyRange {
    pub start: u128,
    pub end: u128,
}

impl HashKeyRange {
    pub fn contains(&self, key: u128) -> bool {
        self.start <= key && key <= self.end
    }
}

/// Splits the hash-key space into `shard_count` contiguous ranges the way Kinesis does
/// for a new stream: each shard gets floor(2^128 / n) keys and the last shard also takes
/// the remainder, ending at 2^128 - 1.
pub fn even_ranges(shard_count: u32) -> Vec<HashKeyRange> {
    assert!(shard_count > 0, "a stream has at least one shard");
    if shard_count == 1 {
        return vec![HashKeyRange {
            start: 0,
            end: u128::MAX,
        }];
    }
    let n = u128::from(shard_count);
    // floor(2^128 / n), computed without overflowing u128.
    let size = u128::MAX / n + u128::from(u128::MAX % n == n - 1);
    (0..n)
        .map(|i| HashKeyRange {
            start: size * i,
            end: if i == n - 1 {
                u128::MAX
            } else {
                size * (i + 1) - 1
            },
        })
        .collect()
}

/// The hash key of a partition key: its MD5 digest read as a big-endian unsigned integer.
pub fn partition_key_hash(partition_key: &str) -> u128 {
    let digest: [u8; 16] = Md5::digest(partition_key.as_bytes()).into();
    u128::from_be_bytes(digest)
}

/// Parses an ExplicitHashKey: a decimal integer from 0 to 2^128 - 1.
pub fn parse_explicit_hash_key(text: &str) -> Result<u128, StreamError> {
    if text.is_empty() || text.len() > 39 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(StreamError::InvalidArgument(format!(
            "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was {text}"
        )));
    }
    text.parse::<u128>().map_err(|_| {
        StreamError::InvalidArgument(format!(
            "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was {text}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn four_shards_match_kinesis() {
        let r = even_ranges(4);
        assert_eq!(r[0].start, 0);
        assert_eq!(r[0].end, 85070591730234615865843651857942052863);
        assert_eq!(r[1].start, 85070591730234615865843651857942052864);
        assert_eq!(r[3].end, 340282366920938463463374607431768211455);
    }

    #[test]
    fn three_shards_match_kinesis() {
        let r = even_ranges(3);
        assert_eq!(r[0].end, 113427455640312821154458202477256070484);
        assert_eq!(r[1].start, 113427455640312821154458202477256070485);
        assert_eq!(r[2].end, u128::MAX);
    }

    #[test]
    fn md5_of_a_known_key() {
        // md5("a") = 0cc175b9c0f1b6a831c399e269772661
        assert_eq!(
            partition_key_hash("a"),
            0x0cc175b9c0f1b6a831c399e269772661_u128
        );
    }

    proptest! {
        #[test]
        fn ranges_tile_the_space(n in 1u32..2000) {
            let r = even_ranges(n);
            prop_assert_eq!(r.len(), n as usize);
            prop_assert_eq!(r[0].start, 0);
            prop_assert_eq!(r[r.len() - 1].end, u128::MAX);
            for w in r.windows(2) {
                prop_assert_eq!(w[0].end + 1, w[1].start);
            }
        }

        #[test]
        fn explicit_hash_keys_parse_in_range(k: u128) {
            prop_assert_eq!(parse_explicit_hash_key(&k.to_string()).unwrap(), k);
        }
    }

    #[test]
    fn explicit_hash_key_out_of_range() {
        assert!(parse_explicit_hash_key("340282366920938463463374607431768211456").is_err());
        assert!(parse_explicit_hash_key("-1").is_err());
        assert!(parse_explicit_hash_key("").is_err());
    }
}
