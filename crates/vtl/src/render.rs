//! Evaluation: walks the syntax tree against a [`Context`], with Velocity 1.7's semantics
//! for references, `#set`, truth and comparison, and every step counted against the
//! [`Limits`].

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use crate::Limits;
use crate::error::{At, Kind};
use crate::host::{self, Context};
use crate::jsonpath::{self, Found};
use crate::parse::{Expr, Node, Op, Reference, Segment};
use crate::regex::{self, Regex};
use crate::value::{Host, List, Map, Value, format_float};

type R<T> = Result<T, At>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Go,
    Break,
    Stop,
}

/// A step into a container on the way to a place that a method call or `#set` changes.
enum Key {
    Name(String),
    Value(Value),
}

/// What to do at the place reached.
enum Change {
    Call(String, Vec<Value>),
    Assign(Key, Value),
}

const MUTATORS: &[&str] = &["add", "addAll", "put", "putAll", "remove", "clear", "set"];

pub(crate) struct Renderer<'a> {
    ctx: &'a Context,
    limits: &'a Limits,
    vars: HashMap<String, Value>,
    context: Value,
    stage: Value,
    /// The body as a value, parsed on first use: `Ok(None)` for an empty body.
    body: Option<Result<Option<Value>, String>>,
    steps: u64,
    at: usize,
}

impl<'a> Renderer<'a> {
    pub(crate) fn new(ctx: &'a Context, limits: &'a Limits) -> Self {
        Renderer {
            ctx,
            limits,
            vars: HashMap::new(),
            context: Value::from_json(&ctx.context),
            stage: Value::from_json(&ctx.stage_variables),
            body: None,
            steps: 0,
            at: 0,
        }
    }

    pub(crate) fn render(&mut self, nodes: &[Node]) -> R<String> {
        let mut out = String::new();
        self.nodes(nodes, &mut out)?;
        Ok(out)
    }

    fn fail(&self, kind: Kind) -> At {
        At::new(self.at, kind)
    }

    fn function_error(&self, message: impl Into<String>) -> At {
        self.fail(Kind::Function(message.into()))
    }

    fn step(&mut self) -> R<()> {
        self.steps += 1;
        if self.steps > self.limits.max_steps {
            return Err(self.fail(Kind::TooManySteps(self.limits.max_steps)));
        }
        Ok(())
    }

    fn push(&self, out: &mut String, s: &str) -> R<()> {
        if out.len() + s.len() > self.limits.max_output_bytes {
            return Err(self.fail(Kind::OutputTooLarge(self.limits.max_output_bytes)));
        }
        out.push_str(s);
        Ok(())
    }

    fn check_len(&self, len: usize) -> R<()> {
        if len > self.limits.max_collection_len {
            return Err(self.fail(Kind::CollectionTooLarge(self.limits.max_collection_len)));
        }
        Ok(())
    }

    fn check_depth(&self, v: Value) -> R<Value> {
        if v.depth() > self.limits.max_value_depth {
            return Err(self.fail(Kind::TooDeep(self.limits.max_value_depth)));
        }
        Ok(v)
    }

    fn nodes(&mut self, nodes: &[Node], out: &mut String) -> R<Flow> {
        for node in nodes {
            self.step()?;
            let flow = match node {
                Node::Text(t) => {
                    self.push(out, t)?;
                    Flow::Go
                }
                Node::Ref(r) => {
                    self.reference_out(r, out)?;
                    Flow::Go
                }
                Node::Set { target, value, at } => {
                    self.at = *at;
                    let v = self.eval(value)?;
                    // Velocity 1.7: a null right-hand side leaves the variable as it was.
                    if v != Value::Null {
                        self.at = *at;
                        self.assign(target, v)?;
                    }
                    Flow::Go
                }
                Node::If {
                    branches,
                    otherwise,
                    at,
                } => {
                    let mut chosen = otherwise.as_deref();
                    for (cond, body) in branches {
                        self.at = *at;
                        if self.eval(cond)?.truthy() {
                            chosen = Some(body);
                            break;
                        }
                    }
                    match chosen {
                        Some(body) => self.nodes(body, out)?,
                        None => Flow::Go,
                    }
                }
                Node::Foreach {
                    var,
                    iterable,
                    body,
                    at,
                } => {
                    self.at = *at;
                    self.foreach(var, iterable, body, out)?
                }
                Node::Break => Flow::Break,
                Node::Stop => Flow::Stop,
            };
            if flow != Flow::Go {
                return Ok(flow);
            }
        }
        Ok(Flow::Go)
    }

