//! DynamoDB expressions: a tokenizer and recursive-descent parser for condition, filter,
//! key-condition, projection and update expressions, and their evaluation over items.
//!
//! Grammar (precedence low to high: OR, AND, NOT, then comparisons and functions):
//!
//! ```text
//! condition  := and ("OR" and)*
//! and        := not ("AND" not)*
//! not        := "NOT" not | primary
//! primary    := "(" condition ")" | function
//!             | operand comparator operand | operand "BETWEEN" operand "AND" operand
//!             | operand "IN" "(" operand ("," operand)* ")"
//! function   := attribute_exists(path) | attribute_not_exists(path)
//!             | attribute_type(path, value) | begins_with(operand, operand)
//!             | contains(operand, operand)
//! operand    := path | :value | size(path)
//! path       := name ("." name | "[" digits "]")*      name := identifier | #alias
//! update     := (SET set ("," set)* | REMOVE path ("," path)* | ADD path :v ("," ...)
//!              | DELETE path :v ("," ...))+
//! set        := path "=" value (("+" | "-") value)?
//! value      := operand | if_not_exists(path, value) | list_append(value, value)
//! projection := path ("," path)*
//! ```
//!
//! Names (`#n`) and values (`:v`) are resolved while parsing, so a missing one is a
//! parse error, as DynamoDB reports it.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use crate::number::Number;
use crate::value::{AttributeValue, Item};

/// A parse or evaluation error; the text is DynamoDB's ValidationException message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ExprError(pub String);

/// DynamoDB's own bounds on one expression string (bytes, as AWS counts them).
pub const MAX_EXPRESSION_BYTES: usize = 4096;
/// Operators and functions one expression may use.
pub const MAX_OPERATORS: usize = 300;
/// Operands on the right of one IN.
pub const MAX_IN_OPERANDS: usize = 100;
/// Steps in one document path (`a.b[1].c` has 4).
pub const MAX_PATH_DEPTH: usize = 32;
/// How deep the parser may recurse (parenthesised groups, nested functions). Every
/// level that is not a redundant pair of parentheses costs an operator, so no valid
/// expression goes deeper than [`MAX_OPERATORS`]; the bound keeps the stack safe before
/// the operators are counted.
pub const MAX_NESTING: usize = MAX_OPERATORS;

/// One step of a document path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    Name(String),
    Index(usize),
}

/// A document path: `a.b[2].c`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Path(pub Vec<Step>);

/// Something a condition compares.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Path(Path),
    Value(AttributeValue),
    Size(Path),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A condition (also a filter or key condition).
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    Compare(Operand, Cmp, Operand),
    Between(Operand, Operand, Operand),
    In(Operand, Vec<Operand>),
    Exists(Path),
    NotExists(Path),
    Type(Path, Operand),
    BeginsWith(Operand, Operand),
    Contains(Operand, Operand),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
}

/// The right side of a SET action.
#[derive(Debug, Clone, PartialEq)]
pub enum SetValue {
    Operand(Operand),
    IfNotExists(Path, Box<SetValue>),
    ListAppend(Box<SetValue>, Box<SetValue>),
    Plus(Box<SetValue>, Box<SetValue>),
    Minus(Box<SetValue>, Box<SetValue>),
}

/// One update action.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Set(Path, SetValue),
    Remove(Path),
    Add(Path, AttributeValue),
    Delete(Path, AttributeValue),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Name(String),
    Value(String),
    Int(usize),
    Sym(&'static str),
}

fn tokenize(kind: &str, text: &str) -> Result<Vec<Tok>, ExprError> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let word = |i: &mut usize| {
        let s = *i;
        while *i < b.len() && (b[*i].is_ascii_alphanumeric() || b[*i] == b'_') {
            *i += 1;
        }
        text[s..*i].to_owned()
    };
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let two = text.get(i..i + 2).unwrap_or("");
        let sym = match two {
            "<=" => Some("<="),
            ">=" => Some(">="),
            "<>" => Some("<>"),
            _ => None,
        };
        if let Some(s) = sym {
            out.push(Tok::Sym(s));
            i += 2;
            continue;
        }
        match c {
            b'(' | b')' | b'[' | b']' | b',' | b'.' | b'=' | b'<' | b'>' | b'+' | b'-' => {
                out.push(Tok::Sym(match c {
                    b'(' => "(",
                    b')' => ")",
                    b'[' => "[",
                    b']' => "]",
                    b',' => ",",
                    b'.' => ".",
                    b'=' => "=",
                    b'<' => "<",
                    b'>' => ">",
                    b'+' => "+",
                    _ => "-",
                }));
                i += 1;
            }
            b'#' => {
                i += 1;
                out.push(Tok::Name(format!("#{}", word(&mut i))));
            }
            b':' => {
                i += 1;
                out.push(Tok::Value(format!(":{}", word(&mut i))));
            }
            b'0'..=b'9' => {
                let w = word(&mut i);
                out.push(Tok::Int(w.parse().map_err(|_| {
                    ExprError(format!(
                        "Invalid {kind}: Syntax error; token: \"{w}\", near: \"{w}\""
                    ))
                })?));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => out.push(Tok::Ident(word(&mut i))),
            _ => {
                // `i` is on a char boundary (everything consumed so far is ASCII); the
                // text near it is taken by chars, never by a byte offset.
                let rest = text.get(i..).unwrap_or_default();
                let ch = rest.chars().next().unwrap_or('?');
                let near: String = rest.chars().take(9).collect();
                return Err(ExprError(format!(
                    "Invalid {kind}: Syntax error; token: \"{ch}\", near: \"{near}\""
                )));
            }
        }
    }
    Ok(out)
}

/// One step of a document path as written: a name not yet looked up.
#[derive(Debug, Clone)]
enum RawStep {
    Word(String),
    Alias(String),
    Index(usize),
}

/// An operand (or an update's value) as written, before names and values are looked up.
#[derive(Debug)]
enum Raw {
    Path(Vec<RawStep>),
    Value(String),
    Call(String, Vec<Raw>),
    /// `a + b` (true) or `a - b` (false), in update expressions.
    Arith(Box<Raw>, bool, Box<Raw>),
}

/// A condition as written.
#[derive(Debug)]
enum RawCond {
    Compare(Raw, Cmp, Raw),
    Between(Raw, Raw, Raw),
    In(Raw, Vec<Raw>),
    /// A function used as a condition (holds a [`Raw::Call`]).
    Call(Raw),
    And(Box<RawCond>, Box<RawCond>),
    Or(Box<RawCond>, Box<RawCond>),
    Not(Box<RawCond>),
}

/// One update action as written.
#[derive(Debug)]
enum RawAction {
    Set(Vec<RawStep>, Raw),
    Remove(Vec<RawStep>),
    Add(Vec<RawStep>, String),
    Delete(Vec<RawStep>, String),
}

/// An operand with its names and values looked up.
#[derive(Debug)]
enum Term {
    Path(Path),
    Value(AttributeValue),
    Call(String, Vec<Term>),
    Arith(Box<Term>, bool, Box<Term>),
}

/// Functions that are conditions themselves.
const CONDITION_FUNCTIONS: [&str; 5] = [
    "attribute_exists",
    "attribute_not_exists",
    "attribute_type",
    "begins_with",
    "contains",
];

/// The type names `attribute_type` accepts.
const TYPE_NAMES: [&str; 10] = ["S", "SS", "N", "NS", "B", "BS", "BOOL", "NULL", "L", "M"];

/// Parses one kind of expression with its name and value maps.
///
/// DynamoDB reports what is wrong with an expression in stages, and so does this parser:
/// first the syntax (with redundant parentheses and the operator count), then function
/// names, functions used in the wrong place, reserved words and (in updates) repeated
/// sections, each over the whole text; only then are names and values looked up and
/// operands checked, as [`Self::condition`], [`Self::update`] and [`Self::projection`]
/// describe.
#[derive(Debug)]
pub struct Parser<'a> {
    kind: &'static str,
    toks: Vec<Tok>,
    pos: usize,
    names: &'a HashMap<String, String>,
    values: &'a HashMap<String, AttributeValue>,
    /// Names and values the expression used, to report unused ones.
    pub used_names: std::collections::HashSet<String>,
    pub used_values: std::collections::HashSet<String>,
    /// Every document path the expression names, its names looked up.
    pub paths: Vec<Path>,
    /// Operators and functions seen so far (DynamoDB allows [`MAX_OPERATORS`]).
    ops: usize,
    /// Current recursion depth (bounded by [`MAX_NESTING`]).
    depth: usize,
    /// For each "(" token, the position of its ")" (usize::MAX when it has none).
    closing: Vec<usize>,
    /// Functions called, in the order of the text, and whether each stands as a condition.
    calls: Vec<(String, bool)>,
    /// Attribute names written as words (not `#aliases`), in the order of the text.
    words: Vec<String>,
    /// The first update section that appears twice.
    repeated: Option<String>,
}

fn is_kw(t: &Tok, kw: &str) -> bool {
    matches!(t, Tok::Ident(w) if w.eq_ignore_ascii_case(kw))
}

/// Where each "(" closes.
fn closing_parens(toks: &[Tok]) -> Vec<usize> {
    let mut out = vec![usize::MAX; toks.len()];
    let mut open = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::Sym("(") => open.push(i),
            Tok::Sym(")") => {
                if let Some(o) = open.pop() {
                    out[o] = i;
                }
            }
            _ => {}
        }
    }
    out
}

/// A path as DynamoDB prints it in messages: `[a, b, [1]]`.
fn show_path(p: &Path) -> String {
    let steps: Vec<String> =
        p.0.iter()
            .map(|s| match s {
                Step::Name(n) => n.clone(),
                Step::Index(i) => format!("[{i}]"),
            })
            .collect();
    format!("[{}]", steps.join(", "))
}

/// A scalar as DynamoDB prints it in messages: `{N:1}`, `{S:a}`.
fn show_value(v: &AttributeValue) -> String {
    use base64::Engine as _;
    let text = match v {
        AttributeValue::S(s) => s.clone(),
        AttributeValue::N(n) => n.to_string(),
        AttributeValue::B(b) => base64::engine::general_purpose::STANDARD.encode(b),
        AttributeValue::Bool(b) => b.to_string(),
        AttributeValue::Null => "true".into(),
        _ => "...".into(),
    };
    format!("{{{}:{text}}}", v.type_name())
}

/// Whether one path is the other or inside it.
fn overlap(a: &Path, b: &Path) -> bool {
    a.0.iter().zip(&b.0).all(|(x, y)| x == y)
}

