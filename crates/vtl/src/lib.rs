//! # spillway-vtl: API Gateway mapping templates
//!
//! API Gateway REST APIs transform requests and responses with *mapping templates*
//! written in Apache Velocity 1.7's template language (VTL). This crate parses and renders
//! the subset of VTL those templates use, with the variables API Gateway provides, so
//! spillway can run a user's own templates exactly (issue 13). It is self-contained:
//! the caller hands over the request as plain data ([`Context`]) and gets text back.
//!
//! ```
//! use spillway_vtl::{Context, Template};
//!
//! let template = Template::parse(
//!     r#"{"StreamName": "$stageVariables.stream", "Data": "$util.base64Encode($input.body)"}"#,
//! )?;
//! let mut ctx = Context::with_body("hi");
//! ctx.stage_variables = serde_json::json!({"stream": "s1"});
//! assert_eq!(template.render(&ctx)?, r#"{"StreamName": "s1", "Data": "aGk="}"#);
//! # Ok::<(), spillway_vtl::Error>(())
//! ```
//!
//! ## Supported
//! - Text; references `$x`, `${x}`, quiet `$!x`/`$!{x}`; property chains `$a.b.c`;
//!   indexes `$a[0]`, `$a['k']`; method calls with arguments; escapes `\$x` (renders
//!   `$x` when `$x` is defined and `\$x` when not, as Velocity's guide says).
//! - `#set`, `#if`/`#elseif`/`#else`/`#end`, `#foreach` (over lists, and over a map's
//!   values) with `$foreach.index/count/hasNext/first/last/parent`, `$velocityCount`,
//!   `$velocityHasNext`; `#break`, `#stop`; `## line` and `#* block *#` comments;
//!   `#[[ unparsed ]]#`; `#{if}`-style braced names; `\#if` escapes.
//! - Expressions: `&& || ! and or not`, `== != < > <= >=` (and `eq ne lt gt le ge`),
//!   `+ - * / %`, strings (double-quoted ones interpolate, single-quoted are literal,
//!   a doubled quote stands for one), integers, decimals, `true`/`false`/`null`, lists
//!   `[1, 2]`, maps `{"a": 1}`, ranges `[1..3]`.
//! - Methods: strings (`length substring indexOf lastIndexOf charAt contains startsWith
//!   endsWith equals equalsIgnoreCase toLowerCase toUpperCase trim isEmpty concat replace
//!   replaceAll replaceFirst matches split toString`, positions in UTF-16 units like
//!   Java), lists (`size isEmpty get contains indexOf add addAll remove set clear`), maps
//!   (`size isEmpty get containsKey containsValue keySet values entrySet put putAll
//!   remove clear`). Regex methods take literals, escapes, `.`, classes, `^ $`, `* + ?`.
//! - `$input.body`, `$input.json(path)`, `$input.path(path)`, `$input.params()`,
//!   `$input.params(name)`; `$util.escapeJavaScript/base64Encode/base64Decode/urlEncode/
//!   urlDecode/parseJson`; `$context.*` and `$stageVariables.*` from JSON trees. JSONPath:
//!   `$`, `.key`, `['key']`, `[n]`, `[*]`, `.*`, `..`.
//!
//! ## Velocity 1.7 behaviour kept on purpose
//! - Undefined and null references render as written (`$foo` stays `$foo`); quiet ones
//!   render nothing. A method that does not exist makes the reference undefined.
//! - Truth: only `null`/undefined and `false` are false; `""` is true.
//! - `#set($x = <null>)` leaves `$x` unchanged (so a loop keeps the previous value).
//! - Whitespace: `#set` swallows the blanks before it; the `)` closing `#set`, `#if`,
//!   `#elseif` and `#foreach`, and `#else`/`#end`, swallow trailing blanks plus one line
//!   break when a line break follows; `##` comments swallow their line break. Indentation
//!   before other directives stays in the output.
//! - Identifiers may contain `-`: `$a-b` is the reference `a-b` (write `${a}-b`).
//! - Backslashes inside string literals are not escapes.
//!
//! ## Left out
//! `#macro`, `#include`, `#parse`, `#evaluate`, `#define` (refused with a parse error);
//! calling arbitrary Java methods (only the ones above exist); regex groups, alternation
//! and `{n,m}`; JSONPath filters, slices and unions; `$util.toJson` and other AppSync-only
//! helpers (they render as written, as on API Gateway). Values have copy semantics:
//! `#set($b = $a)` then `$b.add(1)` does not change `$a` (in Java both would change).
//!
//! ## Bounds
//! Templates and their input are user- or client-controlled, so every resource is
//! capped by [`Limits`]: template size, nesting of directives and expressions (checked
//! while parsing, so no input overflows the stack), value nesting, `#foreach` iterations
//! (1,000 per loop, like API Gateway; further items are skipped as Velocity's
//! `maxloops` does), output and string size, collection size and total evaluation
//! steps. Nothing panics; every failure is an [`Error`] with line and column.