    fn foreach(&mut self, var: &str, iterable: &Expr, body: &[Node], out: &mut String) -> R<Flow> {
        let items: Vec<Value> = match self.eval(iterable)? {
            Value::List(l) => l.items().to_vec(),
            Value::Map(m) => m.entries().iter().map(|(_, v)| v.clone()).collect(),
            _ => return Ok(Flow::Go),
        };
        let names = [var, "foreach", "velocityCount", "velocityHasNext"];
        let saved: Vec<Option<Value>> = names.iter().map(|n| self.vars.remove(*n)).collect();
        let parent = saved[1].clone();
        let len = items.len();
        let mut flow = Flow::Go;
        for (i, item) in items.into_iter().take(self.limits.max_foreach).enumerate() {
            self.step()?;
            let has_next = i + 1 < len;
            let mut scope = vec![
                ("index", Value::Int(i as i64)),
                ("count", Value::Int(i as i64 + 1)),
                ("hasNext", Value::Bool(has_next)),
                ("first", Value::Bool(i == 0)),
                ("last", Value::Bool(!has_next)),
            ];
            if let Some(p) = &parent {
                scope.push(("parent", p.clone()));
            }
            self.vars.insert(var.to_owned(), item);
            self.vars.insert("foreach".into(), Value::map(scope));
            self.vars
                .insert("velocityCount".into(), Value::Int(i as i64 + 1));
            self.vars
                .insert("velocityHasNext".into(), Value::Bool(has_next));
            match self.nodes(body, out)? {
                Flow::Go => {}
                Flow::Break => break,
                Flow::Stop => {
                    flow = Flow::Stop;
                    break;
                }
            }
        }
        for (name, old) in names.iter().zip(saved) {
            match old {
                Some(v) => self.vars.insert((*name).to_owned(), v),
                None => self.vars.remove(*name),
            };
        }
        Ok(flow)
    }

    /// Renders a reference: its value, or (undefined or null) its own source text, unless
    /// quiet. Backslashes before it escape it the way Velocity's user guide describes.
    fn reference_out(&mut self, r: &Reference, out: &mut String) -> R<()> {
        self.at = r.at;
        let v = self.reference(r)?;
        self.at = r.at;
        let n = r.escapes;
        if v == Value::Null {
            self.push(out, &"\\".repeat(n))?;
            if !(r.quiet && n == 0) {
                self.push(out, &r.source)?;
            }
            return Ok(());
        }
        self.push(out, &"\\".repeat(n / 2))?;
        if n % 2 == 1 {
            self.push(out, &r.source)
        } else {
            self.display(&v, out)
        }
    }

    /// Java's `toString` of a value: lists as `[a, b]`, maps as `{k=v}`.
    fn display(&mut self, v: &Value, out: &mut String) -> R<()> {
        self.step()?;
        match v {
            Value::Null => self.push(out, "null"),
            Value::Bool(b) => self.push(out, if *b { "true" } else { "false" }),
            Value::Int(i) => self.push(out, &i.to_string()),
            Value::Float(f) => self.push(out, &format_float(*f)),
            Value::String(s) => self.push(out, s),
            Value::Host(Host::Input) => self.push(out, "$input"),
            Value::Host(Host::Util) => self.push(out, "$util"),
            Value::List(l) => {
                self.push(out, "[")?;
                for (i, item) in l.items().iter().enumerate() {
                    if i > 0 {
                        self.push(out, ", ")?;
                    }
                    self.display(item, out)?;
                }
                self.push(out, "]")
            }
            Value::Map(m) => {
                self.push(out, "{")?;
                for (i, (k, item)) in m.entries().iter().enumerate() {
                    if i > 0 {
                        self.push(out, ", ")?;
                    }
                    self.push(out, k)?;
                    self.push(out, "=")?;
                    self.display(item, out)?;
                }
                self.push(out, "}")
            }
        }
    }

    fn text_of(&mut self, v: &Value) -> R<String> {
        let mut s = String::new();
        self.display(v, &mut s)?;
        Ok(s)
    }

    /// JSON text of a value, for `$input.json`.
    fn json(&mut self, v: &Value, out: &mut String) -> R<()> {
        self.step()?;
        match v {
            Value::Null | Value::Host(_) => self.push(out, "null"),
            Value::Bool(b) => self.push(out, if *b { "true" } else { "false" }),
            Value::Int(i) => self.push(out, &i.to_string()),
            Value::Float(f) => {
                let text =
                    serde_json::Number::from_f64(*f).map_or("null".to_owned(), |n| n.to_string());
                self.push(out, &text)
            }
            Value::String(s) => {
                let text = serde_json::Value::String(s.clone()).to_string();
                self.push(out, &text)
            }
            Value::List(l) => {
                self.push(out, "[")?;
                for (i, item) in l.items().iter().enumerate() {
                    if i > 0 {
                        self.push(out, ",")?;
                    }
                    self.json(item, out)?;
                }
                self.push(out, "]")
            }
            Value::Map(m) => {
                self.push(out, "{")?;
                for (i, (k, item)) in m.entries().iter().enumerate() {
                    if i > 0 {
                        self.push(out, ",")?;
                    }
                    let key = serde_json::Value::String(k.clone()).to_string();
                    self.push(out, &key)?;
                    self.push(out, ":")?;
                    self.json(item, out)?;
                }
                self.push(out, "}")
            }
        }
    }

