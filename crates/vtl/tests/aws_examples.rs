//! Templates in the shapes AWS documents for API Gateway mapping templates (rewritten in
//! our own words and data), with the request each runs on and the exact output.

use serde_json::json;
use spillway_vtl::{Context, Error, Template, render};

fn request() -> Context {
    Context {
        body: r#"{"name":"Ana \"A\" O'Neil","items":[{"id":1},{"id":2},{"id":3}],"nested":{"k":[true,null,1.5]}}"#
            .into(),
        path: vec![("petId".into(), "42".into())],
        querystring: vec![("limit".into(), "10".into()), ("q".into(), "a b".into())],
        headers: vec![
            ("Content-Type".into(), "application/json".into()),
            ("X-Trace".into(), "t-1".into()),
        ],
        context: json!({
            "requestId": "req-7f3a",
            "stage": "dev",
            "httpMethod": "POST",
            "resourcePath": "/orders",
            "requestTimeEpoch": 1700000000123_i64,
            "identity": {"sourceIp": "192.0.2.10", "userAgent": "curl/8"}
        }),
        stage_variables: json!({"stream": "orders-stream", "table": "orders"}),
    }
}

fn pets() -> Context {
    Context::with_body(
        r#"[{"id":1,"type":"dog","price":249.99},{"id":2,"type":"cat","price":124.5},{"id":3,"type":"fish","price":0.99}]"#,
    )
}

