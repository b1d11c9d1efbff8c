//! The Kinesis request path, JSON and CBOR: decoding, validation and the actions against
//! real streams in a temporary directory. The first byte picks the encoding and the
//! action, the rest is the body. Must never panic.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use spillway::api::kinesis::{self, Encoding, KinesisService, cbor};
use spillway::config::Config;
use spillway::storage::fjall_engine::FjallStore;
use spillway::storage::{Store, StreamStore};
use spillway::stream::Streams;

/// Every action but DeleteStream, which would take the fuzzed requests' stream away.
const ACTIONS: [&str; 18] = [
    "PutRecord",
    "PutRecords",
    "GetShardIterator",
    "GetRecords",
    "DescribeStream",
    "DescribeStreamSummary",
    "ListStreams",
    "ListShards",
    "CreateStream",
    "AddTagsToStream",
    "RemoveTagsFromStream",
    "ListTagsForStream",
    "IncreaseStreamRetentionPeriod",
    "DecreaseStreamRetentionPeriod",
    "DescribeLimits",
    "SplitShard",
    "MergeShards",
    "UpdateShardCount",
];

struct State {
    runtime: tokio::runtime::Runtime,
    service: KinesisService,
    _dir: tempfile::TempDir,
}

fn state() -> &'static State {
    static STATE: OnceLock<State> = OnceLock::new();
    STATE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let store: Arc<dyn Store> = Arc::new(FjallStore::open(dir.path()).expect("store"));
        // The default config: example-stream, one shard.
        let streams = Streams::open(
            store as Arc<dyn StreamStore>,
            &Config::default().streams_settings(),
        )
        .expect("streams");
        let service = KinesisService {
            streams: Arc::new(streams),
            iterators: kinesis::iterator::IteratorCodec::new([7; 32]),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        State {
            runtime,
            service,
            _dir: dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let encoding = if selector & 0x80 == 0 {
        Encoding::Json
    } else {
        // The CBOR decoder on its own, then the whole path.
        let _ = cbor::decode_request(body);
        Encoding::Cbor
    };
    let action = ACTIONS[usize::from(selector & 0x7f) % ACTIONS.len()];
    let s = state();
    let response = s
        .runtime
        .block_on(kinesis::handle_encoded(&s.service, action, body, encoding));
    let _ = s
        .runtime
        .block_on(axum::body::to_bytes(response.into_body(), usize::MAX));
});