    fn root(&self, name: &str) -> Value {
        if let Some(v) = self.vars.get(name) {
            return v.clone();
        }
        match name {
            "input" => Value::Host(Host::Input),
            "util" => Value::Host(Host::Util),
            "context" => self.context.clone(),
            "stageVariables" => self.stage.clone(),
            _ => Value::Null,
        }
    }

    fn args(&mut self, args: &[Expr]) -> R<Vec<Value>> {
        args.iter().map(|a| self.eval(a)).collect()
    }

    /// Evaluates a reference; `Value::Null` stands for undefined too.
    fn reference(&mut self, r: &Reference) -> R<Value> {
        self.at = r.at;
        if let Some((Segment::Method(name, args), prefix)) = r.segments.split_last()
            && MUTATORS.contains(&name.as_str())
            && self.vars.contains_key(&r.name)
            && let Some(keys) = self.keys(prefix)?
        {
            let args = self.args(args)?;
            self.at = r.at;
            return self.change(&r.name, &keys, Change::Call(name.clone(), args));
        }
        let mut cur = self.root(&r.name);
        for seg in &r.segments {
            if cur == Value::Null {
                return Ok(Value::Null);
            }
            cur = match seg {
                Segment::Property(p) => self.property(&cur, p)?,
                Segment::Index(e) => {
                    let k = self.eval(e)?;
                    self.index(&cur, &k)?
                }
                Segment::Method(name, args) => {
                    let args = self.args(args)?;
                    self.at = r.at;
                    self.call(cur, name, args)?
                }
            };
        }
        Ok(cur)
    }

    /// The path of a place in a variable, when it has no method calls on the way.
    fn keys(&mut self, segments: &[Segment]) -> R<Option<Vec<Key>>> {
        let mut keys = Vec::new();
        for seg in segments {
            keys.push(match seg {
                Segment::Property(p) => Key::Name(p.clone()),
                Segment::Index(e) => Key::Value(self.eval(e)?),
                Segment::Method(..) => return Ok(None),
            });
        }
        Ok(Some(keys))
    }

    fn assign(&mut self, target: &Reference, v: Value) -> R<()> {
        let Some((last, prefix)) = target.segments.split_last() else {
            self.vars.insert(target.name.clone(), v);
            return Ok(());
        };
        if !self.vars.contains_key(&target.name) {
            return Ok(());
        }
        let Some(keys) = self.keys(prefix)? else {
            return Ok(());
        };
        let key = match last {
            Segment::Property(p) => Key::Name(p.clone()),
            Segment::Index(e) => Key::Value(self.eval(e)?),
            Segment::Method(..) => return Ok(()),
        };
        self.at = target.at;
        self.change(&target.name, &keys, Change::Assign(key, v))?;
        Ok(())
    }

    /// Applies a change at a place inside variable `name`, in place (copy on write).
    fn change(&mut self, name: &str, keys: &[Key], change: Change) -> R<Value> {
        let Some(mut root) = self.vars.remove(name) else {
            return Ok(Value::Null);
        };
        let result = self.change_in(&mut root, keys, change);
        self.vars.insert(name.to_owned(), root);
        result
    }

    fn change_in(&mut self, v: &mut Value, keys: &[Key], change: Change) -> R<Value> {
        let Some((key, rest)) = keys.split_first() else {
            let result = match change {
                Change::Call(name, args) => self.mutate(v, &name, args)?,
                Change::Assign(key, value) => {
                    self.step()?;
                    let key = match key {
                        Key::Name(n) => Value::String(n),
                        Key::Value(k) => k,
                    };
                    match (&mut *v, key) {
                        (Value::Map(m), k) => {
                            let k = self.text_of(&k)?;
                            let m = Arc::make_mut(m);
                            if m.get(&k).is_none() {
                                self.check_len(m.entries().len() + 1)?;
                            }
                            m.insert(k, value);
                        }
                        (Value::List(l), Value::Int(i)) => {
                            if let Ok(i) = usize::try_from(i) {
                                Arc::make_mut(l).set(i, value);
                            }
                        }
                        _ => {}
                    }
                    Value::Null
                }
            };
            self.check_depth(v.clone())?;
            return Ok(result);
        };
        let result = match (&mut *v, key) {
            (Value::Map(m), key) => {
                let k = match key {
                    Key::Name(n) => n.clone(),
                    Key::Value(k) => self.text_of(k)?,
                };
                let m = Arc::make_mut(m);
                let Some(child) = m.get_mut(&k) else {
                    return Ok(Value::Null);
                };
                let r = self.change_in(child, rest, change)?;
                let d = child.depth();
                m.note_depth(d);
                r
            }
            (Value::List(l), Key::Value(Value::Int(i))) => {
                let l = Arc::make_mut(l);
                let Some(child) = usize::try_from(*i).ok().and_then(|i| l.get_mut(i)) else {
                    return Ok(Value::Null);
                };
                let r = self.change_in(child, rest, change)?;
                let d = child.depth();
                l.note_depth(d);
                r
            }
            _ => return Ok(Value::Null),
        };
        self.check_depth(v.clone())?;
        Ok(result)
    }

