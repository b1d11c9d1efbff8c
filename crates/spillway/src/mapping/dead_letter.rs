//! Dead letters: Lambda's on-failure record for a Kinesis batch that exhausted its
//! retries or aged out, kept durably so that nothing is dropped silently.

use serde::{Deserialize, Serialize};

/// Where an on-failure record goes besides the local dead letter: the mapping's
/// `DestinationConfig.OnFailure.Destination` (an SQS queue's ARN; `queue::Queues`
/// implements it).
pub trait FailureDestination: Send + Sync {
    /// Delivers the record (its JSON) to `destination`; why not, when it fails.
    fn deliver(&self, destination: &str, record: &[u8]) -> Result<(), String>;
}

/// The on-failure record, shaped as Lambda sends it to an SQS or SNS destination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    #[serde(rename = "requestContext")]
    pub request_context: RequestContext,
    #[serde(rename = "responseContext")]
    pub response_context: ResponseContext,
    pub version: String,
    pub timestamp: String,
    #[serde(rename = "KinesisBatchInfo")]
    pub kinesis_batch_info: KinesisBatchInfo,
}

impl DeadLetter {
    /// The record of a batch bypassed under `condition` (`RetryAttemptsExhausted`,
    /// `RecordAgeExceeded`) after `invokes` invocations, at `now_ms`.
    pub fn for_batch(
        function_arn: &str,
        condition: &str,
        invokes: u64,
        now_ms: u64,
        shard_id: &str,
        batch: &[crate::stream::Record],
        stream_arn: &str,
    ) -> Self {
        let first = batch.first();
        let last = batch.last();
        let invoked = invokes > 0;
        Self {
            request_context: RequestContext {
                request_id: uuid::Uuid::new_v4().to_string(),
                function_arn: function_arn.to_owned(),
                condition: condition.to_owned(),
                approximate_invoke_count: invokes,
            },
            response_context: ResponseContext {
                status_code: if invoked { 200 } else { 0 },
                executed_version: if invoked {
                    "$LATEST".into()
                } else {
                    String::new()
                },
                function_error: if invoked {
                    "Unhandled".into()
                } else {
                    String::new()
                },
            },
            version: "1.0".into(),
            timestamp: iso8601(now_ms),
            kinesis_batch_info: KinesisBatchInfo {
                shard_id: shard_id.to_owned(),
                start_sequence_number: first.map(|r| r.sequence_number.clone()).unwrap_or_default(),
                end_sequence_number: last.map(|r| r.sequence_number.clone()).unwrap_or_default(),
                approximate_arrival_of_first_record: iso8601(first.map_or(0, |r| r.arrival_ms)),
                approximate_arrival_of_last_record: iso8601(last.map_or(0, |r| r.arrival_ms)),
                batch_size: batch.len(),
                stream_arn: stream_arn.to_owned(),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestContext {
    pub request_id: String,
    pub function_arn: String,
    /// `RetryAttemptsExhausted` or `RecordAgeExceeded`.
    pub condition: String,
    pub approximate_invoke_count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseContext {
    pub status_code: u16,
    pub executed_version: String,
    /// `Unhandled` after a function error; empty when the function was not invoked.
    pub function_error: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KinesisBatchInfo {
    pub shard_id: String,
    pub start_sequence_number: String,
    pub end_sequence_number: String,
    pub approximate_arrival_of_first_record: String,
    pub approximate_arrival_of_last_record: String,
    pub batch_size: usize,
    pub stream_arn: String,
}

/// The civil date (year, month, day) of a count of days since 1970-01-01 (proleptic
/// Gregorian). Shared by every place that prints a UTC date.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Epoch milliseconds as ISO 8601 UTC with milliseconds: `2019-11-14T00:38:06.021Z`.
pub fn iso8601(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_matches_known_instants() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_573_691_886_021), "2019-11-14T00:38:06.021Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