/// Whether two paths take a name and an index at the same place: one treats as a map
/// what the other treats as a list.
fn conflict(a: &Path, b: &Path) -> bool {
    a.0.iter()
        .zip(&b.0)
        .find(|(x, y)| x != y)
        .is_some_and(|(x, y)| matches!(x, Step::Name(_)) != matches!(y, Step::Name(_)))
}

/// The size DynamoDB's `size` gives a value, or None for a type without one.
fn size_of(v: &AttributeValue) -> Option<usize> {
    Some(match v {
        AttributeValue::S(s) => s.chars().count(),
        AttributeValue::B(b) => b.len(),
        AttributeValue::L(l) => l.len(),
        AttributeValue::M(m) => m.len(),
        AttributeValue::Ss(v) => v.len(),
        AttributeValue::Ns(v) => v.len(),
        AttributeValue::Bs(v) => v.len(),
        _ => return None,
    })
}

/// How ADD and DELETE name a value's type in their messages.
fn long_type_name(v: &AttributeValue) -> &'static str {
    match v {
        AttributeValue::S(_) => "STRING",
        AttributeValue::N(_) => "NUMBER",
        AttributeValue::B(_) => "BINARY",
        AttributeValue::Bool(_) => "BOOLEAN",
        AttributeValue::Null => "NULL",
        AttributeValue::M(_) => "MAP",
        AttributeValue::L(_) => "LIST",
        AttributeValue::Ss(_) => "STRING_SET",
        AttributeValue::Ns(_) => "NUMBER_SET",
        AttributeValue::Bs(_) => "BINARY_SET",
    }
}

fn number(n: usize) -> AttributeValue {
    AttributeValue::N(Number::parse(&n.to_string()).unwrap_or_else(|_| Number::zero()))
}

impl<'a> Parser<'a> {
    pub fn new(
        kind: &'static str,
        text: &str,
        names: &'a HashMap<String, String>,
        values: &'a HashMap<String, AttributeValue>,
    ) -> Result<Self, ExprError> {
        if text.trim().is_empty() {
            return Err(ExprError(format!(
                "Invalid {kind}: The expression can not be empty;"
            )));
        }
        if text.len() > MAX_EXPRESSION_BYTES {
            return Err(ExprError(format!(
                "Invalid {kind}: Expression size has exceeded the maximum allowed size; expression size: {}",
                text.len()
            )));
        }
        let toks = tokenize(kind, text)?;
        Ok(Self {
            kind,
            closing: closing_parens(&toks),
            toks,
            pos: 0,
            names,
            values,
            used_names: Default::default(),
            used_values: Default::default(),
            paths: Vec::new(),
            ops: 0,
            depth: 0,
            calls: Vec::new(),
            words: Vec::new(),
            repeated: None,
        })
    }

    fn err(&self, what: impl std::fmt::Display) -> ExprError {
        ExprError(format!("Invalid {}: {what}", self.kind))
    }

    /// Counts one operator or function.
    fn op(&mut self) {
        self.ops += 1;
    }

    /// Enters one level of nesting, refusing to go deeper than [`MAX_NESTING`]. Past the
    /// bound the expression is invalid either way: too many operators, or (when the
    /// levels cost none) parentheses directly inside parentheses.
    fn enter(&mut self) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth <= MAX_NESTING {
            return Ok(());
        }
        Err(if self.ops > MAX_OPERATORS {
            self.too_many_operators()
        } else {
            self.redundant_parentheses()
        })
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn too_many_operators(&self) -> ExprError {
        self.err(format_args!(
            "The expression contains too many operators; operator count: {}",
            self.ops
        ))
    }

    fn redundant_parentheses(&self) -> ExprError {
        self.err("The expression has redundant parentheses;")
    }

    /// Opens the group whose "(" is the current token; a group that holds nothing but
    /// another group, `((…))`, is refused as DynamoDB refuses it.
    fn open_group(&mut self) -> Result<(), ExprError> {
        let (open, close) = (self.pos, self.closing[self.pos]);
        if close != usize::MAX
            && matches!(self.toks.get(open + 1), Some(Tok::Sym("(")))
            && self.closing.get(open + 1) == Some(&(close - 1))
        {
            return Err(self.redundant_parentheses());
        }
        self.pos += 1;
        self.enter()
    }