    /// The collection methods that change their receiver (`add`, `put`, ...), with Java's
    /// return values; anything else (wrong receiver or arguments) is "no such method".
    fn mutate(&mut self, v: &mut Value, name: &str, args: Vec<Value>) -> R<Value> {
        self.step()?;
        let mut args = args.into_iter();
        let (a, b, c) = (args.next(), args.next(), args.next());
        if c.is_some() {
            return Ok(Value::Null);
        }
        let limit = self.limits.max_collection_len;
        let too_large = self.fail(Kind::CollectionTooLarge(limit));
        match v {
            Value::List(l) => {
                let len = l.items().len();
                let l = Arc::make_mut(l);
                Ok(match (name, a, b) {
                    ("add", Some(x), None) => {
                        if len + 1 > limit {
                            return Err(too_large);
                        }
                        l.push(x);
                        Value::Bool(true)
                    }
                    ("add", Some(Value::Int(i)), Some(x)) => match usize::try_from(i) {
                        Ok(i) if i <= len => {
                            if len + 1 > limit {
                                return Err(too_large);
                            }
                            l.insert(i, x);
                            Value::Null
                        }
                        _ => {
                            return Err(self.function_error(format!(
                                "IndexOutOfBoundsException: Index: {i}, Size: {len}"
                            )));
                        }
                    },
                    ("addAll", Some(Value::List(other)), None) => {
                        if len + other.items().len() > limit {
                            return Err(too_large);
                        }
                        for x in other.items() {
                            l.push(x.clone());
                        }
                        Value::Bool(!other.items().is_empty())
                    }
                    ("remove", Some(Value::Int(i)), None) => usize::try_from(i)
                        .ok()
                        .and_then(|i| l.remove(i))
                        .unwrap_or(Value::Null),
                    ("set", Some(Value::Int(i)), Some(x)) => usize::try_from(i)
                        .ok()
                        .and_then(|i| l.set(i, x))
                        .unwrap_or(Value::Null),
                    ("clear", None, None) => {
                        l.clear();
                        Value::Null
                    }
                    _ => Value::Null,
                })
            }
            Value::Map(m) => {
                let m = Arc::make_mut(m);
                Ok(match (name, a, b) {
                    ("put", Some(k), Some(x)) => {
                        let k = self.text_of(&k)?;
                        if m.get(&k).is_none() && m.entries().len() + 1 > limit {
                            return Err(too_large);
                        }
                        m.insert(k, x).unwrap_or(Value::Null)
                    }
                    ("putAll", Some(Value::Map(other)), None) => {
                        if m.entries().len() + other.entries().len() > limit {
                            return Err(too_large);
                        }
                        for (k, x) in other.entries() {
                            m.insert(k.clone(), x.clone());
                        }
                        Value::Null
                    }
                    ("remove", Some(k), None) => {
                        let k = self.text_of(&k)?;
                        m.remove(&k).unwrap_or(Value::Null)
                    }
                    ("clear", None, None) => {
                        m.clear();
                        Value::Null
                    }
                    _ => Value::Null,
                })
            }
            _ => Ok(Value::Null),
        }
    }

    fn property(&mut self, v: &Value, name: &str) -> R<Value> {
        self.step()?;
        Ok(match v {
            Value::Map(m) => m.get(name).cloned().unwrap_or(Value::Null),
            Value::Host(Host::Input) if name == "body" => Value::String(self.body_text()),
            Value::String(s) if name == "empty" => Value::Bool(s.is_empty()),
            Value::List(l) if name == "empty" => Value::Bool(l.items().is_empty()),
            _ => Value::Null,
        })
    }

    fn index(&mut self, v: &Value, k: &Value) -> R<Value> {
        self.step()?;
        Ok(match (v, k) {
            (Value::List(l), Value::Int(i)) => usize::try_from(*i)
                .ok()
                .and_then(|i| l.items().get(i).cloned())
                .unwrap_or(Value::Null),
            (Value::Map(m), k) => {
                let k = self.text_of(k)?;
                m.get(&k).cloned().unwrap_or(Value::Null)
            }
            _ => Value::Null,
        })
    }

    fn body_text(&self) -> String {
        if self.ctx.body.is_empty() {
            "{}".to_owned()
        } else {
            self.ctx.body.clone()
        }
    }

    /// The body parsed as JSON (once); `None` for an empty body.
    fn body_value(&mut self) -> R<Option<Value>> {
        if self.body.is_none() {
            let parsed = if self.ctx.body.is_empty() {
                Ok(None)
            } else {
                crate::json::parse(&self.ctx.body).map(Some)
            };
            self.body = Some(parsed);
        }
        match &self.body {
            Some(Ok(v)) => Ok(v.clone()),
            Some(Err(e)) => Err(self.fail(Kind::InvalidJsonBody(e.clone()))),
            None => Ok(None),
        }
    }

