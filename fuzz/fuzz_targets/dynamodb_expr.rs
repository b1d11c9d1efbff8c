//! DynamoDB expressions: any text, parsed as a condition, an update or a projection, and
//! what parses evaluated, applied or projected against a small item. Must never panic.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use spillway::table::expr::{self, Parser};
use spillway::table::value::{AttributeValue, item_from_json};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let names = HashMap::from([
        ("#a".to_owned(), "a".to_owned()),
        ("#m".to_owned(), "m".to_owned()),
    ]);
    let values: HashMap<String, AttributeValue> = [
        (":v", json!({"N": "1"})),
        (":s", json!({"S": "é"})),
        (":l", json!({"L": [{"N": "2"}]})),
        (":ss", json!({"SS": ["x", "y"]})),
        (":b", json!({"B": "AAE="})),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k.to_owned(), AttributeValue::from_json(&v).ok()?)))
    .collect();
    let Ok(mut item) = item_from_json(&json!({
        "a": {"N": "5"},
        "s": {"S": "é中"},
        "m": {"M": {"k": {"L": [{"N": "1"}, {"S": "x"}]}}},
        "ss": {"SS": ["x"]},
        "b": {"B": "AAEC"},
    })) else {
        return;
    };
    match selector % 3 {
        0 => {
            if let Ok(p) = Parser::new("ConditionExpression", text, &names, &values)
                && let Ok((c, _)) = p.condition()
            {
                expr::eval(&item, &c);
            }
        }
        1 => {
            if let Ok(p) = Parser::new("UpdateExpression", text, &names, &values)
                && let Ok((actions, _)) = p.update()
            {
                let _ = expr::apply(&mut item, &actions);
            }
        }
        _ => {
            if let Ok(p) = Parser::new("ProjectionExpression", text, &names, &values)
                && let Ok((paths, _)) = p.projection()
            {
                expr::project(&item, &paths);
            }
        }
    }
});