mod error;
mod host;
mod json;
mod jsonpath;
mod parse;
mod regex;
mod render;
mod value;

pub use error::Error;
pub use host::{Context, base64_decode, base64_encode, escape_javascript, url_decode, url_encode};
pub use value::{Host, List, Map, Value};

/// Caps on what a template may use, so no template or request can exhaust the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest template accepted, in bytes.
    pub max_template_bytes: usize,
    /// Deepest nesting of directives, expressions and interpolated strings.
    pub max_depth: usize,
    /// Deepest nesting of lists and maps in a value (JSON bodies nest up to 128).
    pub max_value_depth: usize,
    /// Iterations per `#foreach` loop; API Gateway allows 1,000.
    pub max_foreach: usize,
    /// Longest output, and longest string built along the way, in bytes.
    pub max_output_bytes: usize,
    /// Most items in one list, map or range.
    pub max_collection_len: usize,
    /// Most evaluation steps in one rendering.
    pub max_steps: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_template_bytes: 256 * 1024,
            max_depth: 64,
            max_value_depth: 256,
            max_foreach: 1_000,
            max_output_bytes: 10 * 1024 * 1024,
            max_collection_len: 100_000,
            max_steps: 5_000_000,
        }
    }
}

/// A parsed template, ready to render any number of times.
#[derive(Debug, Clone)]
pub struct Template {
    source: String,
    nodes: Vec<parse::Node>,
    limits: Limits,
}

impl Template {
    /// Parses `source` with the default [`Limits`].
    pub fn parse(source: &str) -> Result<Template, Error> {
        Template::parse_with(source, Limits::default())
    }

    /// Parses `source`; `limits` then also bound every rendering of it.
    pub fn parse_with(source: &str, limits: Limits) -> Result<Template, Error> {
        if source.len() > limits.max_template_bytes {
            return Err(Error::TemplateTooLarge {
                size: source.len(),
                limit: limits.max_template_bytes,
            });
        }
        let nodes = parse::parse(source, limits.max_depth).map_err(|e| e.resolve(source))?;
        Ok(Template {
            source: source.to_owned(),
            nodes,
            limits,
        })
    }

    /// Renders the template for one request.
    pub fn render(&self, ctx: &Context) -> Result<String, Error> {
        render::Renderer::new(ctx, &self.limits)
            .render(&self.nodes)
            .map_err(|e| e.resolve(&self.source))
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }
}

/// Parses and renders in one call, with the default [`Limits`].
pub fn render(template: &str, ctx: &Context) -> Result<String, Error> {
    Template::parse(template)?.render(ctx)
}

#[cfg(test)]
mod shared {
    /// A parsed template can be cached and rendered from any thread.
    #[test]
    fn templates_are_send_and_sync() {
        fn shared<T: Send + Sync>() {}
        shared::<super::Template>();
    }
}