    fn select(&mut self, path: &str) -> R<Option<Found>> {
        let Some(root) = self.body_value()? else {
            return Ok(None);
        };
        match jsonpath::select(&root, path, &mut self.steps, self.limits.max_steps) {
            Ok(Ok(found)) => Ok(Some(found)),
            Ok(Err(_)) => Err(self.fail(Kind::TooManySteps(self.limits.max_steps))),
            Err(e) => Err(self.function_error(e)),
        }
    }

    fn string_result(&self, s: String) -> R<Value> {
        if s.len() > self.limits.max_output_bytes {
            return Err(self.fail(Kind::OutputTooLarge(self.limits.max_output_bytes)));
        }
        Ok(Value::String(s))
    }

    /// Calls a method that does not change its receiver.
    fn call(&mut self, recv: Value, name: &str, args: Vec<Value>) -> R<Value> {
        self.step()?;
        match (&recv, name, args.as_slice()) {
            (Value::Host(Host::Input), _, _) => self.input_call(name, &args),
            (Value::Host(Host::Util), _, _) => self.util_call(name, &args),
            (Value::String(s), _, _) => self.string_call(s, name, &args),
            (Value::List(l), "size", []) => Ok(Value::Int(l.items().len() as i64)),
            (Value::List(l), "isEmpty", []) => Ok(Value::Bool(l.items().is_empty())),
            (Value::List(l), "get", [Value::Int(i)]) => {
                match usize::try_from(*i).ok().and_then(|i| l.items().get(i)) {
                    Some(v) => Ok(v.clone()),
                    None => Err(self.function_error(format!(
                        "IndexOutOfBoundsException: Index: {i}, Size: {}",
                        l.items().len()
                    ))),
                }
            }
            (Value::List(l), "contains" | "indexOf", [x]) => {
                let mut found = None;
                for (i, item) in l.items().iter().enumerate() {
                    if self.equal(item, x)? {
                        found = Some(i);
                        break;
                    }
                }
                Ok(if name == "contains" {
                    Value::Bool(found.is_some())
                } else {
                    Value::Int(found.map_or(-1, |i| i as i64))
                })
            }
            (Value::Map(m), "size", []) => Ok(Value::Int(m.entries().len() as i64)),
            (Value::Map(m), "isEmpty", []) => Ok(Value::Bool(m.entries().is_empty())),
            (Value::Map(m), "get", [k]) => {
                let k = self.text_of(k)?;
                Ok(m.get(&k).cloned().unwrap_or(Value::Null))
            }
            (Value::Map(m), "containsKey", [k]) => {
                let k = self.text_of(k)?;
                Ok(Value::Bool(m.get(&k).is_some()))
            }
            (Value::Map(m), "containsValue", [x]) => {
                for (_, item) in m.entries() {
                    if self.equal(item, x)? {
                        return Ok(Value::Bool(true));
                    }
                }
                Ok(Value::Bool(false))
            }
            (Value::Map(m), "keySet", []) => Ok(Value::list(
                m.entries()
                    .iter()
                    .map(|(k, _)| Value::String(k.clone()))
                    .collect(),
            )),
            (Value::Map(m), "values", []) => Ok(Value::list(
                m.entries().iter().map(|(_, v)| v.clone()).collect(),
            )),
            (Value::Map(m), "entrySet", []) => Ok(Value::list(
                m.entries()
                    .iter()
                    .map(|(k, v)| {
                        Value::map([("key", Value::String(k.clone())), ("value", v.clone())])
                    })
                    .collect(),
            )),
            (Value::List(_) | Value::Map(_), m, _) if MUTATORS.contains(&m) => {
                // A change to a temporary (say, a method's result): applied, then dropped.
                let mut temp = recv.clone();
                self.mutate(&mut temp, name, args)
            }
            (_, "toString", []) => {
                let s = self.text_of(&recv)?;
                Ok(Value::String(s))
            }
            (_, "equals", [x]) => Ok(Value::Bool(self.equal(&recv, x)?)),
            (Value::Int(i), "intValue" | "longValue", []) => Ok(Value::Int(*i)),
            (Value::Float(f), "intValue" | "longValue", []) => Ok(Value::Int(*f as i64)),
            (Value::Int(i), "doubleValue", []) => Ok(Value::Float(*i as f64)),
            (Value::Float(f), "doubleValue", []) => Ok(Value::Float(*f)),
            _ => Ok(Value::Null),
        }
    }

