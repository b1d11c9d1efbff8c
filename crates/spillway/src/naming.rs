//! AWS's naming rules, shared by the config (checked when it loads) and the domain
//! (checked on API calls), so that neither imports the other for them.

/// A Kinesis stream name: 1 to 128 characters of `a-z A-Z 0-9 _ . -`.
pub fn stream_name(name: &str) -> Result<(), String> {
    let ok = (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "stream name `{name}` must be 1-128 characters of a-z, A-Z, 0-9, _ . -"
        ))
    }
}
