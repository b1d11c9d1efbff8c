//! Kinesis-style sequence numbers.
//!
//! Rendered as a 56-digit decimal string, fixed width so that comparing two of them as
//! numbers and as strings agree:
//!
//! ```text
//! 49 | stream id (14 digits) | shard index (20 digits) | counter (20 digits)
//! ```
//!
//! The counter is the record's position in its shard (contiguous, from 0), so within a
//! shard sequence numbers strictly increase. The stream id is never reused, so a
//! re-created stream never hands out a sequence number of its predecessor. The layout is
//! part of the wire contract (clients store sequence numbers): never change it.

use std::fmt;

use super::StreamError;

/// A decoded sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SequenceNumber {
    pub stream_id: u32,
    pub shard_index: u32,
    pub counter: u64,
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "49{:014}{:020}{:020}",
            self.stream_id, self.shard_index, self.counter
        )
    }
}

impl SequenceNumber {
    /// Parses a sequence number given by a client.
    pub fn parse(text: &str) -> Result<Self, StreamError> {
        let bad = || {
            StreamError::InvalidArgument(format!(
                "StartingSequenceNumber {text} used in GetShardIterator on shard is not a valid sequence number"
            ))
        };
        if text.len() != 56 || !text.starts_with("49") || !text.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let stream_id = text[2..16].parse::<u64>().map_err(|_| bad())?;
        let shard_index = text[16..36].parse::<u64>().map_err(|_| bad())?;
        let counter = text[36..56].parse::<u64>().map_err(|_| bad())?;
        Ok(Self {
            stream_id: u32::try_from(stream_id).map_err(|_| bad())?,
            shard_index: u32::try_from(shard_index).map_err(|_| bad())?,
            counter,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trips_and_orders_like_numbers(s: u32, sh: u32, a: u64, b: u64) {
            let x = SequenceNumber { stream_id: s, shard_index: sh, counter: a };
            let y = SequenceNumber { stream_id: s, shard_index: sh, counter: b };
            let (tx, ty) = (x.to_string(), y.to_string());
            prop_assert_eq!(tx.len(), 56);
            prop_assert_eq!(SequenceNumber::parse(&tx).unwrap(), x);
            prop_assert_eq!(tx.cmp(&ty), a.cmp(&b));
        }

        #[test]
        fn garbage_never_panics(t in "\\PC{0,80}") {
            let _ = SequenceNumber::parse(&t);
        }
    }
}