    /// The checks made once the whole text has parsed, before any name or value is
    /// looked up: the operator count, function names, functions in the wrong place,
    /// reserved words and repeated update sections, each in the order of the text.
    fn finish(&self) -> Result<(), ExprError> {
        self.end()?;
        if self.ops > MAX_OPERATORS {
            return Err(self.too_many_operators());
        }
        let update = self.kind == "UpdateExpression";
        let known = |f: &str| {
            if update {
                matches!(f, "if_not_exists" | "list_append" | "size")
            } else {
                f == "size" || CONDITION_FUNCTIONS.contains(&f)
            }
        };
        if let Some((f, _)) = self.calls.iter().find(|(f, _)| !known(f)) {
            return Err(self.err(format_args!("Invalid function name; function: {f}")));
        }
        if let Some((f, _)) = self
            .calls
            .iter()
            .find(|(f, as_cond)| CONDITION_FUNCTIONS.contains(&f.as_str()) != *as_cond)
        {
            return Err(self.err(format_args!(
                "The function is not allowed to be used this way in an expression; function: {f}"
            )));
        }
        if let Some(w) = self.words.iter().find(|w| crate::reserved::is_reserved(w)) {
            return Err(self.err(format_args!(
                "Attribute name is a reserved keyword; reserved keyword: {w}"
            )));
        }
        if let Some(s) = &self.repeated {
            return Err(self.err(format_args!(
                "The \"{s}\" section can only be used once in an update expression;"
            )));
        }
        Ok(())
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn syntax(&self) -> ExprError {
        match self.peek() {
            Some(t) => self.err(format_args!(
                "Syntax error; token: \"{}\", near: \"{}\"",
                show(t),
                self.toks[self.pos.saturating_sub(1)..(self.pos + 2).min(self.toks.len())]
                    .iter()
                    .map(show)
                    .collect::<Vec<_>>()
                    .join(" ")
            )),
            None => self.err(format_args!(
                "Syntax error; token: \"<EOF>\", near: \"{}\"",
                self.toks.last().map(show).unwrap_or_default()
            )),
        }
    }

    fn eat_sym(&mut self, s: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Sym(x)) if *x == s) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_sym(&mut self, s: &str) -> Result<(), ExprError> {
        if self.eat_sym(s) {
            Ok(())
        } else {
            Err(self.syntax())
        }
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.peek().is_some_and(|t| is_kw(t, kw)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn end(&self) -> Result<(), ExprError> {
        if self.pos == self.toks.len() {
            Ok(())
        } else {
            Err(self.syntax())
        }
    }

    /// Whether `w` is a word of this kind of expression's grammar (never a name).
    fn is_keyword(&self, w: &str) -> bool {
        let words: &[&str] = match self.kind {
            "UpdateExpression" => &["SET", "REMOVE", "ADD", "DELETE"],
            "ProjectionExpression" => &[],
            _ => &["AND", "OR", "NOT", "BETWEEN", "IN"],
        };
        words.iter().any(|k| w.eq_ignore_ascii_case(k))
    }

    fn raw_name(&mut self) -> Result<RawStep, ExprError> {
        match self.peek().cloned() {
            Some(Tok::Ident(w)) if !self.is_keyword(&w) => {
                self.pos += 1;
                self.words.push(w.clone());
                Ok(RawStep::Word(w))
            }
            Some(Tok::Name(n)) => {
                self.pos += 1;
                Ok(RawStep::Alias(n))
            }
            _ => Err(self.syntax()),
        }
    }

    fn raw_path(&mut self) -> Result<Vec<RawStep>, ExprError> {
        let mut steps = vec![self.raw_name()?];
        loop {
            if steps.len() > MAX_PATH_DEPTH && !matches!(self.peek(), Some(Tok::Sym("." | "["))) {
                return Err(self.err(format_args!(
                    "The document path has too many nesting levels; nesting levels: {}",
                    steps.len()
                )));
            }
            if self.eat_sym(".") {
                steps.push(self.raw_name()?);
            } else if self.eat_sym("[") {
                match self.peek().cloned() {
                    Some(Tok::Int(n)) => {
                        self.pos += 1;
                        steps.push(RawStep::Index(n));
                    }
                    _ => return Err(self.syntax()),
                }
                self.expect_sym("]")?;
            } else {
                return Ok(steps);
            }
        }
    }

    /// An operand: a path, a `:value`, a function call, or one of those in parentheses.
    /// In updates (`arith`) a parenthesised operand may be a sum or difference.
    fn term(&mut self, arith: bool) -> Result<Raw, ExprError> {
        match self.peek().cloned() {
            Some(Tok::Sym("(")) => {
                self.open_group()?;
                let inner = if arith {
                    self.sum()?
                } else {
                    self.term(false)?
                };
                self.expect_sym(")")?;
                self.leave();
                Ok(inner)
            }
            Some(Tok::Value(v)) => {
                self.pos += 1;
                Ok(Raw::Value(v))
            }
            Some(Tok::Ident(f))
                if self.toks.get(self.pos + 1) == Some(&Tok::Sym("(")) && !self.is_keyword(&f) =>
            {
                self.pos += 2;
                self.op();
                self.enter()?;
                self.calls.push((f.clone(), false));
                let mut args = vec![self.arg(arith)?];
                while self.eat_sym(",") {
                    args.push(self.arg(arith)?);
                }
                self.expect_sym(")")?;
                self.leave();
                Ok(Raw::Call(f, args))
            }
            _ => Ok(Raw::Path(self.raw_path()?)),
        }
    }

    fn arg(&mut self, arith: bool) -> Result<Raw, ExprError> {
        if arith { self.sum() } else { self.term(false) }
    }

    /// An update's value: an operand, or two joined by `+` or `-`.
    fn sum(&mut self) -> Result<Raw, ExprError> {
        let first = self.term(true)?;
        let plus = if self.eat_sym("+") {
            true
        } else if self.eat_sym("-") {
            false
        } else {
            return Ok(first);
        };
        self.op();
        let second = self.term(true)?;
        Ok(Raw::Arith(Box::new(first), plus, Box::new(second)))
    }

    /// Whether the "(" at `i` opens a group of conditions rather than an operand: an
    /// operand's group is followed by a comparison, BETWEEN or IN.
    fn opens_condition(&self, i: usize) -> bool {
        let Some(next) = self.closing.get(i).and_then(|&c| c.checked_add(1)) else {
            return true;
        };
        !matches!(
            self.toks.get(next),
            Some(Tok::Sym("=" | "<>" | "<" | "<=" | ">" | ">="))
        ) && !self
            .toks
            .get(next)
            .is_some_and(|t| is_kw(t, "BETWEEN") || is_kw(t, "IN"))
    }

    fn name_of(&mut self, step: &RawStep) -> Result<Step, ExprError> {
        Ok(match step {
            RawStep::Word(w) => Step::Name(w.clone()),
            RawStep::Index(i) => Step::Index(*i),
            RawStep::Alias(n) => {
                self.used_names.insert(n.clone());
                match self.names.get(n) {
                    Some(v) => Step::Name(v.clone()),
                    None => {
                        return Err(self.err(format_args!(
                            "An expression attribute name used in the document path is not defined; attribute name: {n}"
                        )));
                    }
                }
            }
        })
    }

    fn path_of(&mut self, raw: &[RawStep]) -> Result<Path, ExprError> {
        let p = Path(
            raw.iter()
                .map(|s| self.name_of(s))
                .collect::<Result<_, _>>()?,
        );
        self.paths.push(p.clone());
        Ok(p)
    }

    fn value(&mut self, v: &str) -> Result<AttributeValue, ExprError> {
        self.used_values.insert(v.to_owned());
        match self.values.get(v) {
            Some(x) => Ok(x.clone()),
            None => Err(self.err(format_args!(
                "An expression attribute value used in expression is not defined; attribute value: {v}"
            ))),
        }
    }

    /// Looks up the names and values of an operand, in the order of the text.
    fn term_of(&mut self, raw: &Raw) -> Result<Term, ExprError> {
        Ok(match raw {
            Raw::Path(p) => Term::Path(self.path_of(p)?),
            Raw::Value(v) => Term::Value(self.value(v)?),
            Raw::Call(f, args) => Term::Call(
                f.clone(),
                args.iter()
                    .map(|a| self.term_of(a))
                    .collect::<Result<_, _>>()?,
            ),
            Raw::Arith(a, plus, b) => Term::Arith(
                Box::new(self.term_of(a)?),
                *plus,
                Box::new(self.term_of(b)?),
            ),
        })
    }

    fn arity(&self, f: &str, args: usize, wanted: usize) -> Result<(), ExprError> {
        if args == wanted {
            return Ok(());
        }
        Err(self.err(format_args!(
            "Incorrect number of operands for operator or function; operator or function: {f}, number of operands: {args}"
        )))
    }

    fn needs_path(&self, f: &str) -> ExprError {
        self.err(format_args!(
            "Operator or function requires a document path; operator or function: {f}"
        ))
    }

    fn operand_type(&self, f: &str, t: &str) -> ExprError {
        self.err(format_args!(
            "Incorrect operand type for operator or function; operator or function: {f}, operand type: {t}"
        ))
    }

    /// `size` of an operand: of a path when evaluated, of a value at once.
    fn size(&self, args: Vec<Operand>) -> Result<Operand, ExprError> {
        self.arity("size", args.len(), 1)?;
        match args.into_iter().next() {
            Some(Operand::Path(p)) => Ok(Operand::Size(p)),
            Some(Operand::Value(v)) => match size_of(&v) {
                Some(n) => Ok(Operand::Value(number(n))),
                None => Err(self.operand_type("size", v.type_name())),
            },
            _ => Err(self.operand_type("size", "N")),
        }
    }

    /// A condition's operand, its names and values looked up and `size` checked.
    fn operand_of(&mut self, raw: &Raw) -> Result<Operand, ExprError> {
        match raw {
            Raw::Path(p) => Ok(Operand::Path(self.path_of(p)?)),
            Raw::Value(v) => Ok(Operand::Value(self.value(v)?)),
            Raw::Call(f, args) => {
                let args = args
                    .iter()
                    .map(|a| self.operand_of(a))
                    .collect::<Result<Vec<_>, _>>()?;
                if f != "size" {
                    return Err(self.err(format_args!(
                        "The function is not allowed to be used this way in an expression; function: {f}"
                    )));
                }
                self.size(args)
            }
            Raw::Arith(..) => Err(self.syntax()),
        }
    }

    /// DynamoDB refuses an operator whose first operand is a path repeated among the others.
    fn distinct(&self, op: &str, first: &Operand, rest: &[&Operand]) -> Result<(), ExprError> {
        if let Operand::Path(p) = first
            && rest.iter().any(|o| matches!(o, Operand::Path(q) if q == p))
        {
            return Err(self.err(format_args!(
                "The first operand must be distinct from the remaining operands for this operator or function; operator: {op}, first operand: {}",
                show_path(p)
            )));
        }
        Ok(())
    }

    /// BETWEEN's bounds, when both are values: of one type, the lower not above the upper.
    fn bounds(&self, lo: &Operand, hi: &Operand) -> Result<(), ExprError> {
        let (Operand::Value(l), Operand::Value(h)) = (lo, hi) else {
            return Ok(());
        };
        let problem = if l.type_name() != h.type_name() {
            "requires same data type for lower and upper bounds"
        } else if compare(l, h) == Some(Ordering::Greater) {
            "requires upper bound to be greater than or equal to lower bound"
        } else {
            return Ok(());
        };
        Err(self.err(format_args!(
            "The BETWEEN operator {problem}; lower bound operand: AttributeValue: {}, upper bound operand: AttributeValue: {}",
            show_value(l),
            show_value(h)
        )))
    }

    /// A function standing as a condition, with its operands checked.
    fn function_of(&mut self, f: &str, args: &[Raw]) -> Result<Cond, ExprError> {
        let args = args
            .iter()
            .map(|a| self.operand_of(a))
            .collect::<Result<Vec<_>, _>>()?;
        let wanted = match f {
            "attribute_exists" | "attribute_not_exists" => 1,
            _ => 2,
        };
        self.arity(f, args.len(), wanted)?;
        let mut args = args.into_iter();
        let (Some(first), second) = (args.next(), args.next()) else {
            return Err(self.syntax());
        };
        let scalar = |o: &Operand, ok: &dyn Fn(&AttributeValue) -> bool| match o {
            Operand::Value(v) if !ok(v) => Err(self.operand_type(f, v.type_name())),
            Operand::Size(_) if !ok(&number(0)) => Err(self.operand_type(f, "N")),
            _ => Ok(()),
        };
        match (f, second) {
            ("attribute_exists" | "attribute_not_exists", None) => match first {
                Operand::Path(p) if f == "attribute_exists" => Ok(Cond::Exists(p)),
                Operand::Path(p) => Ok(Cond::NotExists(p)),
                _ => Err(self.needs_path(f)),
            },
            ("attribute_type", Some(t)) => {
                let Operand::Path(p) = first else {
                    return Err(self.needs_path(f));
                };
                scalar(&t, &|v| matches!(v, AttributeValue::S(_)))?;
                if let Operand::Value(AttributeValue::S(name)) = &t
                    && !TYPE_NAMES.contains(&name.as_str())
                {
                    return Err(self.err(format_args!(
                        "Invalid attribute type name found; type: {name}, valid types: {{{}}}",
                        TYPE_NAMES.join(",")
                    )));
                }
                let first = Operand::Path(p);
                self.distinct(f, &first, &[&t])?;
                let Operand::Path(p) = first else {
                    return Err(self.needs_path(f));
                };
                Ok(Cond::Type(p, t))
            }
            ("begins_with", Some(b)) => {
                let text =
                    |v: &AttributeValue| matches!(v, AttributeValue::S(_) | AttributeValue::B(_));
                scalar(&first, &text)?;
                scalar(&b, &text)?;
                self.distinct(f, &first, &[&b])?;
                Ok(Cond::BeginsWith(first, b))
            }
            ("contains", Some(b)) => {
                self.distinct(f, &first, &[&b])?;
                Ok(Cond::Contains(first, b))
            }
            _ => Err(self.err(format_args!("Invalid function name; function: {f}"))),
        }
    }

    /// Looks up and checks a condition, operand by operand in the order of the text: the
    /// first undefined name or value, wrong operand or repeated path is the one reported.
    fn cond_of(&mut self, raw: &RawCond) -> Result<Cond, ExprError> {
        Ok(match raw {
            RawCond::And(a, b) => Cond::And(Box::new(self.cond_of(a)?), Box::new(self.cond_of(b)?)),
            RawCond::Or(a, b) => Cond::Or(Box::new(self.cond_of(a)?), Box::new(self.cond_of(b)?)),
            RawCond::Not(a) => Cond::Not(Box::new(self.cond_of(a)?)),
            RawCond::Compare(a, op, b) => {
                let (x, y) = (self.operand_of(a)?, self.operand_of(b)?);
                let sym = match op {
                    Cmp::Eq => "=",
                    Cmp::Ne => "<>",
                    Cmp::Lt => "<",
                    Cmp::Le => "<=",
                    Cmp::Gt => ">",
                    Cmp::Ge => ">=",
                };
                self.distinct(sym, &x, &[&y])?;
                Cond::Compare(x, *op, y)
            }
            RawCond::Between(a, lo, hi) => {
                let (x, l, h) = (
                    self.operand_of(a)?,
                    self.operand_of(lo)?,
                    self.operand_of(hi)?,
                );
                self.distinct("BETWEEN", &x, &[&l, &h])?;
                self.bounds(&l, &h)?;
                Cond::Between(x, l, h)
            }
            RawCond::In(a, list) => {
                let x = self.operand_of(a)?;
                let list = list
                    .iter()
                    .map(|o| self.operand_of(o))
                    .collect::<Result<Vec<_>, _>>()?;
                self.distinct("IN", &x, &list.iter().collect::<Vec<_>>())?;
                Cond::In(x, list)
            }
            RawCond::Call(Raw::Call(f, args)) => self.function_of(f, args)?,
            RawCond::Call(_) => return Err(self.syntax()),
        })
    }

    /// A whole condition expression.
    pub fn condition(mut self) -> Result<(Cond, Self), ExprError> {
        let raw = self.or()?;
        self.finish()?;
        let c = self.cond_of(&raw)?;
        Ok((c, self))
    }

    /// `condition`: OR of ANDs of NOTs of primaries and parenthesised groups, parsed
    /// with explicit stacks (operator precedence), so no nesting costs the thread's stack.
    fn or(&mut self) -> Result<RawCond, ExprError> {
        let mut pending: Vec<Pending> = Vec::new();
        let mut out: Vec<RawCond> = Vec::new();
        let mut open_groups = 0usize;
        loop {
            // Where an operand is expected: NOTs and opening parentheses, then a primary.
            loop {
                if self.eat_kw("NOT") {
                    self.op();
                    pending.push(Pending::Not);
                } else if matches!(self.peek(), Some(Tok::Sym("(")))
                    && self.opens_condition(self.pos)
                {
                    self.open_group()?;
                    open_groups += 1;
                    pending.push(Pending::Open);
                } else {
                    break;
                }
            }
            out.push(self.primary()?);
            // After an operand: closing parentheses, then AND, OR or the end.
            while open_groups > 0 && self.eat_sym(")") {
                loop {
                    match pending.pop() {
                        Some(Pending::Open) => break,
                        Some(p) => reduce(p, &mut out),
                        None => return Err(self.syntax()),
                    }
                }
                open_groups -= 1;
                self.leave();
            }
            if self.eat_kw("AND") {
                self.op();
                while matches!(pending.last(), Some(Pending::Not | Pending::And)) {
                    reduce(pending.pop().unwrap_or(Pending::Not), &mut out);
                }
                pending.push(Pending::And);
            } else if self.eat_kw("OR") {
                self.op();
                while matches!(
                    pending.last(),
                    Some(Pending::Not | Pending::And | Pending::Or)
                ) {
                    reduce(pending.pop().unwrap_or(Pending::Not), &mut out);
                }
                pending.push(Pending::Or);
            } else {
                break;
            }
        }
        if open_groups > 0 {
            // A group left open: the ")" it needs is missing here.
            return Err(self.syntax());
        }
        while let Some(p) = pending.pop() {
            reduce(p, &mut out);
        }
        match (out.pop(), out.is_empty()) {
            (Some(c), true) => Ok(c),
            _ => Err(self.syntax()),
        }
    }

    /// A comparison or a function (NOT and parenthesised conditions are [`Self::or`]'s).
    fn primary(&mut self) -> Result<RawCond, ExprError> {
        let first_call = self.calls.len();
        let left = self.term(false)?;
        if self.eat_kw("BETWEEN") {
            self.op();
            let lo = self.term(false)?;
            if !self.eat_kw("AND") {
                return Err(self.syntax());
            }
            return Ok(RawCond::Between(left, lo, self.term(false)?));
        }
        if self.eat_kw("IN") {
            self.op();
            self.expect_sym("(")?;
            let mut list = vec![self.term(false)?];
            while self.eat_sym(",") {
                list.push(self.term(false)?);
            }
            self.expect_sym(")")?;
            if list.len() > MAX_IN_OPERANDS {
                return Err(self.err(format_args!(
                    "The IN operator is provided with too many operands; number of operands: {}",
                    list.len()
                )));
            }
            return Ok(RawCond::In(left, list));
        }
        let op = match self.peek() {
            Some(Tok::Sym("=")) => Cmp::Eq,
            Some(Tok::Sym("<>")) => Cmp::Ne,
            Some(Tok::Sym("<")) => Cmp::Lt,
            Some(Tok::Sym("<=")) => Cmp::Le,
            Some(Tok::Sym(">")) => Cmp::Gt,
            Some(Tok::Sym(">=")) => Cmp::Ge,
            _ if matches!(left, Raw::Call(..)) => {
                // A function standing alone is a condition.
                if let Some(c) = self.calls.get_mut(first_call) {
                    c.1 = true;
                }
                return Ok(RawCond::Call(left));
            }
            _ => return Err(self.syntax()),
        };
        self.pos += 1;
        self.op();
        Ok(RawCond::Compare(left, op, self.term(false)?))
    }

    /// Paths of one expression must neither overlap (one inside another) nor conflict
    /// (one indexing a list where the other names a map member); overlaps are reported
    /// first, each pair as path one (earlier in the text) and path two.
    fn distinct_paths(&self, paths: &[&Path]) -> Result<(), ExprError> {
        for (what, clash) in [
            ("overlap", overlap as fn(&Path, &Path) -> bool),
            ("conflict", conflict),
        ] {
            for (j, b) in paths.iter().enumerate() {
                if let Some(a) = paths[..j].iter().find(|a| clash(a, b)) {
                    return Err(self.err(format_args!(
                        "Two document paths {what} with each other; must remove or rewrite one of these paths; path one: {}, path two: {}",
                        show_path(a),
                        show_path(b)
                    )));
                }
            }
        }
        Ok(())
    }

    /// A projection expression: syntax and reserved words, then names in the order of the
    /// text, then overlapping and conflicting paths.
    pub fn projection(mut self) -> Result<(Vec<Path>, Self), ExprError> {
        let mut raw = vec![self.raw_path()?];
        while self.eat_sym(",") {
            raw.push(self.raw_path()?);
        }
        self.finish()?;
        let paths = raw
            .iter()
            .map(|p| self.path_of(p))
            .collect::<Result<Vec<_>, _>>()?;
        self.distinct_paths(&paths.iter().collect::<Vec<_>>())?;
        Ok((paths, self))
    }

    /// A SET value, checked operand by operand (innermost first).
    fn set_value_of(&self, t: Term) -> Result<SetValue, ExprError> {
        Ok(match t {
            Term::Path(p) => SetValue::Operand(Operand::Path(p)),
            Term::Value(v) => SetValue::Operand(Operand::Value(v)),
            Term::Arith(a, plus, b) => {
                let (x, y) = (self.set_value_of(*a)?, self.set_value_of(*b)?);
                let sym = if plus { "+" } else { "-" };
                for v in [&x, &y] {
                    if let SetValue::Operand(Operand::Value(v)) = v
                        && !matches!(v, AttributeValue::N(_))
                    {
                        return Err(self.operand_type(sym, v.type_name()));
                    }
                }
                if plus {
                    SetValue::Plus(Box::new(x), Box::new(y))
                } else {
                    SetValue::Minus(Box::new(x), Box::new(y))
                }
            }
            Term::Call(f, args) => {
                let args = args
                    .into_iter()
                    .map(|a| self.set_value_of(a))
                    .collect::<Result<Vec<_>, _>>()?;
                if f == "size" {
                    let args = args
                        .into_iter()
                        .map(|a| match a {
                            SetValue::Operand(o) => Ok(o),
                            _ => Err(self.needs_path("size")),
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    return Ok(SetValue::Operand(self.size(args)?));
                }
                self.arity(&f, args.len(), 2)?;
                let mut args = args.into_iter();
                let (Some(a), Some(b)) = (args.next(), args.next()) else {
                    return Err(self.syntax());
                };
                match f.as_str() {
                    "if_not_exists" => match a {
                        SetValue::Operand(Operand::Path(p)) => {
                            SetValue::IfNotExists(p, Box::new(b))
                        }
                        _ => return Err(self.needs_path(&f)),
                    },
                    "list_append" => {
                        for v in [&a, &b] {
                            if let SetValue::Operand(Operand::Value(v)) = v
                                && !matches!(v, AttributeValue::L(_))
                            {
                                return Err(self.operand_type(&f, v.type_name()));
                            }
                        }
                        SetValue::ListAppend(Box::new(a), Box::new(b))
                    }
                    _ => {
                        return Err(self.err(format_args!("Invalid function name; function: {f}")));
                    }
                }
            }
        })
    }

    /// An update expression. After the syntax and the whole-text checks, names and values
    /// are looked up in the order of the text, then the paths are checked for overlaps and
    /// conflicts, then ADD's and DELETE's values for their types, then SET's values.
    pub fn update(mut self) -> Result<(Vec<Action>, Self), ExprError> {
        let mut raw = Vec::new();
        let mut seen = std::collections::HashSet::new();
        while self.pos < self.toks.len() {
            let clause = match self.peek() {
                Some(Tok::Ident(w)) => w.to_ascii_uppercase(),
                _ => return Err(self.syntax()),
            };
            if !matches!(clause.as_str(), "SET" | "REMOVE" | "ADD" | "DELETE") {
                return Err(self.syntax());
            }
            if !seen.insert(clause.clone()) && self.repeated.is_none() {
                self.repeated = Some(clause.clone());
            }
            self.pos += 1;
            loop {
                let path = self.raw_path()?;
                raw.push(match clause.as_str() {
                    "SET" => {
                        self.expect_sym("=")?;
                        RawAction::Set(path, self.sum()?)
                    }
                    "REMOVE" => RawAction::Remove(path),
                    other => {
                        let Some(Tok::Value(v)) = self.peek().cloned() else {
                            return Err(self.syntax());
                        };
                        self.pos += 1;
                        if other == "ADD" {
                            RawAction::Add(path, v)
                        } else {
                            RawAction::Delete(path, v)
                        }
                    }
                });
                if !self.eat_sym(",") {
                    break;
                }
            }
        }
        if raw.is_empty() {
            return Err(self.syntax());
        }
        self.finish()?;
        // Names and values, in the order of the text.
        enum Looked {
            Set(Path, Term),
            Remove(Path),
            Add(Path, AttributeValue),
            Delete(Path, AttributeValue),
        }
        let mut looked = Vec::with_capacity(raw.len());
        for a in &raw {
            looked.push(match a {
                RawAction::Set(p, v) => {
                    let p = self.path_of(p)?;
                    Looked::Set(p, self.term_of(v)?)
                }
                RawAction::Remove(p) => Looked::Remove(self.path_of(p)?),
                RawAction::Add(p, v) => {
                    let p = self.path_of(p)?;
                    Looked::Add(p, self.value(v)?)
                }
                RawAction::Delete(p, v) => {
                    let p = self.path_of(p)?;
                    Looked::Delete(p, self.value(v)?)
                }
            });
        }
        let paths: Vec<&Path> = looked
            .iter()
            .map(|a| match a {
                Looked::Set(p, _)
                | Looked::Remove(p)
                | Looked::Add(p, _)
                | Looked::Delete(p, _) => p,
            })
            .collect();
        self.distinct_paths(&paths)?;
        for a in &looked {
            let (op, v, ok) = match a {
                Looked::Add(_, v) => (
                    "ADD",
                    v,
                    matches!(
                        v,
                        AttributeValue::N(_)
                            | AttributeValue::Ss(_)
                            | AttributeValue::Ns(_)
                            | AttributeValue::Bs(_)
                    ),
                ),
                Looked::Delete(_, v) => (
                    "DELETE",
                    v,
                    matches!(
                        v,
                        AttributeValue::Ss(_) | AttributeValue::Ns(_) | AttributeValue::Bs(_)
                    ),
                ),
                _ => continue,
            };
            if !ok {
                return Err(self.err(format_args!(
                    "Incorrect operand type for operator or function; operator: {op}, operand type: {}",
                    long_type_name(v)
                )));
            }
        }
        let mut actions = Vec::with_capacity(looked.len());
        for a in looked {
            actions.push(match a {
                Looked::Set(p, v) => Action::Set(p, self.set_value_of(v)?),
                Looked::Remove(p) => Action::Remove(p),
                Looked::Add(p, v) => Action::Add(p, v),
                Looked::Delete(p, v) => Action::Delete(p, v),
            });
        }
        Ok((actions, self))
    }
}

/// An operator of the condition parser waiting for its operands.
#[derive(Debug)]
enum Pending {
    /// An opening parenthesis.
    Open,
    Not,
    And,
    Or,
}

/// Applies one pending operator to the operands parsed so far.
fn reduce(p: Pending, out: &mut Vec<RawCond>) {
    match p {
        Pending::Open => {}
        Pending::Not => {
            if let Some(x) = out.pop() {
                out.push(RawCond::Not(Box::new(x)));
            }
        }
        Pending::And | Pending::Or => {
            if let (Some(b), Some(a)) = (out.pop(), out.pop()) {
                out.push(if matches!(p, Pending::And) {
                    RawCond::And(Box::new(a), Box::new(b))
                } else {
                    RawCond::Or(Box::new(a), Box::new(b))
                });
            }
        }
    }
}

fn show(t: &Tok) -> String {
    match t {
        Tok::Ident(s) | Tok::Name(s) | Tok::Value(s) => s.clone(),
        Tok::Int(n) => n.to_string(),
        Tok::Sym(s) => (*s).to_owned(),
    }
}

/// The value at `path` in `item`.
pub fn resolve<'i>(item: &'i Item, path: &Path) -> Option<&'i AttributeValue> {
    let mut steps = path.0.iter();
    let Some(Step::Name(first)) = steps.next() else {
        return None;
    };
    let mut cur = item.get(first)?;
    for s in steps {
        cur = match (s, cur) {
            (Step::Name(n), AttributeValue::M(m)) => m.get(n)?,
            (Step::Index(i), AttributeValue::L(l)) => l.get(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn operand_value(item: &Item, o: &Operand) -> Option<AttributeValue> {
    match o {
        Operand::Path(p) => resolve(item, p).cloned(),
        Operand::Value(v) => Some(v.clone()),
        Operand::Size(p) => size_of(resolve(item, p)?).map(number),
    }
}

/// Order of two values of the same scalar type (N, S or B); None otherwise.
pub fn compare(a: &AttributeValue, b: &AttributeValue) -> Option<Ordering> {
    match (a, b) {
        (AttributeValue::N(x), AttributeValue::N(y)) => Some(x.cmp(y)),
        (AttributeValue::S(x), AttributeValue::S(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (AttributeValue::B(x), AttributeValue::B(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn equal(a: &AttributeValue, b: &AttributeValue) -> bool {
    match (a, b) {
        (AttributeValue::Ss(x), AttributeValue::Ss(y)) => same_set(x, y),
        (AttributeValue::Ns(x), AttributeValue::Ns(y)) => same_set(x, y),
        (AttributeValue::Bs(x), AttributeValue::Bs(y)) => same_set(x, y),
        _ => a == b,
    }
}

fn same_set<T: PartialEq>(x: &[T], y: &[T]) -> bool {
    x.len() == y.len() && x.iter().all(|v| y.contains(v))
}

/// Whether `item` satisfies `cond`. AND, OR and NOT are walked with an explicit stack,
/// so no condition tree, however deep, can overflow the thread's stack.
pub fn eval(item: &Item, cond: &Cond) -> bool {
    /// Work left to do: a node to evaluate, or what to do with the value just computed.
    enum Work<'c> {
        Eval(&'c Cond),
        Negate,
        /// Evaluate this right side if the left side was true.
        AndThen(&'c Cond),
        /// Evaluate this right side if the left side was false.
        OrElse(&'c Cond),
    }
    let mut stack = vec![Work::Eval(cond)];
    let mut value = false;
    while let Some(w) = stack.pop() {
        match w {
            Work::Eval(Cond::And(a, b)) => {
                stack.push(Work::AndThen(b));
                stack.push(Work::Eval(a));
            }
            Work::Eval(Cond::Or(a, b)) => {
                stack.push(Work::OrElse(b));
                stack.push(Work::Eval(a));
            }
            Work::Eval(Cond::Not(a)) => {
                stack.push(Work::Negate);
                stack.push(Work::Eval(a));
            }
            Work::Eval(leaf) => value = eval_leaf(item, leaf),
            Work::Negate => value = !value,
            Work::AndThen(b) => {
                if value {
                    stack.push(Work::Eval(b));
                }
            }
            Work::OrElse(b) => {
                if !value {
                    stack.push(Work::Eval(b));
                }
            }
        }
    }
    value
}

/// One comparison or function (not AND, OR or NOT).
fn eval_leaf(item: &Item, cond: &Cond) -> bool {
    match cond {
        Cond::Compare(a, op, b) => {
            let (Some(x), Some(y)) = (operand_value(item, a), operand_value(item, b)) else {
                return false;
            };
            match op {
                Cmp::Eq => equal(&x, &y),
                Cmp::Ne => !equal(&x, &y),
                _ => compare(&x, &y).is_some_and(|o| match op {
                    Cmp::Lt => o == Ordering::Less,
                    Cmp::Le => o != Ordering::Greater,
                    Cmp::Gt => o == Ordering::Greater,
                    _ => o != Ordering::Less,
                }),
            }
        }
        Cond::Between(a, lo, hi) => {
            let (Some(x), Some(l), Some(h)) = (
                operand_value(item, a),
                operand_value(item, lo),
                operand_value(item, hi),
            ) else {
                return false;
            };
            compare(&x, &l).is_some_and(|o| o != Ordering::Less)
                && compare(&x, &h).is_some_and(|o| o != Ordering::Greater)
        }
        Cond::In(a, list) => operand_value(item, a).is_some_and(|x| {
            list.iter()
                .any(|o| operand_value(item, o).is_some_and(|y| equal(&x, &y)))
        }),
        Cond::Exists(p) => resolve(item, p).is_some(),
        Cond::NotExists(p) => resolve(item, p).is_none(),
        Cond::Type(p, t) => match (resolve(item, p), operand_value(item, t)) {
            (Some(v), Some(AttributeValue::S(t))) => v.type_name() == t,
            _ => false,
        },
        Cond::BeginsWith(a, b) => match (operand_value(item, a), operand_value(item, b)) {
            (Some(AttributeValue::S(x)), Some(AttributeValue::S(y))) => x.starts_with(&y),
            (Some(AttributeValue::B(x)), Some(AttributeValue::B(y))) => x.starts_with(&y),
            _ => false,
        },
        Cond::Contains(a, b) => match (operand_value(item, a), operand_value(item, b)) {
            (Some(AttributeValue::S(x)), Some(AttributeValue::S(y))) => x.contains(&y),
            (Some(AttributeValue::B(x)), Some(AttributeValue::B(y))) => {
                y.is_empty() || x.windows(y.len()).any(|w| w == y.as_ref())
            }
            (Some(AttributeValue::Ss(x)), Some(AttributeValue::S(y))) => x.contains(&y),
            (Some(AttributeValue::Ns(x)), Some(AttributeValue::N(y))) => x.contains(&y),
            (Some(AttributeValue::Bs(x)), Some(AttributeValue::B(y))) => x.contains(&y),
            (Some(AttributeValue::L(x)), Some(y)) => x.iter().any(|v| equal(v, &y)),
            _ => false,
        },
        Cond::And(..) | Cond::Or(..) | Cond::Not(..) => eval(item, cond),
    }
}

/// What a projection keeps of one value: all of it, or some of its members (of a map)
/// or elements (of a list).
#[derive(Debug, Default)]
struct Keep {
    all: bool,
    members: BTreeMap<String, Keep>,
    elements: BTreeMap<usize, Keep>,
}

impl Keep {
    fn of(paths: &[Path]) -> Self {
        let mut root = Keep::default();
        for p in paths {
            let mut node = &mut root;
            for s in &p.0 {
                node = match s {
                    Step::Name(n) => node.members.entry(n.clone()).or_default(),
                    Step::Index(i) => node.elements.entry(*i).or_default(),
                };
            }
            node.all = true;
        }
        root
    }

    /// The part of `v` kept, if any. List elements keep their order and close up, as
    /// DynamoDB returns them; the depth is a path's, at most [`MAX_PATH_DEPTH`].
    fn apply(&self, v: &AttributeValue) -> Option<AttributeValue> {
        if self.all {
            return Some(v.clone());
        }
        match v {
            AttributeValue::M(m) => {
                let kept: BTreeMap<String, AttributeValue> = self
                    .members
                    .iter()
                    .filter_map(|(n, k)| Some((n.clone(), k.apply(m.get(n)?)?)))
                    .collect();
                (!kept.is_empty()).then_some(AttributeValue::M(kept))
            }
            AttributeValue::L(l) => {
                let kept: Vec<AttributeValue> = self
                    .elements
                    .iter()
                    .filter_map(|(i, k)| k.apply(l.get(*i)?))
                    .collect();
                (!kept.is_empty()).then_some(AttributeValue::L(kept))
            }
            _ => None,
        }
    }
}

/// The item reduced to the projected paths.
pub fn project(item: &Item, paths: &[Path]) -> Item {
    Keep::of(paths)
        .members
        .iter()
        .filter_map(|(n, k)| Some((n.clone(), k.apply(item.get(n)?)?)))
        .collect()
}

fn set_value(item: &Item, v: &SetValue) -> Result<AttributeValue, ExprError> {
    set_value_at(item, v, 0)
}

/// The error for an operand of the wrong type met while applying an update.
pub fn wrong_type() -> ExprError {
    ExprError("An operand in the update expression has an incorrect data type".into())
}

/// A SET value; `depth` bounds the recursion (the parser already keeps trees within
/// [`MAX_NESTING`], this holds for trees built any other way).
fn set_value_at(item: &Item, v: &SetValue, depth: usize) -> Result<AttributeValue, ExprError> {
    if depth > MAX_NESTING {
        return Err(ExprError(format!(
            "Invalid UpdateExpression: The expression contains too many operators; operator count: {depth}"
        )));
    }
    let set_value = |item: &Item, v: &SetValue| set_value_at(item, v, depth + 1);
    let missing = || {
        ExprError(
            "The provided expression refers to an attribute that does not exist in the item".into(),
        )
    };
    Ok(match v {
        SetValue::Operand(o) => operand_value(item, o).ok_or_else(missing)?,
        SetValue::IfNotExists(p, d) => match resolve(item, p) {
            Some(x) => x.clone(),
            None => set_value(item, d)?,
        },
        SetValue::ListAppend(a, b) => match (set_value(item, a)?, set_value(item, b)?) {
            (AttributeValue::L(mut x), AttributeValue::L(y)) => {
                x.extend(y);
                AttributeValue::L(x)
            }
            _ => return Err(wrong_type()),
        },
        SetValue::Plus(a, b) | SetValue::Minus(a, b) => {
            let (AttributeValue::N(x), AttributeValue::N(y)) =
                (set_value(item, a)?, set_value(item, b)?)
            else {
                return Err(wrong_type());
            };
            let r = if matches!(v, SetValue::Plus(..)) {
                x.add(&y)
            } else {
                x.sub(&y)
            };
            AttributeValue::N(r.map_err(|e| ExprError(e.to_string()))?)
        }
    })
}

fn bad_path() -> ExprError {
    ExprError("The document path provided in the update expression is invalid for update".into())
}

/// The container a path's last step goes into, if it is the kind that step needs (a map
/// for a name, a list for an index).
fn parent_mut<'i>(item: &'i mut Item, path: &Path) -> Option<&'i mut AttributeValue> {
    let (last, parents) = path.0.split_last()?;
    let parent = resolve_mut(item, parents)?;
    match (&*parent, last) {
        (AttributeValue::M(_), Step::Name(_)) | (AttributeValue::L(_), Step::Index(_)) => {
            Some(parent)
        }
        _ => None,
    }
}

/// Stores `value` at `path`; a list position past the end appends.
fn put(item: &mut Item, path: &Path, value: AttributeValue) -> Result<(), ExprError> {
    if let [Step::Name(top)] = path.0.as_slice() {
        item.insert(top.clone(), value);
        return Ok(());
    }
    match (parent_mut(item, path).ok_or_else(bad_path)?, path.0.last()) {
        (AttributeValue::M(m), Some(Step::Name(n))) => {
            m.insert(n.clone(), value);
        }
        (AttributeValue::L(l), Some(Step::Index(i))) => {
            if *i < l.len() {
                l[*i] = value;
            } else {
                l.push(value);
            }
        }
        _ => return Err(bad_path()),
    }
    Ok(())
}

/// Removes what is at `path` (nothing there is no error; a missing or mistyped parent is).
fn take(item: &mut Item, path: &Path) -> Result<(), ExprError> {
    if let [Step::Name(top)] = path.0.as_slice() {
        item.remove(top);
        return Ok(());
    }
    match (parent_mut(item, path).ok_or_else(bad_path)?, path.0.last()) {
        (AttributeValue::M(m), Some(Step::Name(n))) => {
            m.remove(n);
        }
        (AttributeValue::L(l), Some(Step::Index(i))) => {
            if *i < l.len() {
                l.remove(*i);
            }
        }
        _ => return Err(bad_path()),
    }
    Ok(())
}

/// The path an action writes.
pub fn action_path(a: &Action) -> &Path {
    match a {
        Action::Set(p, _) | Action::Remove(p) | Action::Add(p, _) | Action::Delete(p, _) => p,
    }
}

/// Adds `y`'s members to set `x`, keeping `x`'s order.
fn union<T: PartialEq + Clone>(mut x: Vec<T>, y: &[T]) -> Vec<T> {
    for v in y {
        if !x.contains(v) {
            x.push(v.clone());
        }
    }
    x
}

/// Applies update actions to `item` (SET reads values from the item as it was). As in
/// DynamoDB the actions take effect in the order of their paths, list positions by
/// number, so SETs and ADDs past a list's end append in the order of their positions;
/// REMOVEs come last, from the highest position down, so each removes the element its
/// position named before the update.
pub fn apply(item: &mut Item, actions: &[Action]) -> Result<(), ExprError> {
    let before = item.clone();
    let mut order: Vec<&Action> = actions.iter().collect();
    order.sort_by(|a, b| {
        let (ra, rb) = (
            matches!(a, Action::Remove(_)),
            matches!(b, Action::Remove(_)),
        );
        ra.cmp(&rb).then_with(|| {
            if ra {
                action_path(b).cmp(action_path(a))
            } else {
                action_path(a).cmp(action_path(b))
            }
        })
    });
    for a in order {
        match a {
            Action::Set(p, v) => {
                let value = set_value(&before, v)?;
                put(item, p, value)?;
            }
            Action::Remove(p) => take(item, p)?,
            Action::Add(p, v) => {
                let next = match (resolve(item, p).cloned(), v) {
                    (None, v) => v.clone(),
                    (Some(AttributeValue::N(x)), AttributeValue::N(y)) => {
                        AttributeValue::N(x.add(y).map_err(|e| ExprError(e.to_string()))?)
                    }
                    (Some(AttributeValue::Ss(x)), AttributeValue::Ss(y)) => {
                        AttributeValue::Ss(union(x, y))
                    }
                    (Some(AttributeValue::Ns(x)), AttributeValue::Ns(y)) => {
                        AttributeValue::Ns(union(x, y))
                    }
                    (Some(AttributeValue::Bs(x)), AttributeValue::Bs(y)) => {
                        AttributeValue::Bs(union(x, y))
                    }
                    _ => return Err(wrong_type()),
                };
                put(item, p, next)?;
            }
            Action::Delete(p, v) => {
                let next = match (resolve(item, p).cloned(), v) {
                    (None, _) => {
                        if p.0.len() > 1 && parent_mut(item, p).is_none() {
                            return Err(bad_path());
                        }
                        continue;
                    }
                    (Some(AttributeValue::Ss(x)), AttributeValue::Ss(y)) => {
                        let r: Vec<String> = x.into_iter().filter(|s| !y.contains(s)).collect();
                        (!r.is_empty()).then_some(AttributeValue::Ss(r))
                    }
                    (Some(AttributeValue::Ns(x)), AttributeValue::Ns(y)) => {
                        let r: Vec<Number> = x.into_iter().filter(|s| !y.contains(s)).collect();
                        (!r.is_empty()).then_some(AttributeValue::Ns(r))
                    }
                    (Some(AttributeValue::Bs(x)), AttributeValue::Bs(y)) => {
                        let r: Vec<bytes::Bytes> =
                            x.into_iter().filter(|s| !y.contains(s)).collect();
                        (!r.is_empty()).then_some(AttributeValue::Bs(r))
                    }
                    _ => return Err(wrong_type()),
                };
                match next {
                    Some(v) => put(item, p, v)?,
                    None => take(item, p)?,
                }
            }
        }
    }
    Ok(())
}

fn resolve_mut<'i>(item: &'i mut Item, steps: &[Step]) -> Option<&'i mut AttributeValue> {
    let mut steps = steps.iter();
    let Some(Step::Name(first)) = steps.next() else {
        return None;
    };
    let mut cur = item.get_mut(first)?;
    for s in steps {
        cur = match (s, cur) {
            (Step::Name(n), AttributeValue::M(m)) => m.get_mut(n)?,
            (Step::Index(i), AttributeValue::L(l)) => l.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn n(t: &str) -> AttributeValue {
        AttributeValue::N(Number::parse(t).unwrap())
    }
    fn s(t: &str) -> AttributeValue {
        AttributeValue::S(t.into())
    }

    fn cond(text: &str, values: &[(&str, AttributeValue)]) -> Result<Cond, ExprError> {
        let names = HashMap::from([("#st".to_owned(), "status".to_owned())]);
        let values: HashMap<String, AttributeValue> = values
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        Parser::new("ConditionExpression", text, &names, &values)?
            .condition()
            .map(|(c, _)| c)
    }

    fn item() -> Item {
        let mut i = Item::new();
        i.insert("id".into(), s("a1"));
        i.insert("n".into(), n("5"));
        i.insert("status".into(), s("open"));
        i.insert(
            "tags".into(),
            AttributeValue::Ss(vec!["x".into(), "y".into()]),
        );
        i.insert(
            "m".into(),
            AttributeValue::M(BTreeMap::from([(
                "k".into(),
                AttributeValue::L(vec![n("1"), n("2")]),
            )])),
        );
        i
    }

    #[test]
    fn precedence_not_and_or() {
        // NOT binds tighter than AND, AND tighter than OR.
        let c = cond(
            "NOT n = :a AND n = :b OR n = :c",
            &[(":a", n("1")), (":b", n("5")), (":c", n("9"))],
        )
        .unwrap();
        assert!(eval(&item(), &c));
        let c = cond("NOT (n = :b OR n = :c)", &[(":b", n("5")), (":c", n("9"))]).unwrap();
        assert!(!eval(&item(), &c));
    }

    #[test]
    fn functions_and_paths() {
        let i = item();
        let t = |text: &str, v: &[(&str, AttributeValue)]| eval(&i, &cond(text, v).unwrap());
        assert!(t(
            "attribute_exists(m.k[1]) AND attribute_not_exists(m.k[5])",
            &[]
        ));
        assert!(t("#st = :o", &[(":o", s("open"))]));
        assert!(t("begins_with(id, :p)", &[(":p", s("a"))]));
        assert!(t(
            "contains(tags, :x) AND size(tags) = :two",
            &[(":x", s("x")), (":two", n("2"))]
        ));
        assert!(t("attribute_type(n, :t)", &[(":t", s("N"))]));
        assert!(t(
            "n BETWEEN :lo AND :hi",
            &[(":lo", n("1")), (":hi", n("5"))]
        ));
        assert!(t("n IN (:a, :b)", &[(":a", n("4")), (":b", n("5"))]));
        assert!(t("m.k[0] < n", &[]));
        assert!(
            !t("n < :s", &[(":s", s("9"))]),
            "different types never compare"
        );
        assert!(t("n <> :s", &[(":s", s("9"))]));
    }

    #[test]
    fn errors_read_like_dynamodb() {
        let e = cond("n = :missing", &[]).unwrap_err().0;
        assert_eq!(
            e,
            "Invalid ConditionExpression: An expression attribute value used in expression is not defined; attribute value: :missing"
        );
        let e = cond("#nope = :a", &[(":a", n("1"))]).unwrap_err().0;
        assert!(e.contains("attribute name: #nope"), "{e}");
        assert!(cond("n = ", &[]).unwrap_err().0.contains("Syntax error"));
        assert!(
            cond("frob(n)", &[])
                .unwrap_err()
                .0
                .contains("Invalid function name")
        );
        assert!(cond("", &[]).unwrap_err().0.contains("can not be empty"));
    }

    #[test]
    fn updates() {
        let values: HashMap<String, AttributeValue> = HashMap::from([
            (":one".to_owned(), n("1")),
            (":l".to_owned(), AttributeValue::L(vec![n("3")])),
            (
                ":z".to_owned(),
                AttributeValue::Ss(vec!["z".into(), "x".into()]),
            ),
            (":d".to_owned(), n("10")),
        ]);
        let (actions, _) = Parser::new("UpdateExpression", "SET n = n + :one, m.k = list_append(m.k, :l), c = if_not_exists(c, :d) REMOVE #s ADD tags :z", &HashMap::from([("#s".to_owned(), "status".to_owned())]), &values).unwrap().update().unwrap();
        let mut i = item();
        apply(&mut i, &actions).unwrap();
        assert_eq!(i["n"], n("6"));
        assert_eq!(i["c"], n("10"));
        assert!(!i.contains_key("status"));
        assert_eq!(
            i["m"],
            AttributeValue::M(BTreeMap::from([(
                "k".into(),
                AttributeValue::L(vec![n("1"), n("2"), n("3")])
            )]))
        );
        assert_eq!(
            i["tags"],
            AttributeValue::Ss(vec!["x".into(), "y".into(), "z".into()])
        );
    }

    #[test]
    fn projection_keeps_nesting() {
        let (paths, _) = Parser::new(
            "ProjectionExpression",
            "id, m.k[1]",
            &HashMap::new(),
            &HashMap::new(),
        )
        .unwrap()
        .projection()
        .unwrap();
        let p = project(&item(), &paths);
        assert_eq!(p["id"], s("a1"));
        assert_eq!(
            p["m"],
            AttributeValue::M(BTreeMap::from([(
                "k".into(),
                AttributeValue::L(vec![n("2")])
            )]))
        );
    }

    /// The error `text` (of `kind`) gets, with `#a` = a, `#i` = "[3]", `:n` a number, `:s`
    /// a string, `:l` a list, `:ss` a string set.
    fn first_error(kind: &'static str, text: &str) -> String {
        let names = HashMap::from([
            ("#a".to_owned(), "a".to_owned()),
            ("#i".to_owned(), "[3]".to_owned()),
        ]);
        let values = HashMap::from([
            (":n".to_owned(), n("1")),
            (":s".to_owned(), s("b")),
            (":l".to_owned(), AttributeValue::L(vec![])),
            (":ss".to_owned(), AttributeValue::Ss(vec!["x".into()])),
        ]);
        let p = match Parser::new(kind, text, &names, &values) {
            Ok(p) => p,
            Err(e) => return e.0,
        };
        let e = match kind {
            "UpdateExpression" => p.update().err(),
            "ProjectionExpression" => p.projection().err(),
            _ => p.condition().err(),
        };
        let e = e.unwrap_or_else(|| panic!("{text} was accepted")).0;
        e.split_once(": ").map(|(_, m)| m.to_owned()).unwrap_or(e)
    }

    #[test]
    fn condition_problems_are_reported_in_dynamodb_order() {
        let cases = [
            // Syntax (redundant parentheses included) before everything else.
            (
                "a > 4 AND frob(x)",
                "Syntax error; token: \"4\", near: \"> 4 AND\"",
            ),
            (
                "a > whatever((:n), ((a)))",
                "The expression has redundant parentheses;",
            ),
            (
                "size(a).b > a",
                "Syntax error; token: \".\", near: \") . b\"",
            ),
            // Then function names, then functions in the wrong place, then reserved words.
            (
                "attRIbute_exIsts((views), #x)",
                "Invalid function name; function: attRIbute_exIsts",
            ),
            (
                "attribute_exists((views), (#x)) > b",
                "The function is not allowed to be used this way in an expression; function: attribute_exists",
            ),
            (
                "size(x)",
                "The function is not allowed to be used this way in an expression; function: size",
            ),
            (
                "attribute_exists(views, #x)",
                "Attribute name is a reserved keyword; reserved keyword: views",
            ),
            // Then one walk in the order of the text: names and values as met, each
            // function's operands after its arguments, repeated operands.
            (
                "begins_with(:nope, #x, #y)",
                "An expression attribute value used in expression is not defined; attribute value: :nope",
            ),
            (
                "(#x between :n and :n) and (a in (:n))",
                "An expression attribute name used in the document path is not defined; attribute name: #x",
            ),
            (
                "a = a AND b = :nope",
                "The first operand must be distinct from the remaining operands for this operator or function; operator: =, first operand: [a]",
            ),
            (
                "begins_with(x, size(a), b)",
                "Incorrect number of operands for operator or function; operator or function: begins_with, number of operands: 3",
            ),
            (
                "attribute_exists(:n)",
                "Operator or function requires a document path; operator or function: attribute_exists",
            ),
            (
                "attribute_not_exists(size(:s))",
                "Operator or function requires a document path; operator or function: attribute_not_exists",
            ),
            (
                "attribute_not_exists(size(:n))",
                "Incorrect operand type for operator or function; operator or function: size, operand type: N",
            ),
            (
                "attribute_type(a, size(a))",
                "Incorrect operand type for operator or function; operator or function: attribute_type, operand type: N",
            ),
            (
                "attribute_type(a, :s)",
                "Invalid attribute type name found; type: b, valid types: {S,SS,N,NS,B,BS,BOOL,NULL,L,M}",
            ),
            (
                "begins_with(:l, a)",
                "Incorrect operand type for operator or function; operator or function: begins_with, operand type: L",
            ),
            (
                "contains(x.a[1], x.#a[1])",
                "The first operand must be distinct from the remaining operands for this operator or function; operator: contains, first operand: [x, a, [1]]",
            ),
            (
                "a between :n and :s",
                "The BETWEEN operator requires same data type for lower and upper bounds; lower bound operand: AttributeValue: {N:1}, upper bound operand: AttributeValue: {S:b}",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(first_error("ConditionExpression", text), want, "{text}");
        }
        // Parentheses around operands are fine, and size counts characters.
        let mut i = item();
        i.insert("b".into(), s("abÿ"));
        let c = cond("((size(b)) = :three) AND (b) = (b)", &[(":three", n("3"))]);
        assert!(c.is_err(), "b = b repeats its operand");
        let c = cond(
            "((size(b)) = :three) AND (n) > :three",
            &[(":three", n("3"))],
        )
        .unwrap();
        assert!(eval(&i, &c));
    }

    #[test]
    fn update_problems_are_reported_in_dynamodb_order() {
        let cases = [
            (
                "set a = b + c + d",
                "Syntax error; token: \"+\", near: \"c + d\"",
            ),
            (
                " set #x = :x set abOrt = true ",
                "Attribute name is a reserved keyword; reserved keyword: abOrt",
            ),
            (
                "set #x = if_not_exist(:x) set c = d",
                "Invalid function name; function: if_not_exist",
            ),
            (
                "add #x :y set a = b add e :z",
                "The \"ADD\" section can only be used once in an update expression;",
            ),
            (
                "SET #x = if_not_exists(:x)",
                "An expression attribute name used in the document path is not defined; attribute name: #x",
            ),
            (
                "SET #a = if_not_exists(:x)",
                "An expression attribute value used in expression is not defined; attribute value: :x",
            ),
            // Overlaps anywhere before conflicts, both before operand checks.
            (
                "set d[1] = a, d.b = a, c[1].a = a, c = if_not_exists(a)",
                "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [c, [1], a], path two: [c]",
            ),
            (
                "set c[3].#i = a, c.#i[3] = if_not_exists(a)",
                "Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [c, [3], [3]], path two: [c, [3], [3]]",
            ),
            (
                "set b = list_append(:s, a), c = if_not_exists(a) add a.b :s",
                "Incorrect operand type for operator or function; operator: ADD, operand type: STRING",
            ),
            (
                "delete a :n",
                "Incorrect operand type for operator or function; operator: DELETE, operand type: NUMBER",
            ),
            (
                "set a = if_not_exists(c)",
                "Incorrect number of operands for operator or function; operator or function: if_not_exists, number of operands: 1",
            ),
            (
                "set a = if_not_exists(if_not_exists(a, b), c)",
                "Operator or function requires a document path; operator or function: if_not_exists",
            ),
            (
                "set a = list_append(a, :n)",
                "Incorrect operand type for operator or function; operator or function: list_append, operand type: N",
            ),
            (
                "set a = :s - :l",
                "Incorrect operand type for operator or function; operator or function: -, operand type: S",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(first_error("UpdateExpression", text), want, "{text}");
        }
    }

    #[test]
    fn projection_problems_and_nested_projections() {
        let cases = [
            ("(a)", "Syntax error; token: \"(\", near: \"( a\""),
            (
                "#x,ABSoLUTE",
                "Attribute name is a reserved keyword; reserved keyword: ABSoLUTE",
            ),
            (
                "a,b,a,#x",
                "An expression attribute name used in the document path is not defined; attribute name: #x",
            ),
            (
                "b[1], b.a, #a.b, a",
                "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a, b], path two: [a]",
            ),
            (
                "a[3].b, #a.#i.b",
                "Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [a, [3], b], path two: [a, [3], b]",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(first_error("ProjectionExpression", text), want, "{text}");
        }
        // Several positions of one list come back in list order, closed up; a path into
        // a value that is not a map or list keeps nothing.
        let mut i = item();
        i.insert("c".into(), AttributeValue::L(vec![s("x"), s("y"), s("z")]));
        let (paths, _) = Parser::new(
            "ProjectionExpression",
            "m.k[1], c[2], c[1], c[0].a, id.x",
            &HashMap::new(),
            &HashMap::new(),
        )
        .unwrap()
        .projection()
        .unwrap();
        let p = project(&i, &paths);
        assert_eq!(p["c"], AttributeValue::L(vec![s("y"), s("z")]));
        assert!(!p.contains_key("id"));
    }

    #[test]
    fn list_positions_are_updated_in_order_and_bad_paths_refused() {
        let values = HashMap::from([
            (":two".to_owned(), n("2")),
            (":ss".to_owned(), AttributeValue::Ss(vec!["a".into()])),
        ]);
        let run = |text: &str, i: &mut Item| {
            let (a, _) =
                Parser::new("UpdateExpression", text, &HashMap::new(), &values)?.update()?;
            apply(i, &a)
        };
        let mut i = item();
        i.insert("c".into(), AttributeValue::L(vec![n("1"), n("3")]));
        run(
            "set c[4] = n - :two, c[2] = n add c[8] :ss, c[6] :two",
            &mut i,
        )
        .unwrap();
        assert_eq!(
            i["c"],
            AttributeValue::L(vec![
                n("1"),
                n("3"),
                n("5"),
                n("3"),
                n("2"),
                AttributeValue::Ss(vec!["a".into()])
            ])
        );
        // REMOVE takes positions as they were before the update.
        run("remove c[0], c[2]", &mut i).unwrap();
        assert_eq!(
            i["c"].clone(),
            AttributeValue::L(vec![
                n("3"),
                n("3"),
                n("2"),
                AttributeValue::Ss(vec!["a".into()])
            ])
        );
        for text in [
            "remove id.a",
            "delete n.x :ss",
            "add m[1] :two",
            "set nope.x = :two",
        ] {
            assert_eq!(
                run(text, &mut i).unwrap_err().0,
                "The document path provided in the update expression is invalid for update",
                "{text}"
            );
        }
        assert_eq!(run("set n = id + :two", &mut i).unwrap_err(), wrong_type());
    }

    /// Parses `text` as `kind` with a few names and values, and evaluates or applies
    /// what parsed against a small item: the whole path a request takes.
    fn parse_and_run(kind: &str, text: &str) -> Result<(), ExprError> {
        let names = HashMap::from([("#a".to_owned(), "a".to_owned())]);
        let values = HashMap::from([(":v".to_owned(), n("1")), (":s".to_owned(), s("é"))]);
        let kind: &'static str = match kind {
            "ConditionExpression" => "ConditionExpression",
            "UpdateExpression" => "UpdateExpression",
            _ => "ProjectionExpression",
        };
        let p = Parser::new(kind, text, &names, &values)?;
        let mut i = item();
        match kind {
            "ConditionExpression" => {
                let (c, _) = p.condition()?;
                eval(&i, &c);
            }
            "UpdateExpression" => {
                let (a, _) = p.update()?;
                apply(&mut i, &a)?;
            }
            _ => {
                let (paths, _) = p.projection()?;
                project(&i, &paths);
            }
        }
        Ok(())
    }

    fn cond_err(text: &str) -> String {
        parse_and_run("ConditionExpression", text)
            .expect_err("refused")
            .0
    }

    #[test]
    fn multi_byte_text_is_a_syntax_error_not_a_panic() {
        for text in [
            "é",
            "a = :v é",
            "aé = :v",
            "#é = :v",
            "a.é = :v",
            "a = :v AND 中文字",
            "a = :v\u{1F600}x",
        ] {
            let e = cond_err(text);
            assert!(
                e.starts_with("Invalid ConditionExpression: Syntax error; token: "),
                "{text}: {e}"
            );
        }
        assert_eq!(
            cond_err("a = 中文字符串很长很长"),
            "Invalid ConditionExpression: Syntax error; token: \"中\", near: \"中文字符串很长很长\""
        );
    }

    #[test]
    fn expression_size_is_counted_in_bytes() {
        // 2 bytes per é: 2,049 of them is 4,098 bytes though only 2,049 chars.
        let text = format!("a = :v OR a = :v{}", " ".repeat(4096 - 16));
        assert_eq!(text.len(), 4096);
        assert!(parse_and_run("ConditionExpression", &text).is_ok());
        let over = format!("{text} ");
        assert_eq!(
            cond_err(&over),
            "Invalid ConditionExpression: Expression size has exceeded the maximum allowed size; expression size: 4097"
        );
        let wide = "é".repeat(2049);
        assert!(cond_err(&wide).ends_with("expression size: 4098"));
    }

    #[test]
    fn deep_nesting_is_refused_before_the_stack_runs_out() {
        // 2,000 nested parentheses fit in 4 KB.
        let text = format!("{}a = :v{}", "(".repeat(2000), ")".repeat(2000));
        assert_eq!(
            cond_err(&text),
            "Invalid ConditionExpression: The expression has redundant parentheses;"
        );
        // Unclosed, too.
        assert!(cond_err(&"(".repeat(4000)).contains("redundant parentheses"));
        // NOT ( … ) nested past the operator limit.
        let text = format!("{}a = :v{}", "NOT (".repeat(600), ")".repeat(600));
        assert!(
            cond_err(&text).contains("too many operators"),
            "{}",
            cond_err(&text)
        );
        // A run of NOTs costs no stack; it is refused for its operators, with their count.
        let text = format!("{}a = :v", "NOT ".repeat(1000));
        assert_eq!(
            cond_err(&text),
            "Invalid ConditionExpression: The expression contains too many operators; operator count: 1001"
        );
        // if_not_exists nested as deep as 4 KB allows parses and applies.
        let text = format!(
            "SET a = {}:v{}",
            "if_not_exists(a,".repeat(240),
            ")".repeat(240)
        );
        assert!(text.len() <= MAX_EXPRESSION_BYTES);
        parse_and_run("UpdateExpression", &text).expect("240 levels");
        // Operators are counted in updates too.
        let text = format!("SET {}", vec!["a = :v + :v"; 301].join(", "));
        assert_eq!(
            parse_and_run("UpdateExpression", &text)
                .expect_err("refused")
                .0,
            "Invalid UpdateExpression: The expression contains too many operators; operator count: 301"
        );
    }

    #[test]
    fn the_deepest_valid_condition_parses_and_evaluates() {
        // 299 NOTs, each in its own parentheses, and one comparison: 300 operators.
        let text = format!("{}a = :v{}", "NOT (".repeat(299), ")".repeat(299));
        parse_and_run("ConditionExpression", &text).expect("300 operators are allowed");
        let text = format!("{}a = :v{}", "NOT (".repeat(300), ")".repeat(300));
        assert_eq!(
            cond_err(&text),
            "Invalid ConditionExpression: The expression contains too many operators; operator count: 301"
        );
    }

    #[test]
    fn operator_in_and_path_limits() {
        let chain = |n: usize| vec!["a = :v"; n].join(" AND ");
        // 150 comparisons and 149 ANDs: 299.
        parse_and_run("ConditionExpression", &chain(150)).expect("under the limit");
        assert_eq!(
            cond_err(&chain(151)),
            "Invalid ConditionExpression: The expression contains too many operators; operator count: 301"
        );
        let list = |n: usize| format!("a IN ({})", vec![":v"; n].join(","));
        parse_and_run("ConditionExpression", &list(100)).expect("100 operands");
        assert_eq!(
            cond_err(&list(101)),
            "Invalid ConditionExpression: The IN operator is provided with too many operands; number of operands: 101"
        );
        let path = |n: usize| vec!["a"; n].join(".");
        parse_and_run("ProjectionExpression", &path(32)).expect("32 levels");
        assert_eq!(
            parse_and_run("ProjectionExpression", &path(33))
                .expect_err("33")
                .0,
            "Invalid ProjectionExpression: The document path has too many nesting levels; nesting levels: 33"
        );
        assert_eq!(
            cond_err("((a = :v))"),
            "Invalid ConditionExpression: The expression has redundant parentheses;"
        );
        parse_and_run(
            "ConditionExpression",
            "((a = :v) AND (a = :v)) OR (NOT (a = :v))",
        )
        .expect("no redundant pair");
    }

    /// Text that nests `inner` `depth` times in one of the recursive forms.
    fn nested(form: usize, depth: usize, inner: &str) -> (&'static str, String) {
        let (kind, open, close) = match form % 5 {
            0 => ("ConditionExpression", "(", ")"),
            1 => ("ConditionExpression", "NOT (", ")"),
            2 => ("ConditionExpression", "a = :v AND (", ")"),
            3 => ("UpdateExpression", "if_not_exists(a, ", ")"),
            _ => ("UpdateExpression", "list_append(", ", :v)"),
        };
        let body = if kind == "UpdateExpression" {
            format!("SET a = {}:v", open.repeat(depth))
        } else {
            format!("{}{inner}", open.repeat(depth))
        };
        (kind, format!("{body}{}", close.repeat(depth)))
    }

    proptest! {
        /// Any text, multi-byte included, parses to an expression or a validation error
        /// (never a panic), and what parses evaluates without one.
        #[test]
        fn arbitrary_text_never_panics(text in any::<String>()) {
            for kind in ["ConditionExpression", "UpdateExpression", "ProjectionExpression"] {
                let _ = parse_and_run(kind, &text);
            }
        }

        #[test]
        fn expression_like_text_never_panics(text in "([ a#:v.,()\\[\\]0-9=<>+-]|é|中|AND |OR |NOT |IN |BETWEEN |SET |REMOVE |size\\(|if_not_exists\\(|list_append\\(|begins_with\\(|contains\\(|attribute_exists\\(){0,80}") {
            for kind in ["ConditionExpression", "UpdateExpression", "ProjectionExpression"] {
                let _ = parse_and_run(kind, &text);
            }
        }

        /// Nesting of any depth is parsed (or refused) and evaluated within the stack of
        /// a test thread.
        #[test]
        fn deep_nesting_never_overflows(form in 0usize..5, depth in 0usize..2100, inner in "(a = :v|a IN \\(:v\\)|é|)") {
            let (kind, text) = nested(form, depth, &inner);
            match parse_and_run(kind, &text) {
                Ok(()) => prop_assert!(text.len() <= MAX_EXPRESSION_BYTES),
                Err(e) => prop_assert!(e.0.starts_with("Invalid "), "{}", e.0),
            }
        }

        #[test]
        fn the_parser_never_panics(text in "[ -~]{0,60}") {
            let names = HashMap::from([("#a".to_owned(), "a".to_owned())]);
            let values = HashMap::from([(":v".to_owned(), n("1"))]);
            for kind in ["ConditionExpression", "UpdateExpression", "ProjectionExpression"] {
                if let Ok(p) = Parser::new(kind, &text, &names, &values) {
                    let _ = match kind {
                        "ConditionExpression" => p.condition().map(|_| ()),
                        "UpdateExpression" => p.update().map(|_| ()),
                        _ => p.projection().map(|_| ()),
                    };
                }
            }
        }
    }
}
