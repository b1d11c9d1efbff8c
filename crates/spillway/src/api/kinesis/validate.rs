//! Request field checks with Kinesis' own wording:
//! `1 validation error detected: Value 'x' at 'streamName' failed to satisfy constraint: ...`.

use serde_json::Value;

use super::KinesisError;

/// Joins constraint failures the way AWS does.
pub fn render(errors: &[String]) -> String {
    let n = errors.len();
    format!(
        "{n} validation error{} detected: {}",
        if n == 1 { "" } else { "s" },
        errors.join("; ")
    )
}

/// A pattern check: the predicate and the pattern as the message shows it.
pub type Pattern = Option<(fn(&str) -> bool, &'static str)>;

/// Collects constraint failures of one request.
#[derive(Debug, Default)]
pub struct Checks {
    errors: Vec<String>,
}

/// How a value is shown in a message: `'text'`, a number, or `null`.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("'{s}'"),
        Value::Null => "null".into(),
        other => format!("'{other}'"),
    }
}

impl Checks {
    fn fail(&mut self, value: &Value, field: &str, constraint: &str) {
        self.errors.push(format!(
            "Value {} at '{field}' failed to satisfy constraint: {constraint}",
            shown(value)
        ));
    }

    /// Ends the checks: an error if any failed.
    pub fn finish(self) -> Result<(), KinesisError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(KinesisError::Validation(self.errors))
        }
    }

    /// A string field: required or not, length bounds (in characters), and a pattern
    /// check given as (predicate, pattern text).
    pub fn string(
        &mut self,
        req: &Value,
        key: &str,
        field: &str,
        required: bool,
        len: (usize, usize),
        pattern: Pattern,
    ) -> Result<Option<String>, KinesisError> {
        match req.get(key) {
            None | Some(Value::Null) => {
                if required {
                    self.fail(&Value::Null, field, "Member must not be null");
                }
                Ok(None)
            }
            Some(Value::String(s)) => {
                let n = s.chars().count();
                if let Some((ok, text)) = pattern
                    && !ok(s)
                {
                    self.fail(
                        &Value::String(s.clone()),
                        field,
                        &format!("Member must satisfy regular expression pattern: {text}"),
                    );
                }
                if n < len.0 {
                    self.fail(
                        &Value::String(s.clone()),
                        field,
                        &format!("Member must have length greater than or equal to {}", len.0),
                    );
                }
                if n > len.1 {
                    self.fail(
                        &Value::String(s.clone()),
                        field,
                        &format!("Member must have length less than or equal to {}", len.1),
                    );
                }
                Ok(Some(s.clone()))
            }
            Some(_) => Err(KinesisError::Serialization(format!(
                "STRING_VALUE can not be converted to a String ({key})"
            ))),
        }
    }

    /// An integer field with bounds.
    pub fn integer(
        &mut self,
        req: &Value,
        key: &str,
        field: &str,
        required: bool,
        range: (i64, i64),
    ) -> Result<Option<i64>, KinesisError> {
        match req.get(key) {
            None | Some(Value::Null) => {
                if required {
                    self.fail(&Value::Null, field, "Member must not be null");
                }
                Ok(None)
            }
            Some(Value::Number(n)) => {
                let v = n
                    .as_i64()
                    .ok_or_else(|| KinesisError::Serialization(format!("{key}: not an integer")))?;
                if v < range.0 {
                    self.fail(
                        &Value::Number(n.clone()),
                        field,
                        &format!(
                            "Member must have value greater than or equal to {}",
                            range.0
                        ),
                    );
                }
                if v > range.1 {
                    self.fail(
                        &Value::Number(n.clone()),
                        field,
                        &format!("Member must have value less than or equal to {}", range.1),
                    );
                }
                Ok(Some(v))
            }
            Some(_) => Err(KinesisError::Serialization(format!(
                "NUMBER_VALUE can not be converted to an Integer ({key})"
            ))),
        }
    }

    /// An enum field.
    pub fn one_of(
        &mut self,
        req: &Value,
        key: &str,
        field: &str,
        required: bool,
        values: &[&str],
    ) -> Result<Option<String>, KinesisError> {
        let v = self.string(req, key, field, required, (0, usize::MAX), None)?;
        if let Some(s) = &v
            && !values.contains(&s.as_str())
        {
            self.fail(
                &Value::String(s.clone()),
                field,
                &format!(
                    "Member must satisfy enum value set: [{}]",
                    values.join(", ")
                ),
            );
        }
        Ok(v)
    }

    /// A failure found outside the helpers.
    pub fn constraint(&mut self, value: &Value, field: &str, constraint: &str) {
        self.fail(value, field, constraint);
    }
}

pub fn is_name(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

pub fn is_hash_key(s: &str) -> bool {
    s == "0"
        || (s.len() <= 39
            && s.bytes().all(|b| b.is_ascii_digit())
            && !s.starts_with('0')
            && !s.is_empty())
}

pub fn is_sequence_number(s: &str) -> bool {
    s == "0"
        || (!s.starts_with('0')
            && !s.is_empty()
            && s.len() <= 129
            && s.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_match_aws_wording() {
        let mut c = Checks::default();
        let req = json!({"StreamName": "bad name!", "ShardCount": 0});
        c.string(
            &req,
            "StreamName",
            "streamName",
            true,
            (1, 128),
            Some((is_name, "[a-zA-Z0-9_.-]+")),
        )
        .unwrap();
        c.integer(&req, "ShardCount", "shardCount", false, (1, 100_000))
            .unwrap();
        let err = c.finish().unwrap_err().to_string();
        assert_eq!(
            err,
            "2 validation errors detected: Value 'bad name!' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; Value '0' at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1"
        );
    }
}
