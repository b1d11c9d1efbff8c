//! The DynamoDB JSON request path: decoding, validation and the actions, against real
//! tables in a temporary directory. The first byte picks the action, the rest is the
//! request body. Must never panic.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use spillway::api::dynamodb::dispatch;
use spillway::config::Config;
use spillway::storage::Store;
use spillway::storage::fjall_engine::FjallStore;
use spillway::table::Tables;

/// Every item action, and reads of the catalog. Not CreateTable or DeleteTable: the
/// fuzzed requests work on the tables made once here.
const ACTIONS: [&str; 12] = [
    "PutItem",
    "GetItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "BatchWriteItem",
    "BatchGetItem",
    "TransactWriteItems",
    "TransactGetItems",
    "DescribeTable",
    "ListTables",
];

struct State {
    tables: Arc<Tables>,
    _dir: tempfile::TempDir,
}

fn state() -> &'static State {
    static STATE: OnceLock<State> = OnceLock::new();
    STATE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let store: Arc<dyn Store> = Arc::new(FjallStore::open(dir.path()).expect("store"));
        let tables = Arc::new(Tables::open(store, &Config::default().tables_settings()).expect("tables"));
        dispatch(
            &tables,
            "CreateTable",
            &json!({
                "TableName": "fuzz",
                "BillingMode": "PAY_PER_REQUEST",
                "KeySchema": [{"AttributeName": "h", "KeyType": "HASH"}, {"AttributeName": "r", "KeyType": "RANGE"}],
                "AttributeDefinitions": [
                    {"AttributeName": "h", "AttributeType": "S"},
                    {"AttributeName": "r", "AttributeType": "N"},
                    {"AttributeName": "g", "AttributeType": "S"},
                ],
                "GlobalSecondaryIndexes": [{
                    "IndexName": "by-g",
                    "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }],
            }),
        )
        .expect("create table");
        State { tables, _dir: dir }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    // What `handle` does before dispatching: an object, or no request.
    let Ok(request @ Value::Object(_)) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let action = ACTIONS[usize::from(selector) % ACTIONS.len()];
    let _ = dispatch(&state().tables, action, &request);
});