    fn input_call(&mut self, name: &str, args: &[Value]) -> R<Value> {
        match (name, args) {
            ("json", [Value::String(path)]) => Ok(match self.select(path)? {
                Some(Found::One(Some(v))) => {
                    let mut s = String::new();
                    self.json(&v, &mut s)?;
                    Value::String(s)
                }
                Some(Found::Many(vs)) => {
                    let mut s = String::new();
                    self.json(&Value::list(vs), &mut s)?;
                    Value::String(s)
                }
                Some(Found::One(None)) | None => Value::String(String::new()),
            }),
            ("path", [Value::String(path)]) => Ok(match self.select(path)? {
                Some(Found::One(v)) => v.unwrap_or(Value::Null),
                Some(Found::Many(vs)) => Value::list(vs),
                None => Value::Null,
            }),
            ("params", []) => {
                let group = |list: &[(String, String)]| {
                    Value::map(
                        list.iter()
                            .map(|(k, v)| (k.clone(), Value::String(v.clone()))),
                    )
                };
                Ok(Value::map([
                    ("path", group(&self.ctx.path)),
                    ("querystring", group(&self.ctx.querystring)),
                    ("header", group(&self.ctx.headers)),
                ]))
            }
            ("params", [Value::String(n)]) => Ok(Value::String(self.ctx.param(n).to_owned())),
            _ => Ok(Value::Null),
        }
    }

    fn util_call(&mut self, name: &str, args: &[Value]) -> R<Value> {
        let [Value::String(s)] = args else {
            return Ok(Value::Null);
        };
        match name {
            "escapeJavaScript" => self.string_result(host::escape_javascript(s)),
            "base64Encode" => self.string_result(host::base64_encode(s)),
            "base64Decode" => host::base64_decode(s)
                .map(Value::String)
                .map_err(|e| self.function_error(e)),
            "urlEncode" => self.string_result(host::url_encode(s)),
            "urlDecode" => host::url_decode(s)
                .map(Value::String)
                .map_err(|e| self.function_error(e)),
            "parseJson" => {
                crate::json::parse(s).map_err(|e| self.function_error(format!("parseJson: {e}")))
            }
            _ => Ok(Value::Null),
        }
    }

    fn regex(&self, pattern: &str) -> R<Regex> {
        Regex::new(pattern).map_err(|e| self.function_error(e))
    }

    fn string_call(&mut self, s: &str, name: &str, args: &[Value]) -> R<Value> {
        let utf16 = || s.encode_utf16().collect::<Vec<u16>>();
        let out_of_bounds = |b: i64, e: i64, len: usize| {
            format!("StringIndexOutOfBoundsException: begin {b}, end {e}, length {len}")
        };
        Ok(match (name, args) {
            ("length", []) => Value::Int(s.encode_utf16().count() as i64),
            ("isEmpty", []) => Value::Bool(s.is_empty()),
            ("toLowerCase", []) => Value::String(s.to_lowercase()),
            ("toUpperCase", []) => Value::String(s.to_uppercase()),
            ("trim", []) => Value::String(s.trim_matches(|c: char| c <= ' ').to_owned()),
            ("toString", []) => Value::String(s.to_owned()),
            ("substring", [Value::Int(b)]) | ("substring", [Value::Int(b), Value::Int(_)]) => {
                let units = utf16();
                let len = units.len();
                let e = match args {
                    [_, Value::Int(e)] => *e,
                    _ => len as i64,
                };
                if *b < 0 || e < *b || e > len as i64 {
                    return Err(self.function_error(out_of_bounds(*b, e, len)));
                }
                Value::String(String::from_utf16_lossy(&units[*b as usize..e as usize]))
            }
            ("charAt", [Value::Int(i)]) => {
                let units = utf16();
                match usize::try_from(*i).ok().and_then(|i| units.get(i)) {
                    Some(&u) => Value::String(String::from_utf16_lossy(&[u])),
                    None => {
                        return Err(self.function_error(out_of_bounds(*i, *i + 1, units.len())));
                    }
                }
            }
            ("indexOf" | "lastIndexOf", [Value::String(needle)]) => {
                let found = if name == "indexOf" {
                    s.find(needle.as_str())
                } else {
                    s.rfind(needle.as_str())
                };
                Value::Int(found.map_or(-1, |byte| s[..byte].encode_utf16().count() as i64))
            }
            ("contains", [Value::String(x)]) => Value::Bool(s.contains(x.as_str())),
            ("startsWith", [Value::String(x)]) => Value::Bool(s.starts_with(x.as_str())),
            ("endsWith", [Value::String(x)]) => Value::Bool(s.ends_with(x.as_str())),
            ("equals", [x]) => Value::Bool(matches!(x, Value::String(x) if x == s)),
            ("equalsIgnoreCase", [Value::String(x)]) => {
                Value::Bool(x.to_lowercase() == s.to_lowercase())
            }
            ("concat", [Value::String(x)]) => self.string_result(format!("{s}{x}"))?,
            ("replace", [Value::String(from), Value::String(to)]) => {
                let n = if from.is_empty() {
                    s.chars().count() + 1
                } else {
                    s.matches(from.as_str()).count()
                };
                let grown = s.len().saturating_add(n.saturating_mul(to.len()));
                if grown > self.limits.max_output_bytes {
                    return Err(self.fail(Kind::OutputTooLarge(self.limits.max_output_bytes)));
                }
                Value::String(s.replace(from.as_str(), to))
            }
            ("replaceAll" | "replaceFirst", [Value::String(pattern), Value::String(with)]) => {
                let re = self.regex(pattern)?;
                let limit = if name == "replaceAll" { usize::MAX } else { 1 };
                let chars: Vec<char> = s.chars().collect();
                let found = self.find(&re, &chars, limit)?;
                let mut out = String::new();
                let mut last = 0;
                for (b, e) in found {
                    out.extend(&chars[last..b]);
                    let matched: String = chars[b..e].iter().collect();
                    regex::expand(with, &matched, &mut out).map_err(|e| self.function_error(e))?;
                    if out.len() > self.limits.max_output_bytes {
                        return Err(self.fail(Kind::OutputTooLarge(self.limits.max_output_bytes)));
                    }
                    last = e;
                }
                out.extend(&chars[last..]);
                Value::String(out)
            }
            ("matches", [Value::String(pattern)]) => {
                let re = self.regex(pattern)?;
                let mut budget = self.budget();
                let whole = re.full_match(s, &mut budget);
                self.spend(budget)?;
                Value::Bool(whole.unwrap_or(false))
            }
            ("split", [Value::String(pattern)]) => {
                let re = self.regex(pattern)?;
                let chars: Vec<char> = s.chars().collect();
                let found = self.find(&re, &chars, self.limits.max_collection_len)?;
                let mut parts = Vec::new();
                let mut last = 0;
                for (b, e) in found {
                    // Java drops a leading empty piece from a zero-width match at 0.
                    if e == 0 {
                        continue;
                    }
                    parts.push(Value::String(chars[last..b].iter().collect()));
                    last = e;
                }
                parts.push(Value::String(chars[last..].iter().collect()));
                while parts.len() > 1 && parts.last() == Some(&Value::String(String::new())) {
                    parts.pop();
                }
                if s.is_empty() {
                    parts = vec![Value::String(String::new())];
                }
                self.check_len(parts.len())?;
                Value::list(parts)
            }
            _ => Value::Null,
        })
    }

