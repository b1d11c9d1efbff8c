//! Shard iterators: opaque, tamper-evident and expiring, as Kinesis' are.
//!
//! An iterator is base64 of `00 00 00 00 00 00 00 01 | version:u8 = 2 | stream_id:u32 |
//! shard:u32 | counter:u64 | issued_ms:u64 | name_len:u8 | stream name | tag | zeros`,
//! where `tag` is the first 16 bytes of HMAC-SHA256 over everything before it under a
//! key kept in the data dir, so iterators survive a restart and a forged or altered one
//! is refused. The stream's name is inside so that an iterator of a deleted stream is
//! answered with the stream's name, as Kinesis answers; the leading eight bytes and the
//! zero padding (to 152 bytes plus a multiple of 16) give it the shape of Kinesis' own
//! iterators, which some tools check. Iterators expire 5 minutes after they were issued.
//! Version 1 iterators (no name, no padding) are still read.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// How long an iterator stays valid.
pub const ITERATOR_TTL_MS: u64 = 300_000;

const VERSION: u8 = 1;
const BODY: usize = 1 + 4 + 4 + 8 + 8;
const TAG: usize = 16;
/// Kinesis' iterators begin with these bytes.
const PREFIX: [u8; 8] = [0, 0, 0, 0, 0, 0, 0, 1];
const VERSION_2: u8 = 2;
/// Prefix, version, the four numbers, the name's length.
const HEAD_2: usize = 8 + BODY + 1;

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

    /// An iterator for `p` in the stream named `stream_name`.
    pub fn encode(&self, p: IteratorPosition, stream_name: &str) -> String {
        let name = &stream_name.as_bytes()[..stream_name.len().min(255)];
        let mut b = Vec::with_capacity(HEAD_2 + name.len() + TAG + 16);
        b.extend_from_slice(&PREFIX);
        b.push(VERSION_2);
        b.extend_from_slice(&p.stream_id.to_be_bytes());
        b.extend_from_slice(&p.shard_index.to_be_bytes());
        b.extend_from_slice(&p.counter.to_be_bytes());
        b.extend_from_slice(&p.issued_ms.to_be_bytes());
        b.push(name.len() as u8);
        b.extend_from_slice(name);
        let tag = self.tag(&b);
        b.extend_from_slice(&tag);
        let len = if b.len() <= 152 {
            152
        } else {
            152 + (b.len() - 152).div_ceil(16) * 16
        };
        b.resize(len, 0);
        base64::engine::general_purpose::STANDARD.encode(b)
    }

    /// The position an iterator points at and the name of its stream.
    pub fn decode(
        &self,
        text: &str,
        now_ms: u64,
    ) -> Result<(IteratorPosition, String), IteratorError> {
        let b = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| IteratorError::Invalid)?;
        let (body, tag, name) = if b.len() == BODY + TAG && b[0] == VERSION {
            let (body, tag) = b.split_at(BODY);
            (body, tag, String::new())
        } else if b.len() >= HEAD_2 && b[..8] == PREFIX && b[8] == VERSION_2 {
            let n = usize::from(b[HEAD_2 - 1]);
            let end = HEAD_2 + n;
            if b.len() < end + TAG || b[end + TAG..].iter().any(|&z| z != 0) {
                return Err(IteratorError::Invalid);
            }
            let name =
                String::from_utf8(b[HEAD_2..end].to_vec()).map_err(|_| IteratorError::Invalid)?;
            (&b[..end], &b[end..end + TAG], name)
        } else {
            return Err(IteratorError::Invalid);
        };
        // Constant-time comparison through the MAC API.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(body);
        mac.verify_truncated_left(tag)
            .map_err(|_| IteratorError::Invalid)?;
        let at = if body[0] == VERSION { 0 } else { 8 };
        let u32_at =
            |i: usize| u32::from_be_bytes(body[at + i..at + i + 4].try_into().expect("4 bytes"));
        let u64_at =
            |i: usize| u64::from_be_bytes(body[at + i..at + i + 8].try_into().expect("8 bytes"));
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
        Ok((p, name))
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
        let text = codec().encode(p, "s");
        assert_eq!(
            codec().decode(&text, 1_000 + ITERATOR_TTL_MS),
            Ok((p, "s".to_owned()))
        );
        // Kinesis' shape: eight leading bytes, 152 bytes plus a multiple of 16.
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&text)
            .unwrap();
        assert_eq!(raw[..8], PREFIX);
        assert_eq!(raw.len(), 152);
        let long = codec().encode(p, &"n".repeat(128));
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&long)
            .unwrap();
        assert_eq!((raw.len() - 152) % 16, 0);
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
        fn any_alteration_is_refused(i in 0usize..152, bit in 0u8..8) {
            let p = IteratorPosition { stream_id: 1, shard_index: 0, counter: 9, issued_ms: 5 };
            let mut raw = base64::engine::general_purpose::STANDARD.decode(codec().encode(p, "stream")).unwrap();
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
