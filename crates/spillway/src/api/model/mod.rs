//! The declarative request layer of the AWS APIs, driven by AWS's own service models.
//!
//! AWS checks every request against its service model before an action runs, in a fixed
//! order that clients can observe: first the typed decode (a value of the wrong JSON type
//! is a `SerializationException` with a Java-flavoured message), then every constraint of
//! the request (required members, lengths, ranges, patterns, enums), reported together in
//! one `N validation errors detected: ...` message in the model's member order (at most
//! ten of them), and only then the action's own checks and the resource lookup.
//! Reproducing that by hand per field drifts; this layer interprets the model instead.
//!
//! The models (`kinesis.json`, `dynamodb.json`) are extracted from botocore's copies of
//! AWS's models by `tools/gen_models.py` and embedded in the binary; each is parsed once
//! ([`kinesis`], [`dynamodb`]). Patterns compile once, into the linear-time matcher of
//! [`pattern`].
//!
//! Both APIs call it the same way: `model::kinesis().check("PutRecord", &request)` (or
//! `dynamodb()`), map [`RequestError`] to their wire error once, and run the action on a
//! request known to be well-typed and within the model's constraints.

pub mod pattern;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::LazyLock;

use serde::Deserialize;
use serde_json::Value;

use self::pattern::Pattern;

/// AWS lists at most this many constraint violations in one message.
pub const MAX_REPORTED: usize = 10;

/// How deep a request may nest before it is refused (AWS's own models nest a few levels;
/// DynamoDB's attribute values recurse, and DynamoDB allows 32 levels of them).
const MAX_DEPTH: usize = 100;

/// Why a request does not fit its operation's input shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The operation is not in the model.
    #[error("unknown operation")]
    UnknownOperation,
    /// A value of the wrong type, with AWS's message.
    #[error("{0}")]
    Serialization(String),
    /// Constraint violations, each `Value ... at '...' failed to satisfy constraint: ...`,
    /// in member order, at most [`MAX_REPORTED`].
    #[error("{}", render(.0))]
    Validation(Vec<String>),
}

/// Joins constraint violations the way AWS does.
pub fn render(errors: &[String]) -> String {
    let n = errors.len();
    format!(
        "{n} validation error{} detected: {}",
        if n == 1 { "" } else { "s" },
        errors.join("; ")
    )
}

/// One constraint violation, worded as AWS words it.
pub fn violation(shown_value: &str, path: &str, constraint: &str) -> String {
    format!("Value {shown_value} at '{path}' failed to satisfy constraint: {constraint}")
}

/// A shape's index in [`Model::shapes`].
type ShapeId = usize;

#[derive(Debug)]
enum Kind {
    Structure {
        members: Vec<Member>,
        /// Groups of members of which one must be present (the first is reported).
        either: Vec<Vec<usize>>,
    },
    List {
        member: ShapeId,
    },
    Map {
        key: ShapeId,
        value: ShapeId,
    },
    String,
    Blob,
    Boolean,
    Integer,
    Long,
    Double,
    Timestamp,
}

#[derive(Debug)]
struct Member {
    /// As sent on the wire (`StreamName`).
    name: String,
    /// As AWS names it in messages (`streamName`).
    path_name: String,
    shape: ShapeId,
    required: bool,
}

#[derive(Debug)]
struct Shape {
    name: String,
    kind: Kind,
    min: Option<f64>,
    max: Option<f64>,
    pattern: Option<Pattern>,
    enumeration: Option<Vec<String>>,
}

/// Which generation of AWS's request decoders a service answers with: their
/// `SerializationException` messages differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// The newer decoder (Kinesis): "class java.lang.String can not be converted to ...".
    Current,
    /// DynamoDB's Jackson-based decoder: "NUMBER_VALUE cannot be converted to String",
    /// "Unexpected field type", "Unrecognized collection type ...".
    Jackson,
}

/// One AWS service's model: operations and the shapes of their inputs.
#[derive(Debug)]
pub struct Model {
    /// Java package of the service's classes, as AWS's messages show structures.
    namespace: String,
    dialect: Dialect,
    operations: HashMap<String, Option<ShapeId>>,
    shapes: Vec<Shape>,
}

#[derive(Deserialize)]
struct RawModel {
    namespace: String,
    operations: HashMap<String, Option<String>>,
    shapes: HashMap<String, RawShape>,
}

#[derive(Deserialize)]
struct RawShape {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    members: Vec<(String, String)>,
    #[serde(default)]
    required: Vec<String>,
    #[serde(default)]
    either: Vec<Vec<String>>,
    member: Option<String>,
    key: Option<String>,
    value: Option<String>,
    min: Option<f64>,
    max: Option<f64>,
    pattern: Option<String>,
    #[serde(rename = "enum")]
    enumeration: Option<Vec<String>>,
}

/// Errors in an embedded model: a build defect, found by the unit tests.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("shape {0} is referenced but not defined")]
    MissingShape(String),
    #[error("shape {0} has unsupported type {1}")]
    UnsupportedType(String, String),
    #[error(transparent)]
    Pattern(#[from] pattern::PatternError),
}