    fn budget(&self) -> u64 {
        self.limits.max_steps.saturating_sub(self.steps)
    }

    /// Charges what a regex run used, given what is left of the budget handed to it.
    fn spend(&mut self, left: u64) -> R<()> {
        let used = self.budget() - left.min(self.budget());
        self.steps += used;
        if left == 0 {
            return Err(self.fail(Kind::TooManySteps(self.limits.max_steps)));
        }
        Ok(())
    }

    fn find(&mut self, re: &Regex, chars: &[char], limit: usize) -> R<Vec<(usize, usize)>> {
        let mut budget = self.budget();
        let found = re.find_all(chars, limit, &mut budget);
        self.spend(budget)?;
        found.ok_or_else(|| self.fail(Kind::TooManySteps(self.limits.max_steps)))
    }

    fn eval(&mut self, e: &Expr) -> R<Value> {
        self.step()?;
        match e {
            Expr::Literal(v) => Ok(v.clone()),
            Expr::Interpolated(nodes) => {
                let mut s = String::new();
                self.nodes(nodes, &mut s)?;
                Ok(Value::String(s))
            }
            Expr::Ref(r) => self.reference(r),
            Expr::List(items) => {
                self.check_len(items.len())?;
                let items = items.iter().map(|i| self.eval(i)).collect::<R<Vec<_>>>()?;
                self.check_depth(Value::list(items))
            }
            Expr::Map(pairs) => {
                self.check_len(pairs.len())?;
                let mut map = Map::default();
                for (k, v) in pairs {
                    let k = self.eval(k)?;
                    let k = self.text_of(&k)?;
                    let v = self.eval(v)?;
                    map.insert(k, v);
                }
                self.check_depth(Value::Map(Arc::new(map)))
            }
            Expr::Range(a, b) => {
                let (a, b) = (self.eval(a)?, self.eval(b)?);
                let (Value::Int(a), Value::Int(b)) = (a, b) else {
                    return Ok(Value::Null);
                };
                let len = a.abs_diff(b).saturating_add(1);
                self.check_len(usize::try_from(len).unwrap_or(usize::MAX))?;
                let mut list = List::default();
                let step = if a <= b { 1 } else { -1 };
                let mut i = a;
                loop {
                    list.push(Value::Int(i));
                    if i == b {
                        break;
                    }
                    i += step;
                }
                Ok(Value::List(Arc::new(list)))
            }
            Expr::Not(e) => Ok(Value::Bool(!self.eval(e)?.truthy())),
            Expr::Neg(e) => Ok(match self.eval(e)? {
                Value::Int(i) => i
                    .checked_neg()
                    .map_or(Value::Float(-(i as f64)), Value::Int),
                Value::Float(f) => Value::Float(-f),
                _ => Value::Null,
            }),
            Expr::Binary(op, l, r, at) => {
                let left = self.eval(l)?;
                match op {
                    Op::And if !left.truthy() => return Ok(Value::Bool(false)),
                    Op::Or if left.truthy() => return Ok(Value::Bool(true)),
                    _ => {}
                }
                let right = self.eval(r)?;
                self.at = *at;
                self.binary(*op, left, right)
            }
        }
    }

