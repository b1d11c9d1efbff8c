//! What API Gateway hands a template: the request as plain data ([`Context`]), and the
//! `$util` functions, written to match the Java functions API Gateway calls.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// The request a template is rendered for; the caller (the API Gateway emulation) fills it.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The request (or integration response) body as received. `$input.body` renders an
    /// empty body as `{}`, as API Gateway does.
    pub body: String,
    /// Path parameters, in order (`$input.params().path`).
    pub path: Vec<(String, String)>,
    /// Query-string parameters, in order (`$input.params().querystring`).
    pub querystring: Vec<(String, String)>,
    /// Headers, in order, names as received (`$input.params().header`).
    pub headers: Vec<(String, String)>,
    /// `$context`: requestId, stage, httpMethod, identity.sourceIp, ... as a JSON object.
    pub context: serde_json::Value,
    /// `$stageVariables`, a JSON object of strings.
    pub stage_variables: serde_json::Value,
}

impl Context {
    /// A context with this body and nothing else.
    pub fn with_body(body: impl Into<String>) -> Self {
        Context {
            body: body.into(),
            ..Context::default()
        }
    }

    /// `$input.params('name')`: the path parameter, else the query-string one, else the
    /// header; an empty string when there is none.
    pub fn param(&self, name: &str) -> &str {
        [&self.path, &self.querystring, &self.headers]
            .into_iter()
            .find_map(|list| list.iter().find(|(k, _)| k == name))
            .map_or("", |(_, v)| v.as_str())
    }
}

/// `$util.escapeJavaScript`: Apache Commons Lang's `escapeJavaScript`, which API Gateway
/// uses. Quotes (single too, so the result is not always valid JSON), backslash and `/`
/// get a backslash; control characters their short or `\u00XX` form; every UTF-16 unit
/// above 0x7F becomes `\uXXXX` with upper-case hex.
pub fn escape_javascript(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for unit in s.encode_utf16() {
        match unit {
            0x08 => out.push_str("\\b"),
            0x09 => out.push_str("\\t"),
            0x0A => out.push_str("\\n"),
            0x0C => out.push_str("\\f"),
            0x0D => out.push_str("\\r"),
            0x27 => out.push_str("\\'"),
            0x22 => out.push_str("\\\""),
            0x5C => out.push_str("\\\\"),
            0x2F => out.push_str("\\/"),
            u if !(0x20..0x80).contains(&u) => out.push_str(&format!("\\u{u:04X}")),
            u => out.push(char::from(u as u8)),
        }
    }
    out
}

/// `$util.urlEncode`: Java's `URLEncoder.encode(s, "UTF-8")`, the
/// `application/x-www-form-urlencoded` form: letters, digits and `.-*_` stay, space
/// becomes `+`, every other byte `%XX`.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `$util.urlDecode`: Java's `URLDecoder.decode(s, "UTF-8")`: `+` is a space, `%XX` a
/// byte; a malformed escape is an error, as Java throws.
pub fn url_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut bytes = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                bytes.push(b' ');
                i += 1;
            }
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        format!("URLDecoder: Illegal hex characters in escape (%) pattern at {i}")
                    })?;
                bytes.push(hex);
                i += 3;
            }
            c => {
                bytes.push(c);
                i += 1;
            }
        }
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// `$util.base64Encode`: standard alphabet with padding, over the string's UTF-8 bytes.
pub fn base64_encode(s: &str) -> String {
    BASE64.encode(s.as_bytes())
}

/// `$util.base64Decode`: standard alphabet, padding optional, whitespace ignored; bytes
/// that are not UTF-8 become U+FFFD.
pub fn base64_decode(s: &str) -> Result<String, String> {
    let compact: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    BASE64
        .decode(compact.as_bytes())
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .map_err(|e| format!("invalid base64: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_javascript_matches_commons_lang() {
        assert_eq!(escape_javascript(r#"it's "x" \ /"#), r#"it\'s \"x\" \\ \/"#);
        assert_eq!(escape_javascript("a\nb\tc\r\u{1}"), "a\\nb\\tc\\r\\u0001");
        assert_eq!(escape_javascript("é€"), "\\u00E9\\u20AC");
        assert_eq!(escape_javascript("😀"), "\\uD83D\\uDE00");
    }

    #[test]
    fn url_round_trip_is_form_style() {
        assert_eq!(url_encode("a b&c=d/é~"), "a+b%26c%3Dd%2F%C3%A9%7E");
        assert_eq!(
            url_decode("a+b%26c%3Dd%2F%C3%A9%7E").as_deref(),
            Ok("a b&c=d/é~")
        );
        assert!(url_decode("%zz").is_err());
        assert!(url_decode("%4").is_err());
    }

    #[test]
    fn base64_round_trip() {
        assert_eq!(base64_encode("hello"), "aGVsbG8=");
        assert_eq!(base64_decode("aGVsbG8").as_deref(), Ok("hello"));
        assert!(base64_decode("!!!").is_err());
    }

    #[test]
    fn params_search_path_then_query_then_header() {
        let ctx = Context {
            path: vec![("id".into(), "p".into())],
            querystring: vec![("id".into(), "q".into()), ("q".into(), "1".into())],
            headers: vec![("h".into(), "v".into()), ("q".into(), "h".into())],
            ..Context::default()
        };
        assert_eq!(ctx.param("id"), "p");
        assert_eq!(ctx.param("q"), "1");
        assert_eq!(ctx.param("h"), "v");
        assert_eq!(ctx.param("none"), "");
    }
}
