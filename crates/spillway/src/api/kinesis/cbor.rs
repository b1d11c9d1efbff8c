//! AWS CBOR 1.1 (`application/x-amz-cbor-1.1`), which the Java SDK v2 uses for Kinesis by
//! default: the same members as JSON 1.1, but blobs are CBOR byte strings and timestamps
//! are tag 1 over epoch milliseconds (an integer).
//!
//! Requests are turned into the JSON form the actions read (byte strings become base64,
//! tagged timestamps become epoch seconds); responses go the other way, by member name.

use base64::Engine;
use ciborium::value::Value as Cbor;
use serde_json::Value as Json;

use super::KinesisError;

/// Members that are blobs (base64 in JSON, byte strings in CBOR).
const BLOBS: [&str; 1] = ["Data"];
/// Members that are timestamps (epoch seconds in JSON, tag 1 + epoch millis in CBOR).
const TIMESTAMPS: [&str; 4] = [
    "ApproximateArrivalTimestamp",
    "ConsumerCreationTimestamp",
    "StreamCreationTimestamp",
    "Timestamp",
];

/// Decodes a CBOR request into its JSON form.
pub fn decode_request(body: &[u8]) -> Result<Json, KinesisError> {
    if body.is_empty() {
        return Ok(Json::Object(Default::default()));
    }
    let v: Cbor = ciborium::de::from_reader(body).map_err(|_| KinesisError::MalformedBody)?;
    to_json(v)
}

fn to_json(v: Cbor) -> Result<Json, KinesisError> {
    Ok(match v {
        Cbor::Null => Json::Null,
        Cbor::Bool(b) => Json::Bool(b),
        Cbor::Integer(i) => {
            let i: i128 = i.into();
            Json::Number(
                i64::try_from(i)
                    .map_err(|_| KinesisError::Serialization("integer out of range".into()))?
                    .into(),
            )
        }
        Cbor::Float(f) => serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number),
        Cbor::Text(t) => Json::String(t),
        Cbor::Bytes(b) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
        // Epoch milliseconds (the Java SDK) or seconds with a fraction.
        Cbor::Tag(1, inner) => match *inner {
            Cbor::Integer(i) => {
                let ms: i128 = i.into();
                serde_json::Number::from_f64(ms as f64 / 1000.0).map_or(Json::Null, Json::Number)
            }
            Cbor::Float(f) => serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number),
            _ => {
                return Err(KinesisError::Serialization(
                    "tag 1 must hold a number".into(),
                ));
            }
        },
        Cbor::Tag(_, inner) => to_json(*inner)?,
        Cbor::Array(a) => Json::Array(a.into_iter().map(to_json).collect::<Result<_, _>>()?),
        Cbor::Map(m) => {
            let mut out = serde_json::Map::new();
            for (k, v) in m {
                let Cbor::Text(k) = k else {
                    return Err(KinesisError::Serialization("map keys must be text".into()));
                };
                out.insert(k, to_json(v)?);
            }
            Json::Object(out)
        }
        _ => return Err(KinesisError::Serialization("unsupported CBOR value".into())),
    })
}

/// Encodes a response (or an error body) as CBOR.
pub fn encode_response(v: &Json) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(&to_cbor(v, None), &mut out).expect("writing to a Vec");
    out
}

fn to_cbor(v: &Json, member: Option<&str>) -> Cbor {
    match v {
        Json::Null => Cbor::Null,
        Json::Bool(b) => Cbor::Bool(*b),
        Json::Number(n) if member.is_some_and(|m| TIMESTAMPS.contains(&m)) => {
            let ms = (n.as_f64().unwrap_or(0.0) * 1000.0).round() as i64;
            Cbor::Tag(1, Box::new(Cbor::Integer(ms.into())))
        }
        Json::Number(n) => match n.as_i64() {
            Some(i) => Cbor::Integer(i.into()),
            None => Cbor::Float(n.as_f64().unwrap_or(0.0)),
        },
        Json::String(s) if member.is_some_and(|m| BLOBS.contains(&m)) => Cbor::Bytes(
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .unwrap_or_default(),
        ),
        Json::String(s) => Cbor::Text(s.clone()),
        Json::Array(a) => Cbor::Array(a.iter().map(|x| to_cbor(x, member)).collect()),
        Json::Object(m) => Cbor::Map(
            m.iter()
                .map(|(k, x)| (Cbor::Text(k.clone()), to_cbor(x, Some(k))))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn blobs_and_timestamps_take_their_cbor_forms() {
        let resp = json!({"Records": [{"Data": "AAEC", "ApproximateArrivalTimestamp": 1545084650.987, "PartitionKey": "k"}], "MillisBehindLatest": 0});
        let bytes = encode_response(&resp);
        let v: Cbor = ciborium::de::from_reader(bytes.as_slice()).unwrap();
        let get = |m: &Cbor, key: &str| -> Cbor {
            let Cbor::Map(pairs) = m else {
                panic!("not a map")
            };
            pairs
                .iter()
                .find(|(k, _)| *k == Cbor::Text(key.into()))
                .expect("member")
                .1
                .clone()
        };
        let Cbor::Array(records) = get(&v, "Records") else {
            panic!("not an array")
        };
        assert_eq!(get(&records[0], "Data"), Cbor::Bytes(vec![0, 1, 2]));
        assert_eq!(
            get(&records[0], "ApproximateArrivalTimestamp"),
            Cbor::Tag(1, Box::new(Cbor::Integer(1545084650987i64.into())))
        );
        assert_eq!(get(&v, "MillisBehindLatest"), Cbor::Integer(0.into()));
        // And back: the request form of the same values.
        let back = to_json(ciborium::de::from_reader(bytes.as_slice()).unwrap()).unwrap();
        assert_eq!(back["Records"][0]["Data"], "AAEC");
        assert_eq!(
            back["Records"][0]["ApproximateArrivalTimestamp"],
            json!(1545084650.987)
        );
    }

    #[test]
    fn garbage_is_a_serialization_error() {
        assert!(matches!(
            decode_request(&[0xff, 0x00, 0x13]),
            Err(KinesisError::MalformedBody)
        ));
    }
}