    fn binary(&mut self, op: Op, l: Value, r: Value) -> R<Value> {
        Ok(match op {
            Op::And | Op::Or => Value::Bool(r.truthy()),
            Op::Eq => Value::Bool(self.equal(&l, &r)?),
            Op::Ne => Value::Bool(!self.equal(&l, &r)?),
            Op::Lt | Op::Le | Op::Gt | Op::Ge => {
                let ord = compare(&l, &r);
                Value::Bool(match (op, ord) {
                    (_, None) => false,
                    (Op::Lt, Some(o)) => o == Ordering::Less,
                    (Op::Le, Some(o)) => o != Ordering::Greater,
                    (Op::Gt, Some(o)) => o == Ordering::Greater,
                    (_, Some(o)) => o != Ordering::Less,
                })
            }
            Op::Add
                if matches!((&l, &r), (Value::String(_), _) | (_, Value::String(_)))
                    && l != Value::Null
                    && r != Value::Null =>
            {
                let mut s = self.text_of(&l)?;
                self.display(&r, &mut s)?;
                Value::String(s)
            }
            Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Mod => arithmetic(op, &l, &r),
        })
    }

    /// Velocity 1.7's `==`: numbers by value, same kinds by value, different kinds by
    /// their string forms; `null` equals only `null`.
    fn equal(&mut self, l: &Value, r: &Value) -> R<bool> {
        self.step()?;
        Ok(match (l, r) {
            (Value::Null, Value::Null) => true,
            (Value::Null, _) | (_, Value::Null) => false,
            (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
                compare(l, r) == Some(Ordering::Equal)
            }
            (Value::String(a), Value::String(b)) => a == b,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Host(a), Value::Host(b)) => a == b,
            (Value::List(a), Value::List(b)) => {
                if a.items().len() != b.items().len() {
                    return Ok(false);
                }
                for (x, y) in a.items().iter().zip(b.items()) {
                    if !self.equal(x, y)? {
                        return Ok(false);
                    }
                }
                true
            }
            (Value::Map(a), Value::Map(b)) => {
                if a.entries().len() != b.entries().len() {
                    return Ok(false);
                }
                for (k, x) in a.entries() {
                    match b.get(k) {
                        Some(y) if self.equal(x, y)? => {}
                        _ => return Ok(false),
                    }
                }
                true
            }
            _ => {
                let a = self.text_of(l)?;
                let b = self.text_of(r)?;
                a == b
            }
        })
    }
}

fn compare(l: &Value, r: &Value) -> Option<Ordering> {
    match (l, r) {
        (Value::Int(a), Value::Int(b)) => Some(a.cmp(b)),
        (Value::Int(a), Value::Float(b)) => (*a as f64).partial_cmp(b),
        (Value::Float(a), Value::Int(b)) => a.partial_cmp(&(*b as f64)),
        (Value::Float(a), Value::Float(b)) => a.partial_cmp(b),
        _ => None,
    }
}

/// Java arithmetic as Velocity's `MathUtils` does it: whole numbers stay whole (widening
/// to a decimal instead of overflowing), division by zero and non-numbers give `null`.
fn arithmetic(op: Op, l: &Value, r: &Value) -> Value {
    match (l, r) {
        (Value::Int(a), Value::Int(b)) => {
            let (a, b) = (*a, *b);
            if matches!(op, Op::Div | Op::Mod) && b == 0 {
                return Value::Null;
            }
            let exact = match op {
                Op::Add => a.checked_add(b),
                Op::Sub => a.checked_sub(b),
                Op::Mul => a.checked_mul(b),
                Op::Div => a.checked_div(b),
                _ => a.checked_rem(b),
            };
            exact.map_or_else(
                || arithmetic(op, &Value::Float(a as f64), &Value::Float(b as f64)),
                Value::Int,
            )
        }
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            let as_f = |v: &Value| match v {
                Value::Int(i) => *i as f64,
                Value::Float(f) => *f,
                _ => 0.0,
            };
            let (a, b) = (as_f(l), as_f(r));
            if matches!(op, Op::Div | Op::Mod) && b == 0.0 {
                return Value::Null;
            }
            Value::Float(match op {
                Op::Add => a + b,
                Op::Sub => a - b,
                Op::Mul => a * b,
                Op::Div => a / b,
                _ => a % b,
            })
        }
        _ => Value::Null,
    }
}