fn lower_camel(name: &str) -> String {
    let mut c = name.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

impl Model {
    /// Parses a model written by `tools/gen_models.py`.
    pub fn parse(json: &str) -> Result<Self, ModelError> {
        let raw: RawModel = serde_json::from_str(json)?;
        let mut names: Vec<&String> = raw.shapes.keys().collect();
        names.sort();
        let index: HashMap<&str, ShapeId> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let id = |n: &str| {
            index
                .get(n)
                .copied()
                .ok_or_else(|| ModelError::MissingShape(n.to_owned()))
        };
        let mut shapes = Vec::with_capacity(names.len());
        for name in &names {
            let r = &raw.shapes[*name];
            let kind = match r.kind.as_str() {
                "structure" => {
                    let members = r
                        .members
                        .iter()
                        .map(|(m, s)| {
                            Ok(Member {
                                name: m.clone(),
                                path_name: lower_camel(m),
                                shape: id(s)?,
                                required: r.required.contains(m),
                            })
                        })
                        .collect::<Result<Vec<_>, ModelError>>()?;
                    let either = r
                        .either
                        .iter()
                        .map(|g| {
                            g.iter()
                                .filter_map(|m| members.iter().position(|x| &x.name == m))
                                .collect()
                        })
                        .collect();
                    Kind::Structure { members, either }
                }
                "list" => Kind::List {
                    member: id(r.member.as_deref().unwrap_or_default())?,
                },
                "map" => Kind::Map {
                    key: id(r.key.as_deref().unwrap_or_default())?,
                    value: id(r.value.as_deref().unwrap_or_default())?,
                },
                "string" => Kind::String,
                "blob" => Kind::Blob,
                "boolean" => Kind::Boolean,
                "integer" => Kind::Integer,
                "long" => Kind::Long,
                "double" | "float" => Kind::Double,
                "timestamp" => Kind::Timestamp,
                other => return Err(ModelError::UnsupportedType((*name).clone(), other.into())),
            };
            shapes.push(Shape {
                name: (*name).clone(),
                kind,
                min: r.min,
                max: r.max,
                pattern: r.pattern.as_deref().map(Pattern::compile).transpose()?,
                enumeration: r.enumeration.clone(),
            });
        }
        let operations = raw
            .operations
            .iter()
            .map(|(op, input)| Ok((op.clone(), input.as_deref().map(id).transpose()?)))
            .collect::<Result<_, ModelError>>()?;
        Ok(Self {
            namespace: raw.namespace,
            dialect: Dialect::Current,
            operations,
            shapes,
        })
    }

    /// The same model answering with another decoder's messages.
    pub fn with_dialect(mut self, dialect: Dialect) -> Self {
        self.dialect = dialect;
        self
    }

    /// Whether the service has this operation.
    pub fn has_operation(&self, operation: &str) -> bool {
        self.operations.contains_key(operation)
    }

    /// Checks a decoded request (a JSON object; CBOR requests are first turned into the
    /// same form) against its operation's input: types first, then every constraint.
    pub fn check(&self, operation: &str, input: &Value) -> Result<(), RequestError> {
        let shape = *self
            .operations
            .get(operation)
            .ok_or(RequestError::UnknownOperation)?;
        let Some(shape) = shape else {
            return Ok(());
        };
        let mut walk = Walk {
            model: self,
            errors: Vec::new(),
        };
        walk.structure_members(shape, input, &Path::Root, 0)?;
        if walk.errors.is_empty() {
            Ok(())
        } else {
            Err(RequestError::Validation(walk.errors))
        }
    }
}

/// The Kinesis model (`Kinesis_20131202`).
pub fn kinesis() -> &'static Model {
    static MODEL: LazyLock<Model> = LazyLock::new(|| {
        Model::parse(include_str!("kinesis.json")).expect("the embedded Kinesis model parses")
    });
    &MODEL
}

/// The DynamoDB model (`DynamoDB_20120810`).
pub fn dynamodb() -> &'static Model {
    static MODEL: LazyLock<Model> = LazyLock::new(|| {
        Model::parse(include_str!("dynamodb.json"))
            .expect("the embedded DynamoDB model parses")
            .with_dialect(Dialect::Jackson)
    });
    &MODEL
}

/// Structures up to this many members find their members' values in one pass over the
/// request object ([`Walk::structure_members`]).
const INDEXED_MEMBERS: usize = 64;

/// One check of one request: the violations found so far.
struct Walk<'m> {
    model: &'m Model,
    errors: Vec<String>,
}

/// Where a value sits in the request, as AWS names it (`records.1.member.data`). Built on
/// the stack as the walk descends and rendered only when a violation is reported, so a
/// valid request costs no allocation for it.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    /// A structure member: `parent.name` (or `name` at the root).
    Member(&'a Path<'a>, &'a str),
    /// A list element, counted from 1: `parent.N.member`.
    Index(&'a Path<'a>, usize),
    /// A map value: `parent.KEY.member`.
    Key(&'a Path<'a>, &'a str),
}

impl Path<'_> {
    fn render(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Path::Root => {}
            Path::Member(parent, name) => {
                parent.write(out);
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(name);
            }
            Path::Index(parent, i) => {
                parent.write(out);
                let _ = write!(out, ".{}.member", i + 1);
            }
            Path::Key(parent, k) => {
                parent.write(out);
                let _ = write!(out, ".{k}.member");
            }
        }
    }
}