/// (what the case shows, template, context, expected output)
fn cases() -> Vec<(&'static str, &'static str, Context, &'static str)> {
    vec![
        (
            "Kinesis PutRecord integration request",
            "{\n  \"StreamName\": \"$stageVariables.stream\",\n  \"Data\": \"$util.base64Encode($input.body)\",\n  \"PartitionKey\": \"$context.requestId\"\n}",
            Context {
                body: r#"{"order":17}"#.into(),
                ..request()
            },
            "{\n  \"StreamName\": \"orders-stream\",\n  \"Data\": \"eyJvcmRlciI6MTd9\",\n  \"PartitionKey\": \"req-7f3a\"\n}",
        ),
        (
            "pet store array transform with #foreach and hasNext",
            "#set($inputRoot = $input.path('$'))\n[\n#foreach($elem in $inputRoot)\n  {\n    \"description\" : \"Item $elem.id is a $elem.type.\",\n    \"askingPrice\" : $elem.price\n  }#if($foreach.hasNext),#end\n\n#end\n]",
            pets(),
            "[\n  {\n    \"description\" : \"Item 1 is a dog.\",\n    \"askingPrice\" : 249.99\n  },\n  {\n    \"description\" : \"Item 2 is a cat.\",\n    \"askingPrice\" : 124.5\n  },\n  {\n    \"description\" : \"Item 3 is a fish.\",\n    \"askingPrice\" : 0.99\n  }\n]",
        ),
        (
            "whole body passed on as JSON",
            "{\"body\": $input.json('$'), \"n\": $input.json('$.items[1].id')}",
            request(),
            r#"{"body": {"name":"Ana \"A\" O'Neil","items":[{"id":1},{"id":2},{"id":3}],"nested":{"k":[true,null,1.5]}}, "n": 2}"#,
        ),
        (
            "JSONPath wildcard and recursive descent give arrays",
            "$input.json('$.items[*].id') $input.json(\"$..id\") $input.json('$.nested.k')",
            request(),
            "[1,2,3] [1,2,3] [true,null,1.5]",
        ),
        (
            "navigating $input.path results",
            "$input.path('$').size() $input.path('$.items').size() $input.path('$').items[0].id $input.path('$.nested').k.get(2)",
            request(),
            "3 3 1 1.5",
        ),
        (
            "$input.params() and its groups",
            "$input.params().header.get('X-Trace') $input.params().path $input.params().querystring.keySet()",
            request(),
            "t-1 {petId=42} [limit, q]",
        ),
        (
            "$input.params(name) searches path, query string, then headers",
            "$input.params('petId')|$input.params('q')|$input.params('Content-Type')|$input.params('none')|",
            request(),
            "42|a b|application/json||",
        ),
        (
            "all parameters as JSON, the documented loop over params()",
            "#set($all = $input.params())\n{\n#foreach($type in $all.keySet())\n  \"$type\": {\n  #foreach($name in $all.get($type).keySet())\n    \"$name\": \"$util.escapeJavaScript($all.get($type).get($name))\"#if($foreach.hasNext),#end\n\n  #end\n  }#if($foreach.hasNext),#end\n\n#end\n}",
            Context {
                headers: vec![("h".into(), "v/1".into())],
                ..request()
            },
            "{\n  \"path\": {\n      \"petId\": \"42\"\n    },\n  \"querystring\": {\n      \"limit\": \"10\",\n      \"q\": \"a b\"\n    },\n  \"header\": {\n      \"h\": \"v\\/1\"\n    }\n}",
        ),
        (
            "escapeJavaScript of quotes, backslash and newlines",
            "\"$util.escapeJavaScript($input.path('$.name'))\" $util.escapeJavaScript($s)",
            Context {
                body: r#"{"name":"it's \"quoted\"\n\\ end"}"#.into(),
                ..Context::default()
            },
            r#""it\'s \"quoted\"\n\\ end" $util.escapeJavaScript($s)"#,
        ),
        (
            "the usual fix-up for escaped single quotes",
            "$util.escapeJavaScript(\"it's\").replaceAll(\"\\\\'\", \"'\")",
            Context::default(),
            "it's",
        ),
        (
            "urlEncode/urlDecode and base64 round trips",
            "$util.urlEncode('a b&c=d/é') $util.urlDecode('a+b%26c') $util.base64Decode($util.base64Encode('héllo'))",
            Context::default(),
            "a+b%26c%3Dd%2F%C3%A9 a b&c héllo",
        ),
        (
            "parseJson gives a navigable value",
            "#set($o = $util.parseJson($input.path('$.raw')))$o.a.b $o.list.size()",
            Context::with_body(r#"{"raw":"{\"a\":{\"b\":\"deep\"},\"list\":[1,2]}"}"#),
            "deep 2",
        ),
        (
            "$context variables",
            "$context.httpMethod $context.resourcePath $context.identity.sourceIp $context.requestTimeEpoch $context.stage",
            request(),
            "POST /orders 192.0.2.10 1700000000123 dev",
        ),
        (
            "undefined references stay as written, including chains and method calls",
            "$foo ${foo} $foo.bar $context.nope $context.identity.nope $input.nope() $util.toJson($x)",
            request(),
            "$foo ${foo} $foo.bar $context.nope $context.identity.nope $input.nope() $util.toJson($x)",
        ),
        (
            "quiet references render nothing",
            "[$!foo][$!{foo}][$!context.nope][$!context.stage]",
            request(),
            "[][][][dev]",
        ),
        (
            "#set and #if/#elseif/#else",
            "#set($n = $input.path('$.items').size())\n#if($n > 5)\nmany\n#elseif($n >= 3)\nsome\n#else\nfew\n#end\ndone",
            request(),
            "some\ndone",
        ),
        (
            "an empty string is true in Velocity 1.7; the documented length check",
            "#set($limit = $input.params('nope'))#if($limit)set#end #if($limit && $limit.length() != 0)nonempty#{else}empty#end",
            request(),
            "set empty",
        ),
        (
            "a null right-hand side leaves #set's variable unchanged",
            "#set($v = 'old')#set($v = $input.path('$.missing'))$v",
            request(),
            "old",
        ),
        (
            "$map.put is silent inside #set, loud outside",
            "#set($m = {})#set($ignored = $m.put('a', 1))$m.put('b', 2)|$m|#set($l = [])$l.add('x')$l",
            Context::default(),
            "$m.put('b', 2)|{a=1, b=2}|true[x]",
        ),
        (
            "string methods",
            "#set($s = 'Hello, World')$s.length() $s.substring(7) $s.substring(0,5) $s.toLowerCase() $s.indexOf('o') $s.replace('World', 'VTL') $s.contains('lo,') #if($s.startsWith('He'))y#end",
            Context::default(),
            "12 World Hello hello, world 4 Hello, VTL true y",
        ),
        (
            "list and map methods",
            "#set($l = [3, 1, 2])#set($m = {\"a\": 1, \"b\": [1, 2]})$l.size() $l.isEmpty() $l.get(0) $l.contains(2) $m.keySet() $m.containsKey('b') $m.b[1] $m['a'] $m.values()",
            Context::default(),
            "3 false 3 true [a, b] true 2 1 [1, [1, 2]]",
        ),
        (
            "ranges, arithmetic, comparison words",
            "#foreach($i in [1..4])$i#if($foreach.hasNext),#end#end|#foreach($i in [3..1])$i#end|$velocityCount|#set($x = 7 / 2)$x #set($y = 7.0 / 2)$y #set($z = 7 % 3)$z#if(1 lt 2 and not false) ok#end",
            Context::default(),
            "1,2,3,4|321|$velocityCount|33.51 ok",
        ),
        (
            "$foreach.index/count/first/last, #break and $velocityCount",
            "#foreach($x in ['a', 'b', 'c', 'd'])#if($x == 'c')#break#end$foreach.index$foreach.count$velocityCount$x#if($foreach.first)F#end #end",
            Context::default(),
            "011aF 122b ",
        ),
        (
            "#foreach over a map walks its values",
            "#foreach($v in $stageVariables)$v;#end",
            request(),
            "orders-stream;orders;",
        ),
        (
            "double-quoted strings interpolate, single-quoted do not",
            "#set($who = 'world')#set($a = \"hi $who ${who}!\")#set($b = 'hi $who')$a|$b|#set($q = \"say \"\"x\"\"\")$q",
            Context::default(),
            "hi world world!|hi $who|say \"x\"",
        ),
        (
            "comments",
            "a## to the end of the line\nb#* a\nblock *#c",
            Context::default(),
            "abc",
        ),
        (
            "escaped references and directives",
            "#set($d = 'D')\\$d \\$u \\\\$d \\#if(true)",
            Context::default(),
            "$d \\$u \\D #if(true)",
        ),
        (
            "#set swallows leading blanks; #if/#end keep indentation",
            "x\n   #set($a = 1)\n  #if($a == 1)\n  one\n  #end\ny",
            Context::default(),
            "x\n    one\n  y",
        ),
        (
            "braced directive names and #stop",
            "#{if}(true)yes#{else}no#{end}|#stop|never",
            Context::default(),
            "yes|",
        ),
        (
            "a hyphen continues an identifier, as in Velocity 1.7",
            "#set($a = 'A')$a-x ${a}-x",
            Context::default(),
            "$a-x A-x",
        ),
        (
            "equality across types compares string forms; numbers by value",
            "#if(1 == '1')s#end#if(1 == 1.0)n#end#if($nope == $nada)nulls#end#if('a' != 'b')ne#end",
            Context::default(),
            "snnullsne",
        ),
        (
            "an empty body renders as {} through $input.body",
            "[$input.body] [$!input.path('$')] [$input.json('$')]",
            Context::default(),
            "[{}] [] []",
        ),
        (
            "setting properties and indexes of variables",
            "#set($m = {'a': {'b': 1}})#set($m.a.b = 2)#set($m.c = [0, 0])#set($m.c[1] = 5)$m",
            Context::default(),
            "{a={b=2}, c=[0, 5]}",
        ),
        (
            "unknown #words are text",
            "#hashtag #1 #{nope} #",
            Context::default(),
            "#hashtag #1 #{nope} #",
        ),
    ]
}

#[test]
fn documented_examples_render_as_api_gateway_renders_them() {
    let mut failures = Vec::new();
    for (what, template, ctx, expected) in cases() {
        match render(template, &ctx) {
            Ok(out) if out == expected => {}
            Ok(out) => failures.push(format!(
                "{what}:\n  expected {expected:?}\n  got      {out:?}"
            )),
            Err(e) => failures.push(format!("{what}: error {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn invalid_json_body_is_api_gateways_400_case() {
    let err = render("$input.json('$')", &Context::with_body("{not json")).expect_err("must fail");
    assert!(
        matches!(
            err,
            Error::InvalidJsonBody {
                line: 1,
                column: 1,
                ..
            }
        ),
        "{err:?}"
    );
    // A template that never looks at the body as JSON renders fine.
    assert_eq!(
        render("$input.body", &Context::with_body("{not json")).as_deref(),
        Ok("{not json")
    );
}

#[test]
fn parse_errors_report_line_and_column() {
    let cases = [
        ("ok\n#if($a\nx", 3, 1),
        ("line\n  #if(true)\nno end", 2, 3),
        ("#end", 1, 1),
        ("a\nb #set($x 1)", 2, 11),
        ("#foreach($x at $l)#end", 1, 13),
        ("x ${a.b", 1, 8),
        ("#macro(m)#end", 1, 1),
        ("\"$s.substring(1,\"", 1, 17),
    ];
    for (template, line, column) in cases {
        match Template::parse(template) {
            Err(Error::Parse {
                line: l, column: c, ..
            }) => {
                assert_eq!((l, c), (line, column), "{template:?}");
            }
            other => panic!("{template:?}: expected a parse error, got {other:?}"),
        }
    }
}

#[test]
fn render_errors_report_where() {
    let err = render("a\n  $util.base64Decode('!!')", &Context::default()).expect_err("bad base64");
    assert_eq!(err.position(), Some((2, 3)));
    let err = render("#set($s = 'abc')\n$s.substring(5)", &Context::default())
        .expect_err("out of bounds");
    assert!(
        matches!(
            err,
            Error::Function {
                line: 2,
                column: 1,
                ..
            }
        ),
        "{err:?}"
    );
    // An undefined receiver is not an error: the reference renders as written.
    assert_eq!(
        render("$s.substring(5)", &Context::default()).as_deref(),
        Ok("$s.substring(5)")
    );
}
