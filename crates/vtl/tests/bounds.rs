//! Hostile templates and inputs: nothing panics, overflows the stack or runs unbounded;
//! every limit gives its error.

use proptest::prelude::*;
use spillway_vtl::{Context, Error, Limits, Template, render};

fn ctx() -> Context {
    Context {
        body: r#"{"a":[1,2,{"b":"x"}],"s":"it's"}"#.into(),
        querystring: vec![("q".into(), "1".into())],
        context: serde_json::json!({"requestId": "r"}),
        ..Context::default()
    }
}

/// Parses and renders; only checks that it returns.
fn run(template: &str) {
    if let Ok(t) = Template::parse(template) {
        let _ = t.render(&ctx());
    }
}

fn vtlish() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "$",
        "#",
        "{",
        "}",
        "(",
        ")",
        "[",
        "]",
        "!",
        ".",
        "'",
        "\"",
        "\n",
        "\\",
        " ",
        ",",
        "=",
        "..",
        "$a",
        "$!a",
        "${a}",
        "$a.b",
        "$a.b()",
        "$a[0]",
        "#set(",
        "#if(",
        "#elseif(",
        "#else",
        "#end",
        "#foreach(",
        " in ",
        "#break",
        "#stop",
        "##",
        "#*",
        "*#",
        "#[[",
        "]]#",
        "#{if}",
        "#{end}",
        "$input.json('$')",
        "$input.path('$.a')",
        "$input.params()",
        "$util.escapeJavaScript(",
        "$util.base64Decode(",
        "$foreach.hasNext",
        "true",
        "false",
        "null",
        "1",
        "-2",
        "3.5",
        "&&",
        "||",
        "==",
        "<",
        "+",
        "*",
        "/",
        "%",
        "$list.add($list)",
        "$m.put('k', $m)",
        "[1..3]",
        "replaceAll('a*', 'b')",
        "x",
        "é",
    ]);
    prop::collection::vec(pieces, 0..60).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_strings_never_panic(s in any::<String>()) {
        run(&s);
    }

    #[test]
    fn vtl_shaped_strings_never_panic(s in vtlish()) {
        run(&s);
    }

    #[test]
    fn plain_text_renders_unchanged(s in "[^$#\\\\]*") {
        prop_assert_eq!(render(&s, &ctx()), Ok(s.clone()));
    }

    #[test]
    fn arbitrary_bodies_and_paths_never_panic(body in any::<String>(), path in "[$.a-z\\[\\]*'0-9-]{0,12}") {
        let t = Template::parse("$input.json($p)|$input.path($p)|$util.urlDecode($input.body)|$util.base64Decode($input.body)")
            .expect("template");
        let mut c = Context::with_body(body);
        c.stage_variables = serde_json::json!({});
        let _ = t.render(&c);
        let _ = render(&format!("#set($p = '{}')$input.json($p)", path.replace('\'', "''")), &c);
    }
}

fn assert_too_deep(template: &str) {
    let limits = Limits {
        max_template_bytes: usize::MAX,
        ..Limits::default()
    };
    match Template::parse_with(template, limits) {
        Err(Error::TooDeep { limit: 64, .. }) => {}
        other => panic!("expected TooDeep, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let n = 100_000;
    assert_too_deep(&"#if(true)".repeat(n));
    assert_too_deep(&format!("#set($x = {}1", "(".repeat(n)));
    assert_too_deep(&format!("#if({}true)#end", "!".repeat(n)));
    assert_too_deep(&format!("#set($x = {})", "[".repeat(n)));
    assert_too_deep(&format!("#set($x = {})", "{'a':".repeat(n)));
    assert_too_deep(&"$a.b(".repeat(n));
    assert_too_deep(&"$a[".repeat(n));
    assert_too_deep(&"#foreach($i in [1])".repeat(n));
    assert_too_deep(&"$a.b(1, ".repeat(n));
    assert_too_deep(&format!("#set($x = {})", "-".repeat(n)));
}

#[test]
fn deep_nesting_within_the_limit_works() {
    let t = format!("{}x{}", "#if(true)".repeat(60), "#end".repeat(60));
    assert_eq!(render(&t, &ctx()).as_deref(), Ok("x"));
}

#[test]
fn values_cannot_nest_without_bound() {
    let t = "#set($a = [])#foreach($i in [1..1000])#set($a = [$a])#end$a.size()";
    assert!(matches!(render(t, &ctx()), Err(Error::TooDeep { .. })));
    let t = "#set($a = [])#foreach($i in [1..1000])#set($x = $a.add($a))#end";
    assert!(matches!(render(t, &ctx()), Err(Error::TooDeep { .. })));
}

#[test]
fn foreach_stops_at_one_thousand_iterations() {
    let out = render("#foreach($i in [1..5000])x#end", &ctx()).expect("render");
    assert_eq!(out.len(), 1000);
}

#[test]
fn output_size_is_bounded() {
    let limits = Limits {
        max_output_bytes: 1000,
        ..Limits::default()
    };
    let t = Template::parse_with("#foreach($i in [1..1000])0123456789#end", limits.clone())
        .expect("parse");
    assert!(matches!(
        t.render(&ctx()),
        Err(Error::OutputTooLarge { limit: 1000, .. })
    ));
    // Doubling a string is caught before memory runs out.
    let t = Template::parse("#set($s = 'ab')#foreach($i in [1..100])#set($s = \"$s$s\")#end")
        .expect("parse");
    assert!(matches!(
        t.render(&ctx()),
        Err(Error::OutputTooLarge { .. })
    ));
    let t = Template::parse("#set($s = 'ab')#foreach($i in [1..100])#set($s = $s + $s)#end")
        .expect("parse");
    assert!(matches!(
        t.render(&ctx()),
        Err(Error::OutputTooLarge { .. })
    ));
}

#[test]
fn steps_are_bounded() {
    // 1,000 x 1,000 x 1,000 iterations would take far too long; the step budget ends it.
    let limits = Limits {
        max_steps: 100_000,
        ..Limits::default()
    };
    let t =
        "#foreach($a in [1..1000])#foreach($b in [1..1000])#foreach($c in [1..1000])#end#end#end";
    let t = Template::parse_with(t, limits.clone()).expect("parse");
    assert!(matches!(
        t.render(&ctx()),
        Err(Error::TooManySteps { limit: 100_000, .. })
    ));
    // Regex work counts too.
    let body = "a".repeat(5_000);
    let t = Template::parse_with("$input.body.replaceAll('a*b', 'x')", limits).expect("parse");
    assert!(matches!(
        t.render(&Context::with_body(body)),
        Err(Error::TooManySteps { .. })
    ));
}

#[test]
fn collections_and_templates_are_bounded() {
    assert!(matches!(
        render("#set($r = [1..2000000000])", &ctx()),
        Err(Error::CollectionTooLarge { .. })
    ));
    let limits = Limits {
        max_template_bytes: 10,
        ..Limits::default()
    };
    assert!(matches!(
        Template::parse_with("01234567890", limits),
        Err(Error::TemplateTooLarge {
            size: 11,
            limit: 10
        })
    ));
}

#[test]
fn huge_json_bodies_are_handled() {
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let err = render("$input.json('$')", &Context::with_body(deep)).expect_err("too deep for JSON");
    assert!(matches!(err, Error::InvalidJsonBody { .. }));
    let wide = format!("[{}0]", "0,".repeat(200_000));
    assert_eq!(
        render("$input.path('$').size()", &Context::with_body(wide)).as_deref(),
        Ok("200001")
    );
}
