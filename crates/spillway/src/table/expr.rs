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

use super::number::Number;
use super::value::{AttributeValue, Item};

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Name(String),
    Index(usize),
}

/// A document path: `a.b[2].c`.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// Parses one kind of expression with its name and value maps.
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
    /// Operators and functions seen so far (DynamoDB allows [`MAX_OPERATORS`]).
    ops: usize,
    /// Current recursion depth (bounded by [`MAX_NESTING`]).
    depth: usize,
    /// Token positions of the last parenthesised group closed: (open, close).
    last_group: Option<(usize, usize)>,
    /// A group directly inside another, `((…))`, which DynamoDB refuses.
    redundant: bool,
}

fn is_kw(t: &Tok, kw: &str) -> bool {
    matches!(t, Tok::Ident(w) if w.eq_ignore_ascii_case(kw))
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
        Ok(Self {
            kind,
            toks: tokenize(kind, text)?,
            pos: 0,
            names,
            values,
            used_names: Default::default(),
            used_values: Default::default(),
            ops: 0,
            depth: 0,
            last_group: None,
            redundant: false,
        })
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
        ExprError(format!(
            "Invalid {}: The expression contains too many operators; operator count: {}",
            self.kind, self.ops
        ))
    }

    fn redundant_parentheses(&self) -> ExprError {
        ExprError(format!(
            "Invalid {}: The expression has redundant parentheses;",
            self.kind
        ))
    }

    /// The checks DynamoDB makes once the whole expression has parsed.
    fn finish(&self) -> Result<(), ExprError> {
        self.end()?;
        if self.redundant {
            return Err(self.redundant_parentheses());
        }
        if self.ops > MAX_OPERATORS {
            return Err(self.too_many_operators());
        }
        Ok(())
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn syntax(&self) -> ExprError {
        match self.peek() {
            Some(t) => ExprError(format!(
                "Invalid {}: Syntax error; token: \"{}\", near: \"{}\"",
                self.kind,
                show(t),
                self.toks[self.pos.saturating_sub(1)..(self.pos + 2).min(self.toks.len())]
                    .iter()
                    .map(show)
                    .collect::<Vec<_>>()
                    .join(" ")
            )),
            None => ExprError(format!(
                "Invalid {}: Syntax error; token: \"<EOF>\", near: \"{}\"",
                self.kind,
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

    fn name(&mut self) -> Result<String, ExprError> {
        match self.peek().cloned() {
            Some(Tok::Ident(w)) => {
                if super::reserved::is_reserved(&w) {
                    return Err(ExprError(format!(
                        "Invalid {}: Attribute name is a reserved keyword; reserved keyword: {w}",
                        self.kind
                    )));
                }
                self.pos += 1;
                Ok(w)
            }
            Some(Tok::Name(n)) => {
                self.pos += 1;
                self.used_names.insert(n.clone());
                self.names.get(&n).cloned().ok_or_else(|| {
                    ExprError(format!(
                        "Invalid {}: An expression attribute name used in the document path is not defined; attribute name: {n}",
                        self.kind
                    ))
                })
            }
            _ => Err(self.syntax()),
        }
    }

    fn path(&mut self) -> Result<Path, ExprError> {
        let mut steps = vec![Step::Name(self.name()?)];
        loop {
            if steps.len() > MAX_PATH_DEPTH && !matches!(self.peek(), Some(Tok::Sym("." | "["))) {
                return Err(ExprError(format!(
                    "Invalid {}: The document path has too many nesting levels; nesting levels: {}",
                    self.kind,
                    steps.len()
                )));
            }
            if self.eat_sym(".") {
                steps.push(Step::Name(self.name()?));
            } else if self.eat_sym("[") {
                match self.peek().cloned() {
                    Some(Tok::Int(n)) => {
                        self.pos += 1;
                        steps.push(Step::Index(n));
                    }
                    _ => return Err(self.syntax()),
                }
                self.expect_sym("]")?;
            } else {
                return Ok(Path(steps));
            }
        }
    }

    fn value(&mut self, v: &str) -> Result<AttributeValue, ExprError> {
        self.used_values.insert(v.to_owned());
        self.values.get(v).cloned().ok_or_else(|| {
            ExprError(format!(
                "Invalid {}: An expression attribute value used in expression is not defined; attribute value: {v}",
                self.kind
            ))
        })
    }

    fn operand(&mut self) -> Result<Operand, ExprError> {
        match self.peek().cloned() {
            Some(Tok::Value(v)) => {
                self.pos += 1;
                Ok(Operand::Value(self.value(&v)?))
            }
            Some(Tok::Ident(w))
                if w == "size" && self.toks.get(self.pos + 1) == Some(&Tok::Sym("(")) =>
            {
                self.pos += 2;
                self.op();
                let p = self.path()?;
                self.expect_sym(")")?;
                Ok(Operand::Size(p))
            }
            _ => Ok(Operand::Path(self.path()?)),
        }
    }

    /// A whole condition expression.
    pub fn condition(mut self) -> Result<(Cond, Self), ExprError> {
        let c = self.or()?;
        self.finish()?;
        Ok((c, self))
    }

    /// `condition`: OR of ANDs of NOTs of primaries and parenthesised groups, parsed
    /// with explicit stacks (operator precedence), so no nesting costs the thread's stack.
    fn or(&mut self) -> Result<Cond, ExprError> {
        let mut pending: Vec<Pending> = Vec::new();
        let mut out: Vec<Cond> = Vec::new();
        let mut open_groups = 0usize;
        loop {
            // Where an operand is expected: NOTs and opening parentheses, then a primary.
            loop {
                if self.eat_kw("NOT") {
                    self.op();
                    pending.push(Pending::Not);
                } else if self.eat_sym("(") {
                    self.enter()?;
                    open_groups += 1;
                    pending.push(Pending::Open(self.pos - 1));
                } else {
                    break;
                }
            }
            out.push(self.primary()?);
            // After an operand: closing parentheses, then AND, OR or the end.
            while open_groups > 0 && self.eat_sym(")") {
                let close = self.pos - 1;
                loop {
                    match pending.pop() {
                        Some(Pending::Open(open)) => {
                            if self.last_group == Some((open + 1, close - 1)) {
                                self.redundant = true;
                            }
                            self.last_group = Some((open, close));
                            break;
                        }
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

    /// A comparison or a function (NOT and parentheses are [`Self::or`]'s).
    fn primary(&mut self) -> Result<Cond, ExprError> {
        if let Some(Tok::Ident(f)) = self.peek().cloned()
            && self.toks.get(self.pos + 1) == Some(&Tok::Sym("("))
            && f != "size"
        {
            self.pos += 2;
            self.op();
            let c = match f.as_str() {
                "attribute_exists" => Cond::Exists(self.path()?),
                "attribute_not_exists" => Cond::NotExists(self.path()?),
                "attribute_type" => {
                    let p = self.path()?;
                    self.expect_sym(",")?;
                    Cond::Type(p, self.operand()?)
                }
                "begins_with" => {
                    let a = self.operand()?;
                    self.expect_sym(",")?;
                    Cond::BeginsWith(a, self.operand()?)
                }
                "contains" => {
                    let a = self.operand()?;
                    self.expect_sym(",")?;
                    Cond::Contains(a, self.operand()?)
                }
                other => {
                    return Err(ExprError(format!(
                        "Invalid {}: Invalid function name; function: {other}",
                        self.kind
                    )));
                }
            };
            self.expect_sym(")")?;
            return Ok(c);
        }
        let left = self.operand()?;
        if self.eat_kw("BETWEEN") {
            self.op();
            let lo = self.operand()?;
            if !self.eat_kw("AND") {
                return Err(self.syntax());
            }
            return Ok(Cond::Between(left, lo, self.operand()?));
        }
        if self.eat_kw("IN") {
            self.op();
            self.expect_sym("(")?;
            let mut list = vec![self.operand()?];
            while self.eat_sym(",") {
                list.push(self.operand()?);
            }
            self.expect_sym(")")?;
            if list.len() > MAX_IN_OPERANDS {
                return Err(ExprError(format!(
                    "Invalid {}: The IN operator is provided with too many operands; number of operands: {}",
                    self.kind,
                    list.len()
                )));
            }
            return Ok(Cond::In(left, list));
        }
        let op = match self.peek() {
            Some(Tok::Sym("=")) => Cmp::Eq,
            Some(Tok::Sym("<>")) => Cmp::Ne,
            Some(Tok::Sym("<")) => Cmp::Lt,
            Some(Tok::Sym("<=")) => Cmp::Le,
            Some(Tok::Sym(">")) => Cmp::Gt,
            Some(Tok::Sym(">=")) => Cmp::Ge,
            _ => return Err(self.syntax()),
        };
        self.pos += 1;
        self.op();
        Ok(Cond::Compare(left, op, self.operand()?))
    }

    /// A projection expression.
    pub fn projection(mut self) -> Result<(Vec<Path>, Self), ExprError> {
        let mut paths = vec![self.path()?];
        while self.eat_sym(",") {
            paths.push(self.path()?);
        }
        self.finish()?;
        Ok((paths, self))
    }

    fn set_value(&mut self) -> Result<SetValue, ExprError> {
        self.enter()?;
        let first = self.set_term()?;
        let v = if self.eat_sym("+") {
            self.op();
            SetValue::Plus(Box::new(first), Box::new(self.set_term()?))
        } else if self.eat_sym("-") {
            self.op();
            SetValue::Minus(Box::new(first), Box::new(self.set_term()?))
        } else {
            first
        };
        self.leave();
        Ok(v)
    }

    fn set_term(&mut self) -> Result<SetValue, ExprError> {
        if let Some(Tok::Ident(f)) = self.peek().cloned()
            && self.toks.get(self.pos + 1) == Some(&Tok::Sym("("))
        {
            match f.as_str() {
                "if_not_exists" => {
                    self.pos += 2;
                    self.op();
                    let p = self.path()?;
                    self.expect_sym(",")?;
                    let v = self.set_value()?;
                    self.expect_sym(")")?;
                    return Ok(SetValue::IfNotExists(p, Box::new(v)));
                }
                "list_append" => {
                    self.pos += 2;
                    self.op();
                    let a = self.set_value()?;
                    self.expect_sym(",")?;
                    let b = self.set_value()?;
                    self.expect_sym(")")?;
                    return Ok(SetValue::ListAppend(Box::new(a), Box::new(b)));
                }
                "size" => {}
                other => {
                    return Err(ExprError(format!(
                        "Invalid {}: Invalid function name; function: {other}",
                        self.kind
                    )));
                }
            }
        }
        Ok(SetValue::Operand(self.operand()?))
    }

    /// An update expression.
    pub fn update(mut self) -> Result<(Vec<Action>, Self), ExprError> {
        let mut actions = Vec::new();
        let mut seen = std::collections::HashSet::new();
        while self.pos < self.toks.len() {
            let clause = match self.peek() {
                Some(Tok::Ident(w)) => w.to_ascii_uppercase(),
                _ => return Err(self.syntax()),
            };
            if !matches!(clause.as_str(), "SET" | "REMOVE" | "ADD" | "DELETE") {
                return Err(self.syntax());
            }
            if !seen.insert(clause.clone()) {
                return Err(ExprError(format!(
                    "Invalid {}: The \"{clause}\" section can only be used once in an update expression;",
                    self.kind
                )));
            }
            self.pos += 1;
            loop {
                let path = self.path()?;
                actions.push(match clause.as_str() {
                    "SET" => {
                        self.expect_sym("=")?;
                        Action::Set(path, self.set_value()?)
                    }
                    "REMOVE" => Action::Remove(path),
                    other => {
                        let v = match self.peek().cloned() {
                            Some(Tok::Value(v)) => {
                                self.pos += 1;
                                self.value(&v)?
                            }
                            _ => return Err(self.syntax()),
                        };
                        if other == "ADD" {
                            Action::Add(path, v)
                        } else {
                            Action::Delete(path, v)
                        }
                    }
                });
                if !self.eat_sym(",") {
                    break;
                }
            }
        }
        if actions.is_empty() {
            return Err(self.syntax());
        }
        self.finish()?;
        Ok((actions, self))
    }
}

/// An operator of the condition parser waiting for its operands.
#[derive(Debug)]
enum Pending {
    /// An opening parenthesis, at this token position.
    Open(usize),
    Not,
    And,
    Or,
}

/// Applies one pending operator to the operands parsed so far.
fn reduce(p: Pending, out: &mut Vec<Cond>) {
    match p {
        Pending::Open(_) => {}
        Pending::Not => {
            if let Some(x) = out.pop() {
                out.push(Cond::Not(Box::new(x)));
            }
        }
        Pending::And | Pending::Or => {
            if let (Some(b), Some(a)) = (out.pop(), out.pop()) {
                out.push(if matches!(p, Pending::And) {
                    Cond::And(Box::new(a), Box::new(b))
                } else {
                    Cond::Or(Box::new(a), Box::new(b))
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
        Operand::Size(p) => {
            let n = match resolve(item, p)? {
                AttributeValue::S(s) => s.len(),
                AttributeValue::B(b) => b.len(),
                AttributeValue::L(l) => l.len(),
                AttributeValue::M(m) => m.len(),
                AttributeValue::Ss(v) => v.len(),
                AttributeValue::Ns(v) => v.len(),
                AttributeValue::Bs(v) => v.len(),
                _ => return None,
            };
            Number::parse(&n.to_string()).ok().map(AttributeValue::N)
        }
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

/// The item reduced to the projected paths.
pub fn project(item: &Item, paths: &[Path]) -> Item {
    let mut out = Item::new();
    for p in paths {
        if let Some(v) = resolve(item, p) {
            // Rebuild the path's nesting (list positions are kept compacted, as DynamoDB does).
            let mut value = v.clone();
            for s in p.0[1..].iter().rev() {
                value = match s {
                    Step::Name(n) => AttributeValue::M(BTreeMap::from([(n.clone(), value)])),
                    Step::Index(_) => AttributeValue::L(vec![value]),
                };
            }
            let Step::Name(top) = &p.0[0] else { continue };
            merge(
                out.entry(top.clone()).or_insert(AttributeValue::Null),
                value,
            );
        }
    }
    out
}

fn merge(into: &mut AttributeValue, v: AttributeValue) {
    match (into, v) {
        (AttributeValue::M(a), AttributeValue::M(b)) => {
            for (k, x) in b {
                match a.get_mut(&k) {
                    Some(existing) => merge(existing, x),
                    None => {
                        a.insert(k, x);
                    }
                }
            }
        }
        (AttributeValue::L(a), AttributeValue::L(b)) => a.extend(b),
        (slot, v) => *slot = v,
    }
}

fn set_value(item: &Item, v: &SetValue) -> Result<AttributeValue, ExprError> {
    set_value_at(item, v, 0)
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
            _ => {
                return Err(ExprError(
                    "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: list_append, operand type: M".into(),
                ));
            }
        },
        SetValue::Plus(a, b) | SetValue::Minus(a, b) => {
            let (AttributeValue::N(x), AttributeValue::N(y)) =
                (set_value(item, a)?, set_value(item, b)?)
            else {
                return Err(ExprError(format!(
                    "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: {}, operand type: S",
                    if matches!(v, SetValue::Plus(..)) {
                        "+"
                    } else {
                        "-"
                    }
                )));
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

/// Mutable access to the slot at `path`, creating nothing; None if a parent is missing.
fn slot<'i>(
    item: &'i mut Item,
    path: &Path,
) -> Option<(&'i mut BTreeMap<String, AttributeValue>, String)> {
    let (last, parents) = path.0.split_last()?;
    let Step::Name(last) = last else { return None };
    let mut steps = parents.iter();
    let mut map: &mut BTreeMap<String, AttributeValue> = item;
    let mut pending: Option<&Step> = steps.next();
    let Some(first) = pending.take() else {
        return Some((map, last.clone()));
    };
    let Step::Name(first) = first else {
        return None;
    };
    let mut cur: &mut AttributeValue = map.get_mut(first)?;
    for s in steps {
        cur = match (s, cur) {
            (Step::Name(n), AttributeValue::M(m)) => m.get_mut(n)?,
            (Step::Index(i), AttributeValue::L(l)) => l.get_mut(*i)?,
            _ => return None,
        };
    }
    match cur {
        AttributeValue::M(m) => {
            map = m;
            Some((map, last.clone()))
        }
        _ => None,
    }
}

/// Applies update actions to `item` (reading values from the item as it was).
pub fn apply(item: &mut Item, actions: &[Action]) -> Result<(), ExprError> {
    let before = item.clone();
    let bad_path = || {
        ExprError(
            "The document path provided in the update expression is invalid for update".into(),
        )
    };
    for a in actions {
        match a {
            Action::Set(p, v) => {
                let value = set_value(&before, v)?;
                if let [.., Step::Index(i)] = p.0.as_slice() {
                    let parent = Path(p.0[..p.0.len() - 1].to_vec());
                    match resolve_mut(item, &parent) {
                        Some(AttributeValue::L(l)) => {
                            if *i < l.len() {
                                l[*i] = value
                            } else {
                                l.push(value)
                            }
                        }
                        _ => return Err(bad_path()),
                    }
                } else {
                    let (map, key) = slot(item, p).ok_or_else(bad_path)?;
                    map.insert(key, value);
                }
            }
            Action::Remove(p) => {
                if let [.., Step::Index(i)] = p.0.as_slice() {
                    let parent = Path(p.0[..p.0.len() - 1].to_vec());
                    if let Some(AttributeValue::L(l)) = resolve_mut(item, &parent)
                        && *i < l.len()
                    {
                        l.remove(*i);
                    }
                } else if let Some((map, key)) = slot(item, p) {
                    map.remove(&key);
                }
            }
            Action::Add(p, v) => {
                let current = resolve(item, p).cloned();
                let next = match (current, v) {
                    (None, v) => v.clone(),
                    (Some(AttributeValue::N(x)), AttributeValue::N(y)) => {
                        AttributeValue::N(x.add(y).map_err(|e| ExprError(e.to_string()))?)
                    }
                    (Some(AttributeValue::Ss(mut x)), AttributeValue::Ss(y)) => {
                        for s in y {
                            if !x.contains(s) {
                                x.push(s.clone());
                            }
                        }
                        AttributeValue::Ss(x)
                    }
                    (Some(AttributeValue::Ns(mut x)), AttributeValue::Ns(y)) => {
                        for s in y {
                            if !x.contains(s) {
                                x.push(s.clone());
                            }
                        }
                        AttributeValue::Ns(x)
                    }
                    (Some(AttributeValue::Bs(mut x)), AttributeValue::Bs(y)) => {
                        for s in y {
                            if !x.contains(s) {
                                x.push(s.clone());
                            }
                        }
                        AttributeValue::Bs(x)
                    }
                    _ => {
                        return Err(ExprError(
                            "An operand in the update expression has an incorrect data type".into(),
                        ));
                    }
                };
                let (map, key) = slot(item, p).ok_or_else(bad_path)?;
                map.insert(key, next);
            }
            Action::Delete(p, v) => {
                let next = match (resolve(item, p).cloned(), v) {
                    (None, _) => continue,
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
                    _ => {
                        return Err(ExprError(
                            "An operand in the update expression has an incorrect data type".into(),
                        ));
                    }
                };
                let (map, key) = slot(item, p).ok_or_else(bad_path)?;
                match next {
                    Some(v) => {
                        map.insert(key, v);
                    }
                    None => {
                        map.remove(&key);
                    }
                }
            }
        }
    }
    Ok(())
}

fn resolve_mut<'i>(item: &'i mut Item, path: &Path) -> Option<&'i mut AttributeValue> {
    let mut steps = path.0.iter();
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
