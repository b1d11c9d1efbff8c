//! Shard iterators: opaque, tamper-evident and expiring, as Kinesis' are.
//!
//! An iterator is base64 of `version:u8 = 1 | stream_id:u32 | shard:u32 | counter:u64 |
//! issued_ms:u64 | tag`, where `tag` is the first 16 bytes of HMAC-SHA256 over the rest
//! under a key kept in the data dir, so iterators survive a restart and a forged or
//! altered one is refused. Iterators expire 5 minutes after they were issued.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// How long an iterator stays valid.
pub const ITERATOR_TTL_MS: u64 = 300_000;

const VERSION: u8 = 1;
const BODY: usize = 1 + 4 + 4 + 8 + 8;
const TAG: usize = 16;

/// What an iterator points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IteratorPosition {
    pub stream_id: u32,
    pub shard_index: u32,
    pub counter: u64,
    pub issued_ms: u64,
}

/// Why an iterator was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IteratorError {
    /// Not one of ours, or altered.
    Invalid,
    /// Older than [`ITERATOR_TTL_MS`].
    Expired { issued_ms: u64, now_ms: u64 },
}

/// Signs and checks iterators with one key.
#[derive(Clone)]
pub struct IteratorCodec {
    key: [u8; 32],
}

impl std::fmt::Debug for IteratorCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IteratorCodec")
    }
}

impl IteratorCodec {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    /// Loads the key from `dir/iterator-key`, creating it on first use.
    pub fn load_or_create(dir: &std::path::Path) -> std::io::Result<Self> {
        use std::io::Write;
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let path = dir.join("iterator-key");
        if let Ok(bytes) = std::fs::read(&path)
            && let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice())
        {
            // A secret: readable by its owner only, also when an older spillway wrote it.
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
            return Ok(Self::new(key));
        }
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        std::fs::create_dir_all(dir)?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)?;
        file.write_all(&key)?;
        file.sync_all()?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        Ok(Self::new(key))
    }

    fn tag(&self, body: &[u8]) -> [u8; TAG] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(body);
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; TAG];
        tag.copy_from_slice(&full[..TAG]);
        tag
    }

    pub fn encode(&self, p: IteratorPosition) -> String {
        let mut b = Vec::with_capacity(BODY + TAG);
        b.push(VERSION);
        b.extend_from_slice(&p.stream_id.to_be_bytes());
        b.extend_from_slice(&p.shard_index.to_be_bytes());
        b.extend_from_slice(&p.counter.to_be_bytes());
        b.extend_from_slice(&p.issued_ms.to_be_bytes());
        let tag = self.tag(&b);
        b.extend_from_slice(&tag);
        base64::engine::general_purpose::STANDARD.encode(b)
    }

    pub fn decode(&self, text: &str, now_ms: u64) -> Result<IteratorPosition, IteratorError> {
        let b = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| IteratorError::Invalid)?;
        if b.len() != BODY + TAG || b[0] != VERSION {
            return Err(IteratorError::Invalid);
        }
        let (body, tag) = b.split_at(BODY);
        // Constant-time comparison through the MAC API.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(body);
        mac.verify_truncated_left(tag)
            .map_err(|_| IteratorError::Invalid)?;
        let u32_at = |i: usize| u32::from_be_bytes(body[i..i + 4].try_into().expect("4 bytes"));
        let u64_at = |i: usize| u64::from_be_bytes(body[i..i + 8].try_into().expect("8 bytes"));
        let p = IteratorPosition {
            stream_id: u32_at(1),
            shard_index: u32_at(5),
            counter: u64_at(9),
            issued_ms: u64_at(17),
        };
        if now_ms.saturating_sub(p.issued_ms) > ITERATOR_TTL_MS {
            return Err(IteratorError::Expired {
                issued_ms: p.issued_ms,
                now_ms,
            });
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn codec() -> IteratorCodec {
        IteratorCodec::new([7u8; 32])
    }

    #[test]
    fn round_trips_and_expires() {
        let p = IteratorPosition {
            stream_id: 3,
            shard_index: 1,
            counter: 42,
            issued_ms: 1_000,
        };
        let text = codec().encode(p);
        assert_eq!(codec().decode(&text, 1_000 + ITERATOR_TTL_MS), Ok(p));
        assert!(matches!(
            codec().decode(&text, 1_001 + ITERATOR_TTL_MS),
            Err(IteratorError::Expired { .. })
        ));
        // Another key does not accept it.
        assert_eq!(
            IteratorCodec::new([8u8; 32]).decode(&text, 1_000),
            Err(IteratorError::Invalid)
        );
    }

    proptest! {
        #[test]
        fn any_alteration_is_refused(i in 0usize..41, bit in 0u8..8) {
            let p = IteratorPosition { stream_id: 1, shard_index: 0, counter: 9, issued_ms: 5 };
            let mut raw = base64::engine::general_purpose::STANDARD.decode(codec().encode(p)).unwrap();
            raw[i] ^= 1 << bit;
            let text = base64::engine::general_purpose::STANDARD.encode(raw);
            prop_assert_eq!(codec().decode(&text, 5), Err(IteratorError::Invalid));
        }

        #[test]
        fn garbage_is_refused_without_panic(t in "\\PC{0,120}") {
            prop_assert!(codec().decode(&t, 0).is_err());
        }
    }
}