/// Java's name for a JSON value's class when it cannot be converted.
fn java_class(v: &Value) -> &'static str {
    match v {
        Value::Bool(_) => "class java.lang.Boolean",
        Value::Number(_) => "class com.amazon.coral.value.json.numbers.TruncatingBigNumber",
        Value::String(_) => "class java.lang.String",
        _ => "class java.lang.Object",
    }
}

/// The errors every typed member gives for a list or an object in its place.
fn structural_mismatch(v: &Value) -> Option<RequestError> {
    match v {
        Value::Array(_) => Some(RequestError::Serialization(
            "Start of list found where not expected".into(),
        )),
        Value::Object(_) => Some(RequestError::Serialization(
            "Start of structure or map found where not expected.".into(),
        )),
        _ => None,
    }
}

/// Length of a string as Java counts it (UTF-16 code units).
fn java_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// Base64's alphabet, as a table: the value of each byte, or 0xFF.
const BASE64_VALUES: [u8; 256] = {
    let mut t = [0xFFu8; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut i = 0;
    while i < 64 {
        t[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// Checks a base64 blob as AWS's decoder does; returns the decoded length. One pass
/// over a table, no decoding: the action decodes the blob once, afterwards.
fn blob_len(s: &str) -> Result<usize, RequestError> {
    let b = s.as_bytes();
    let fail = |why: String| {
        RequestError::Serialization(format!("'{s}' can not be converted to a Blob: {why}"))
    };
    if !b.len().is_multiple_of(4) {
        return Err(fail(format!(
            "Base64 encoded length is expected a multiple of 4 bytes but found: {}",
            b.len()
        )));
    }
    let pads = b.iter().rev().take(2).take_while(|&&c| c == b'=').count();
    let data = &b[..b.len() - pads];
    if data.iter().any(|&c| BASE64_VALUES[usize::from(c)] == 0xFF) {
        let bad = data
            .iter()
            .find(|&&c| BASE64_VALUES[usize::from(c)] == 0xFF)
            .copied()
            .unwrap_or(b'=');
        return Err(fail(format!("Invalid Base64 character: '{}'", bad as char)));
    }
    if pads > 0 {
        let v = data.last().map_or(0, |&c| BASE64_VALUES[usize::from(c)]);
        let unused = if pads == 1 { 0b11 } else { 0b1111 };
        if v & unused != 0 {
            return Err(fail(
                "Invalid last non-pad Base64 character dectected".into(),
            ));
        }
    }
    Ok(b.len() / 4 * 3 - pads)
}

/// The decoded length of well-formed base64.
fn decoded_len(s: &str) -> usize {
    let b = s.as_bytes();
    let pads = b.iter().rev().take(2).take_while(|&&c| c == b'=').count();
    (b.len() / 4 * 3).saturating_sub(pads)
}

/// A number as Java's truncating conversion reads it, clamped to the type's range.
fn truncated(n: &serde_json::Number, lo: i64, hi: i64) -> i64 {
    if let Some(i) = n.as_i64() {
        i.clamp(lo, hi)
    } else if n.as_u64().is_some() {
        hi
    } else {
        let f = n.as_f64().unwrap_or(0.0).trunc();
        if f.is_nan() {
            0
        } else {
            (f.clamp(lo as f64, hi as f64)) as i64
        }
    }
}

fn bound_text(b: f64) -> String {
    if b.fract() == 0.0 && b.abs() < 1e18 {
        format!("{}", b as i64)
    } else {
        format!("{b}")
    }
}

impl Walk<'_> {
    fn shape(&self, id: ShapeId) -> &Shape {
        &self.model.shapes[id]
    }

    /// Records a violation of `v` (shape `id`; `None`: a missing member) at `path`. The
    /// value is rendered only when the violation will be reported.
    fn push(&mut self, shown: Option<(ShapeId, &Value)>, path: &Path<'_>, constraint: String) {
        if self.errors.len() < MAX_REPORTED {
            let shown = shown.map_or_else(|| "null".to_owned(), |(id, v)| self.show(id, v));
            self.errors
                .push(violation(&shown, &path.render(), &constraint));
        }
    }

    /// The members of a structure at `path` (empty: the request itself).
    fn structure_members(
        &mut self,
        id: ShapeId,
        v: &Value,
        path: &Path<'_>,
        depth: usize,
    ) -> Result<(), RequestError> {
        if depth > MAX_DEPTH {
            return Err(RequestError::Serialization(
                "Request nests too deeply".into(),
            ));
        }
        let obj = match v {
            Value::Object(o) => o,
            Value::Array(_) => {
                return Err(RequestError::Serialization(
                    "Start of list found where not expected".into(),
                ));
            }
            _ if matches!(path, Path::Root) => {
                return Err(RequestError::Serialization(
                    "Start of structure or map expected".into(),
                ));
            }
            _ => return Err(RequestError::Serialization("Expected null".into())),
        };
        let model = self.model;
        let Kind::Structure { members, either } = &model.shapes[id].kind else {
            return Ok(());
        };
        // Each member's value, found in one pass over the object: a request names few
        // of a structure's members (an attribute value one of its ten), so matching each
        // present key costs less than looking up every member. A structure with more
        // members than the array holds (none in the models) looks each one up.
        let mut found: [Option<&Value>; INDEXED_MEMBERS] = [None; INDEXED_MEMBERS];
        let indexed = members.len() <= INDEXED_MEMBERS;
        if indexed {
            for (key, value) in obj {
                if let Some(i) = members
                    .iter()
                    .position(|m| m.name.len() == key.len() && m.name == *key)
                {
                    found[i] = Some(value);
                }
            }
        }
        let value_of = |i: usize| {
            if indexed {
                found[i]
            } else {
                obj.get(&members[i].name)
            }
        };
        for (i, m) in members.iter().enumerate() {
            let child = Path::Member(path, &m.path_name);
            match value_of(i) {
                None | Some(Value::Null) => {
                    let either_missing = either.iter().any(|g| {
                        g.first() == Some(&i)
                            && g.iter().all(|&j| value_of(j).is_none_or(Value::is_null))
                    });
                    if m.required || either_missing {
                        self.push(None, &child, "Member must not be null".into());
                    }
                }
                Some(value) => self.value(m.shape, value, &child, depth + 1, false)?,
            }
        }
        Ok(())
    }

    /// One present value of shape `id` at `path`: its type, its own constraints, then
    /// what it contains.
    fn value(
        &mut self,
        id: ShapeId,
        v: &Value,
        path: &Path<'_>,
        depth: usize,
        in_collection: bool,
    ) -> Result<(), RequestError> {
        let model = self.model;
        if model.dialect == Dialect::Jackson
            && let Some(e) = self.jackson_type_error(id, v, in_collection)
        {
            return Err(e);
        }
        match &model.shapes[id].kind {
            Kind::Structure { .. } => self.structure_members(id, v, path, depth),
            Kind::List { .. } | Kind::Map { .. } => {
                let n = Self::container_len(&model.shapes[id].kind, v)?;
                self.length(id, v, n, path);
                self.contents(id, v, path, depth)
            }
            _ => {
                self.scalar_type(id, v)?;
                for rule in self.failures(id, v) {
                    self.push(Some((id, v)), path, rule);
                }
                Ok(())
            }
        }
    }

    /// A list's or map's typed decode: its length, or AWS's serialization error.
    fn container_len(kind: &Kind, v: &Value) -> Result<usize, RequestError> {
        match (kind, v) {
            (Kind::List { .. }, Value::Array(a)) => Ok(a.len()),
            (Kind::List { .. }, Value::Object(_)) => Err(structural_mismatch(v).expect("object")),
            (Kind::List { .. }, _) => {
                Err(RequestError::Serialization("Expected list or null".into()))
            }
            (Kind::Map { .. }, Value::Object(m)) => Ok(m.len()),
            (Kind::Map { .. }, Value::Array(_)) => Err(structural_mismatch(v).expect("array")),
            (Kind::Map { .. }, _) => {
                Err(RequestError::Serialization("Expected map or null".into()))
            }
            _ => Ok(0),
        }
    }

    /// Whether a list member or map key/value passes its own checks (type first, then
    /// its own constraints); what it contains is checked by [`Self::contents`].
    fn own_ok(&self, id: ShapeId, v: &Value) -> Result<bool, RequestError> {
        let shape = self.shape(id);
        match &shape.kind {
            Kind::Structure { .. } => match v {
                Value::Object(_) => Ok(true),
                Value::Array(_) => Err(structural_mismatch(v).expect("array")),
                _ => Err(RequestError::Serialization("Expected null".into())),
            },
            Kind::List { .. } | Kind::Map { .. } => {
                let n = Self::container_len(&shape.kind, v)?;
                let mut rules = Vec::new();
                Self::length_rules(shape, n, &mut rules);
                Ok(rules.is_empty())
            }
            _ => self.scalar_ok(id, v),
        }
    }

    /// The members of a list or the entries of a map. AWS reports a member's (or map
    /// key's or value's) own failures once, at the container, listing the member
    /// shape's constraints; what members contain is reported at `path.N.member` (lists,
    /// from 1) or `path.KEY.member` (maps).
    fn contents(
        &mut self,
        id: ShapeId,
        v: &Value,
        path: &Path<'_>,
        depth: usize,
    ) -> Result<(), RequestError> {
        if depth > MAX_DEPTH {
            return Err(RequestError::Serialization(
                "Request nests too deeply".into(),
            ));
        }
        let model = self.model;
        match (&model.shapes[id].kind, v) {
            (Kind::List { member }, Value::Array(items)) => {
                let mut member_failed = false;
                for (i, item) in items.iter().enumerate() {
                    if item.is_null() {
                        continue;
                    }
                    self.member_type(*member, item)?;
                    // A structure member passes its own checks (its members are
                    // reported by `nested`); a type error is an error either way.
                    member_failed |= !self.own_ok(*member, item)?;
                    self.nested(*member, item, &Path::Index(path, i), depth)?;
                }
                if member_failed {
                    let rules = self.rules(*member);
                    self.push(
                        Some((id, v)),
                        path,
                        format!("Member must satisfy constraint: [{rules}]"),
                    );
                }
            }
            (Kind::Map { key, value }, Value::Object(entries)) => {
                let (mut key_failed, mut value_failed) = (false, false);
                for (k, item) in entries {
                    key_failed |= !self.key_ok(*key, k)?;
                    if item.is_null() {
                        continue;
                    }
                    self.member_type(*value, item)?;
                    value_failed |= !self.own_ok(*value, item)?;
                    self.nested(*value, item, &Path::Key(path, k), depth)?;
                }
                if key_failed {
                    let rules = self.rules(*key);
                    self.push(
                        Some((id, v)),
                        path,
                        format!("Map keys must satisfy constraint: [{rules}]"),
                    );
                }
                if value_failed {
                    let rules = self.rules(*value);
                    self.push(
                        Some((id, v)),
                        path,
                        format!("Map value must satisfy constraint: [{rules}]"),
                    );
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// DynamoDB's decoder refuses a list member or map value of the wrong JSON type
    /// before anything else (other dialects check types in [`Self::own_ok`]).
    fn member_type(&self, id: ShapeId, v: &Value) -> Result<(), RequestError> {
        if self.model.dialect == Dialect::Jackson
            && let Some(e) = self.jackson_type_error(id, v, true)
        {
            return Err(e);
        }
        Ok(())
    }

    /// What a list member or map value contains (its own checks are made by the caller).
    fn nested(
        &mut self,
        id: ShapeId,
        v: &Value,
        path: &Path<'_>,
        depth: usize,
    ) -> Result<(), RequestError> {
        match &self.model.shapes[id].kind {
            Kind::Structure { .. } => self.structure_members(id, v, path, depth + 1),
            Kind::List { .. } | Kind::Map { .. } => self.contents(id, v, path, depth + 1),
            _ => Ok(()),
        }
    }

    /// Java's name of a shape's class, as the Jackson decoder's messages show it.
    fn java_type(&self, id: ShapeId) -> String {
        let shape = self.shape(id);
        match &shape.kind {
            Kind::String => "java.lang.String".into(),
            Kind::Boolean => "java.lang.Boolean".into(),
            Kind::Integer => "java.lang.Integer".into(),
            Kind::Long => "java.lang.Long".into(),
            Kind::Double => "java.lang.Double".into(),
            Kind::Blob => "java.nio.ByteBuffer".into(),
            Kind::Timestamp => "java.util.Date".into(),
            Kind::Structure { .. } => format!("{}.{}", self.model.namespace, shape.name),
            Kind::List { member } => format!("java.util.List<{}>", self.java_type(*member)),
            Kind::Map { value, .. } => {
                format!(
                    "java.util.Map<java.lang.String, {}>",
                    self.java_type(*value)
                )
            }
        }
    }

    /// The Jackson decoder's refusal of `v` as shape `id` (a structure is a "field" of
    /// a structure, or a "value" of a list or map).
    fn jackson_type_error(
        &self,
        id: ShapeId,
        v: &Value,
        in_collection: bool,
    ) -> Option<RequestError> {
        let err = |m: String| Some(RequestError::Serialization(m));
        let start = || err("Start of structure or map found where not expected".into());
        let number = |n: &serde_json::Number| {
            if n.is_f64() {
                "DECIMAL_VALUE"
            } else {
                "NUMBER_VALUE"
            }
        };
        let kind = &self.shape(id).kind;
        let simple = match kind {
            Kind::Boolean => "Boolean",
            Kind::Integer => "Integer",
            Kind::Long => "Long",
            Kind::Double => "Double",
            _ => "String",
        };
        match (kind, v) {
            (_, Value::Null) => None,
            (Kind::Structure { .. }, Value::Object(_)) => None,
            (Kind::Structure { .. }, Value::Array(_)) => err(format!(
                "Unrecognized collection type class {}",
                self.java_type(id)
            )),
            (Kind::Structure { .. }, _) => err(if in_collection {
                "Unexpected value type in payload".into()
            } else {
                "Unexpected field type".into()
            }),
            (Kind::List { .. }, Value::Array(_)) | (Kind::Map { .. }, Value::Object(_)) => None,
            (Kind::List { .. }, Value::Object(_)) => start(),
            (Kind::Map { .. }, Value::Array(_)) => err(format!(
                "Unrecognized collection type {}",
                self.java_type(id)
            )),
            (Kind::List { .. } | Kind::Map { .. }, _) => err("Unexpected field type".into()),
            (_, Value::Object(_)) => start(),
            (Kind::Blob, Value::Array(_)) => {
                err("Unrecognized collection type class java.nio.ByteBuffer".into())
            }
            (Kind::Blob, Value::String(s)) => {
                if !s.len().is_multiple_of(4) {
                    err(format!(
                        "Base64 encoded length is expected a multiple of 4 bytes but found: {}",
                        s.len()
                    ))
                } else if blob_len(s).is_err() {
                    err("Invalid last non-pad Base64 character dectected".into())
                } else {
                    None
                }
            }
            (Kind::Blob, _) => err("only base-64-encoded strings are convertible to bytes".into()),
            (Kind::Timestamp, _) => None,
            (_, Value::Array(_)) => err(format!(
                "Unrecognized collection type class java.lang.{simple}"
            )),
            (Kind::String, Value::String(_)) => None,
            (Kind::String | Kind::Boolean, Value::Number(n)) => {
                err(format!("{} cannot be converted to {simple}", number(n)))
            }
            (Kind::Boolean, Value::Bool(_)) => None,
            (Kind::Boolean, Value::String(s)) => {
                let u = s.to_ascii_uppercase();
                if ["TRUE", "1", "YES", "FALSE", "0", "NO"].contains(&u.as_str()) {
                    None
                } else {
                    err("Unexpected token received from parser".into())
                }
            }
            (_, Value::Bool(b)) => err(format!(
                "{}_VALUE cannot be converted to {simple}",
                if *b { "TRUE" } else { "FALSE" }
            )),
            (_, Value::String(_)) => err(format!("STRING_VALUE cannot be converted to {simple}")),
            _ => None,
        }
    }

    /// A scalar's typed decode.
    fn scalar_type(&self, id: ShapeId, v: &Value) -> Result<(), RequestError> {
        if self.model.dialect == Dialect::Jackson {
            return match self.jackson_type_error(id, v, true) {
                Some(e) => Err(e),
                None => Ok(()),
            };
        }
        if let Some(e) = structural_mismatch(v) {
            return Err(e);
        }
        let wrong = |target: &str| {
            RequestError::Serialization(format!(
                "{} can not be converted to {target}",
                java_class(v)
            ))
        };
        match (&self.shape(id).kind, v) {
            (Kind::String, Value::String(_)) => Ok(()),
            (Kind::String, _) => Err(wrong("an String")),
            (Kind::Blob, Value::String(s)) => blob_len(s).map(|_| ()),
            (Kind::Blob, _) => Err(wrong("a Blob")),
            (Kind::Boolean, Value::Bool(_)) => Ok(()),
            (Kind::Boolean, Value::String(s)) => Err(RequestError::Serialization(format!(
                "'{s}' can not be converted to an Boolean"
            ))),
            // AWS's decoder takes a fractional number as a boolean.
            (Kind::Boolean, Value::Number(n)) if n.is_f64() => Ok(()),
            (Kind::Boolean, _) => Err(wrong("an Boolean")),
            (Kind::Integer, Value::Number(_)) => Ok(()),
            (Kind::Integer, _) => Err(wrong("an Integer")),
            (Kind::Long, Value::Number(_)) => Ok(()),
            (Kind::Long, _) => Err(wrong("an Long")),
            (Kind::Double, Value::Number(_)) => Ok(()),
            (Kind::Double, _) => Err(wrong("an Double")),
            (Kind::Timestamp, Value::Number(_)) => Ok(()),
            (Kind::Timestamp, _) => Err(wrong("milliseconds since epoch")),
            _ => Ok(()),
        }
    }

    /// Type-checks a scalar list member or map key/value; false if a constraint fails.
    fn scalar_ok(&self, id: ShapeId, v: &Value) -> Result<bool, RequestError> {
        self.scalar_type(id, v)?;
        Ok(self.failures(id, v).is_empty())
    }

    /// [`Self::scalar_ok`] for a map key, without copying it into a `Value` (every
    /// attribute name of every item passes here).
    fn key_ok(&self, id: ShapeId, k: &str) -> Result<bool, RequestError> {
        let shape = self.shape(id);
        if !matches!(shape.kind, Kind::String) {
            return self.scalar_ok(id, &Value::String(k.to_owned()));
        }
        let mut out = Vec::new();
        Self::string_failures(shape, k, &mut out);
        Ok(out.is_empty())
    }

    /// The constraints a (well-typed) scalar fails, in AWS's order.
    fn failures(&self, id: ShapeId, v: &Value) -> Vec<String> {
        let shape = self.shape(id);
        let mut out = Vec::new();
        match (&shape.kind, v) {
            (Kind::String, Value::String(s)) => Self::string_failures(shape, s, &mut out),
            (Kind::Blob, Value::String(s)) => {
                // The typed decode has checked the characters: the length is arithmetic.
                Self::length_rules(shape, decoded_len(s), &mut out);
            }
            (Kind::Integer | Kind::Long | Kind::Double, Value::Number(n)) => {
                let x = match shape.kind {
                    Kind::Integer => truncated(n, i32::MIN.into(), i32::MAX.into()) as f64,
                    Kind::Long => truncated(n, i64::MIN, i64::MAX) as f64,
                    _ => n.as_f64().unwrap_or(0.0),
                };
                if let Some(min) = shape.min
                    && x < min
                {
                    out.push(format!(
                        "Member must have value greater than or equal to {}",
                        bound_text(min)
                    ));
                }
                if let Some(max) = shape.max
                    && x > max
                {
                    out.push(format!(
                        "Member must have value less than or equal to {}",
                        bound_text(max)
                    ));
                }
            }
            _ => {}
        }
        out
    }

    /// The constraints a string of shape `shape` fails (enum, pattern, length), in AWS's
    /// order; nothing is formatted for a string that passes.
    fn string_failures(shape: &Shape, s: &str, out: &mut Vec<String>) {
        if let Some(values) = &shape.enumeration
            && !values.iter().any(|e| e == s)
        {
            out.push(format!(
                "Member must satisfy enum value set: [{}]",
                values.join(", ")
            ));
        }
        if let Some(p) = &shape.pattern
            && !p.is_match(s)
        {
            out.push(format!(
                "Member must satisfy regular expression pattern: {}",
                p.source()
            ));
        }
        Self::length_rules(shape, java_len(s), out);
    }

    fn length_rules(shape: &Shape, n: usize, out: &mut Vec<String>) {
        if let Some(min) = shape.min
            && (n as f64) < min
        {
            out.push(format!(
                "Member must have length greater than or equal to {}",
                bound_text(min)
            ));
        }
        if let Some(max) = shape.max
            && (n as f64) > max
        {
            out.push(format!(
                "Member must have length less than or equal to {}",
                bound_text(max)
            ));
        }
    }

    /// A list's or map's own length constraints.
    fn length(&mut self, id: ShapeId, v: &Value, n: usize, path: &Path<'_>) {
        let mut rules = Vec::new();
        Self::length_rules(self.shape(id), n, &mut rules);
        for r in rules {
            self.push(Some((id, v)), path, r);
        }
    }

    /// Every constraint of a scalar shape, as AWS lists them for list members and map
    /// keys and values.
    fn rules(&self, id: ShapeId) -> String {
        let shape = self.shape(id);
        let length = matches!(
            shape.kind,
            Kind::String | Kind::Blob | Kind::List { .. } | Kind::Map { .. }
        );
        let mut out = Vec::new();
        if let Some(max) = shape.max {
            out.push(if length {
                format!(
                    "Member must have length less than or equal to {}",
                    bound_text(max)
                )
            } else {
                format!(
                    "Member must have value less than or equal to {}",
                    bound_text(max)
                )
            });
        }
        if let Some(min) = shape.min {
            out.push(if length {
                format!(
                    "Member must have length greater than or equal to {}",
                    bound_text(min)
                )
            } else {
                format!(
                    "Member must have value greater than or equal to {}",
                    bound_text(min)
                )
            });
        }
        if let Some(p) = &shape.pattern {
            out.push(format!(
                "Member must satisfy regular expression pattern: {}",
                p.source()
            ));
        }
        if let Some(values) = &shape.enumeration {
            out.push(format!(
                "Member must satisfy enum value set: [{}]",
                values.join(", ")
            ));
        }
        out.join(", ")
    }

    /// A value as AWS's messages show it: quoted Java `toString`.
    fn show(&self, id: ShapeId, v: &Value) -> String {
        let mut s = String::from("'");
        self.java_string(id, v, &mut s);
        s.push('\'');
        s
    }

    fn java_string(&self, id: ShapeId, v: &Value, out: &mut String) {
        let shape = self.shape(id);
        match (&shape.kind, v) {
            (_, Value::Null) => out.push_str("null"),
            (Kind::String, Value::String(s)) => out.push_str(s),
            (Kind::Blob, Value::String(s)) => {
                let n = decoded_len(s);
                let _ = write!(out, "java.nio.HeapByteBuffer[pos=0 lim={n} cap={n}]");
            }
            (Kind::Integer, Value::Number(n)) => {
                let _ = write!(out, "{}", truncated(n, i32::MIN.into(), i32::MAX.into()));
            }
            (Kind::Long, Value::Number(n)) => {
                let _ = write!(out, "{}", truncated(n, i64::MIN, i64::MAX));
            }
            (Kind::List { member }, Value::Array(items)) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    self.java_string(*member, item, out);
                }
                out.push(']');
            }
            (Kind::Map { key, value }, Value::Object(entries)) => {
                out.push('{');
                for (i, (k, item)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    self.java_string(*key, &Value::String(k.clone()), out);
                    out.push('=');
                    self.java_string(*value, item, out);
                }
                out.push('}');
            }
            (Kind::Structure { .. }, _) => {
                // Java prints the class and its identity hash; ours is a hash of the
                // content, so equal values show alike, as they do at AWS.
                let mut h: u32 = 0x811c_9dc5;
                for b in v.to_string().bytes() {
                    h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
                }
                let _ = write!(out, "{}.{}@{h:08x}", self.model.namespace, shape.name);
            }
            (_, other) => match other {
                Value::String(s) => out.push_str(s),
                _ => {
                    let _ = write!(out, "{other}");
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(op: &str, v: Value) -> String {
        kinesis().check(op, &v).unwrap_err().to_string()
    }

    #[test]
    fn both_models_load() {
        assert!(kinesis().has_operation("PutRecords"));
        assert!(dynamodb().has_operation("PutItem"));
        assert!(!kinesis().has_operation("PutItem"));
    }

    #[test]
    fn wrong_types_are_serialization_errors_with_aws_wording() {
        assert_eq!(
            err("DeleteStream", json!({"StreamName": true})),
            "class java.lang.Boolean can not be converted to an String"
        );
        assert_eq!(
            err(
                "CreateStream",
                json!({"StreamName": "a", "ShardCount": "1"})
            ),
            "class java.lang.String can not be converted to an Integer"
        );
        assert_eq!(
            err("PutRecords", json!({"Records": [{"Data": "23456"}]})),
            "'23456' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: 5"
        );
        assert_eq!(
            err("PutRecord", json!({"Data": "+/+="})),
            "'+/+=' can not be converted to a Blob: Invalid last non-pad Base64 character dectected"
        );
        assert_eq!(
            err("AddTagsToStream", json!({"Tags": []})),
            "Start of list found where not expected"
        );
        assert_eq!(
            err("PutRecords", json!({"Records": 3})),
            "Expected list or null"
        );
        assert_eq!(err("PutRecords", json!({"Records": [3]})), "Expected null");
    }

    #[test]
    fn constraints_are_aggregated_in_member_order() {
        assert_eq!(
            err("PutRecords", json!({"StreamName": "", "Records": []})),
            "3 validation errors detected: Value '[]' at 'records' failed to satisfy constraint: Member must have length greater than or equal to 1; \
             Value '' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; \
             Value '' at 'streamName' failed to satisfy constraint: Member must have length greater than or equal to 1"
        );
        assert_eq!(
            err(
                "RemoveTagsFromStream",
                json!({"StreamName": "s", "TagKeys": ["a", ""]})
            ),
            "1 validation error detected: Value '[a, ]' at 'tagKeys' failed to satisfy constraint: Member must satisfy constraint: [Member must have length less than or equal to 128, Member must have length greater than or equal to 1]"
        );
        assert_eq!(
            err(
                "CreateStream",
                json!({"StreamName": "s", "ShardCount": -100_000_000_000i64})
            ),
            "1 validation error detected: Value '-2147483648' at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1"
        );
        // Neither StreamName nor StreamARN: the name is reported missing.
        assert!(err("DeleteStream", json!({})).contains("Value null at 'streamName'"));
        assert!(
            kinesis()
                .check(
                    "DeleteStream",
                    &json!({"StreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/s"})
                )
                .is_ok()
        );
    }

    #[test]
    fn at_most_ten_violations_are_reported() {
        let records: Vec<Value> = (0..30)
            .map(|_| json!({"PartitionKey": "", "Data": ""}))
            .collect();
        let e = err("PutRecords", json!({"StreamName": "s", "Records": records}));
        assert!(e.starts_with("10 validation errors detected: "), "{e}");
    }

    /// What the layer costs a PutRecord of 1 KiB and a PutRecords of 500 such records:
    /// `cargo test -p spillway --release --lib model::tests::cost -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn cost() {
        let b64 = |n: usize| {
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, vec![7u8; n])
        };
        let small =
            json!({"StreamName": "example-stream", "PartitionKey": "user-42", "Data": b64(100)});
        let one =
            json!({"StreamName": "example-stream", "PartitionKey": "user-42", "Data": b64(1024)});
        let many = json!({"StreamName": "example-stream", "Records": vec![json!({"PartitionKey": "user-42", "Data": b64(1024)}); 500]});
        for (op, v, n) in [
            ("PutRecord", &small, 100_000u32),
            ("PutRecord", &one, 100_000),
            ("PutRecords", &many, 200),
        ] {
            let t = std::time::Instant::now();
            for _ in 0..n {
                kinesis().check(op, v).unwrap();
            }
            println!("{op}: {:?} per request", t.elapsed() / n);
        }
    }

    #[test]
    fn map_values_that_are_lists_are_reported_at_the_map() {
        let writes: Vec<Value> = (0..26)
            .map(|i| json!({"PutRequest": {"Item": {"id": {"S": i.to_string()}}}}))
            .collect();
        let e = dynamodb()
            .check("BatchWriteItem", &json!({"RequestItems": {"t": writes}}))
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to 25, Member must have length greater than or equal to 1]"),
            "{e}"
        );
        // A wrong type deep inside is still a serialization error.
        let e = dynamodb()
            .check(
                "PutItem",
                &json!({"TableName": "t", "Item": {"a": {"S": 5}}}),
            )
            .unwrap_err();
        assert!(matches!(e, RequestError::Serialization(_)), "{e}");
    }
}
