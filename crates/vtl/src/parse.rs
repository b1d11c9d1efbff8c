//! Template text to syntax tree, following Velocity 1.7's lexical rules where they show in
//! the output: which whitespace a directive swallows, what a reference may be spelled
//! with, and which `#word`s are directives at all.
//!
//! The parser is recursive descent; every construct that can nest (block directives,
//! parentheses, list and map literals, method arguments, interpolated strings, `!`)
//! passes through [`Parser::enter`], so nesting beyond the limit is an error rather than
//! a stack overflow.

use crate::error::{At, Kind};
use crate::value::Value;

/// A piece of a template.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Text(String),
    Ref(Reference),
    Set {
        target: Reference,
        value: Expr,
        at: usize,
    },
    If {
        branches: Vec<(Expr, Vec<Node>)>,
        otherwise: Option<Vec<Node>>,
        at: usize,
    },
    Foreach {
        var: String,
        iterable: Expr,
        body: Vec<Node>,
        at: usize,
    },
    Break,
    Stop,
}

/// `$name.seg.seg(...)[...]`, with how it was written so it can render as itself.
#[derive(Debug, Clone)]
pub(crate) struct Reference {
    pub name: String,
    pub quiet: bool,
    pub segments: Vec<Segment>,
    /// The reference as written, from `$` to its end, without leading backslashes.
    pub source: String,
    /// Backslashes written right before the `$`.
    pub escapes: usize,
    pub at: usize,
}

#[derive(Debug, Clone)]
pub(crate) enum Segment {
    Property(String),
    Index(Expr),
    Method(String, Vec<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

#[derive(Debug, Clone)]
pub(crate) enum Expr {
    Literal(Value),
    /// A double-quoted string holding `$` or `#`: parsed as a template of its own.
    Interpolated(Vec<Node>),
    Ref(Box<Reference>),
    List(Vec<Expr>),
    Map(Vec<(Expr, Expr)>),
    Range(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Binary(Op, Box<Expr>, Box<Expr>, usize),
}

/// What ended a block.
enum Closer {
    Eof,
    End,
    Else,
    ElseIf(Expr),
}

/// Velocity directives this crate does not implement: refused by name, so a template that
/// needs them fails loudly instead of rendering the directive as text.
const UNSUPPORTED: &[&str] = &["macro", "include", "parse", "evaluate", "define", "literal"];

const KNOWN: &[&str] = &[
    "set", "if", "elseif", "else", "end", "foreach", "break", "stop",
];

type R<T> = Result<T, At>;

pub(crate) struct Parser<'s> {
    src: &'s str,
    b: &'s [u8],
    pos: usize,
    /// Offset of `src` within the whole template (non-zero inside string literals).
    base: usize,
    depth: usize,
    max_depth: usize,
}

/// Parses a whole template.
pub(crate) fn parse(src: &str, max_depth: usize) -> R<Vec<Node>> {
    Parser::new(src, 0, 0, max_depth).template()
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

/// Velocity 1.7 allows `-` inside identifiers: `$a-b` is one reference named `a-b`.
fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

fn is_word_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'@'
}

impl<'s> Parser<'s> {
    fn new(src: &'s str, base: usize, depth: usize, max_depth: usize) -> Self {
        Parser {
            src,
            b: src.as_bytes(),
            pos: 0,
            base,
            depth,
            max_depth,
        }
    }

    fn template(&mut self) -> R<Vec<Node>> {
        let (nodes, end, at) = self.block()?;
        match end {
            Closer::Eof => Ok(nodes),
            Closer::End => Err(self.error_at(at, "#end without a matching #if or #foreach")),
            Closer::Else | Closer::ElseIf(_) => {
                Err(self.error_at(at, "#else or #elseif without #if"))
            }
        }
    }

    fn error_at(&self, pos: usize, message: &str) -> At {
        At::new(self.base + pos, Kind::Parse(message.to_owned()))
    }

    fn error(&self, message: &str) -> At {
        self.error_at(self.pos, message)
    }

    fn enter(&mut self) -> R<()> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(At::new(self.base + self.pos, Kind::TooDeep(self.max_depth)));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn peek_at(&self, i: usize) -> Option<u8> {
        self.b.get(i).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, c: u8, what: &str) -> R<()> {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected {what}")))
        }
    }

    /// A directive's closing `)`, `#else` and `#end` swallow trailing blanks and one line
    /// break, but only when the line break is there (Velocity 1.7's RPAREN/END tokens).
    fn eat_line_end(&mut self) {
        let mut j = self.pos;
        while matches!(self.peek_at(j), Some(b' ' | b'\t')) {
            j += 1;
        }
        match self.peek_at(j) {
            Some(b'\n') => self.pos = j + 1,
            Some(b'\r') => {
                self.pos = j + 1;
                if self.peek() == Some(b'\n') {
                    self.pos += 1;
                }
            }
            _ => {}
        }
    }

    /// The directive word after the `#` at `at`: `#word` or `#{word}`; returns the word
    /// and the offset after it.
    fn directive_word(&self, at: usize) -> Option<(&'s str, usize)> {
        let mut i = at + 1;
        let braced = self.peek_at(i) == Some(b'{');
        if braced {
            i += 1;
        }
        let start = i;
        if !self
            .peek_at(i)
            .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        {
            return None;
        }
        while self.peek_at(i).is_some_and(is_word_char) {
            i += 1;
        }
        let word = &self.src[start..i];
        if braced {
            if self.peek_at(i) != Some(b'}') {
                return None;
            }
            i += 1;
        }
        Some((word, i))
    }

    fn block(&mut self) -> R<(Vec<Node>, Closer, usize)> {
        let mut nodes = Vec::new();
        let mut text = String::new();
        loop {
            let Some(c) = self.peek() else {
                flush(&mut text, &mut nodes);
                return Ok((nodes, Closer::Eof, self.pos));
            };
            match c {
                b'\\' => self.backslashes(&mut nodes, &mut text)?,
                b'$' => match self.reference(self.pos, 0)? {
                    Some(r) => {
                        flush(&mut text, &mut nodes);
                        nodes.push(Node::Ref(r));
                    }
                    None => {
                        text.push('$');
                        self.pos += 1;
                    }
                },
                b'#' => {
                    let at = self.pos;
                    if let Some(end) = self.hash(&mut nodes, &mut text)? {
                        flush(&mut text, &mut nodes);
                        return Ok((nodes, end, at));
                    }
                }
                _ => {
                    let start = self.pos;
                    while self
                        .peek()
                        .is_some_and(|c| !matches!(c, b'\\' | b'$' | b'#'))
                    {
                        self.pos += 1;
                    }
                    text.push_str(&self.src[start..self.pos]);
                }
            }
        }
    }

    /// A run of backslashes: before a reference it is an escape decided at render time;
    /// before a directive, pairs render as one backslash and an odd one makes the
    /// directive text; anywhere else it is text.
    fn backslashes(&mut self, nodes: &mut Vec<Node>, text: &mut String) -> R<()> {
        let start = self.pos;
        while self.peek() == Some(b'\\') {
            self.pos += 1;
        }
        let n = self.pos - start;
        match self.peek() {
            Some(b'$') => {
                if let Some(mut r) = self.reference(self.pos, n)? {
                    r.at = self.base + start;
                    flush(text, nodes);
                    nodes.push(Node::Ref(r));
                    return Ok(());
                }
            }
            Some(b'#') => {
                if let Some((word, end)) = self.directive_word(self.pos)
                    && (KNOWN.contains(&word) || UNSUPPORTED.contains(&word))
                {
                    text.extend(std::iter::repeat_n('\\', n / 2));
                    if n % 2 == 1 {
                        text.push_str(&self.src[self.pos..end]);
                        self.pos = end;
                    }
                    return Ok(());
                }
            }
            _ => {}
        }
        text.push_str(&self.src[start..self.pos]);
        Ok(())
    }

    /// Parses a reference whose `$` is at `dollar`; `None` (nothing consumed) when what
    /// follows the `$` is not a reference, so the `$` is text.
    fn reference(&mut self, dollar: usize, escapes: usize) -> R<Option<Reference>> {
        let mut i = dollar + 1;
        let quiet = self.peek_at(i) == Some(b'!');
        if quiet {
            i += 1;
        }
        let braced = self.peek_at(i) == Some(b'{');
        if braced {
            i += 1;
        }
        if !self.peek_at(i).is_some_and(is_ident_start) {
            return Ok(None);
        }
        let name_start = i;
        while self.peek_at(i).is_some_and(is_ident_char) {
            i += 1;
        }
        let name = self.src[name_start..i].to_owned();
        self.pos = i;
        let mut segments = Vec::new();
        loop {
            match self.peek() {
                Some(b'[') => {
                    self.pos += 1;
                    self.enter()?;
                    let index = self.expr()?;
                    self.expect(b']', "`]` to close the index")?;
                    self.leave();
                    segments.push(Segment::Index(index));
                }
                Some(b'.')
                    if self
                        .peek_at(self.pos + 1)
                        .is_some_and(|c| c.is_ascii_alphabetic()) =>
                {
                    let start = self.pos + 1;
                    let mut j = start;
                    while self.peek_at(j).is_some_and(is_ident_char) {
                        j += 1;
                    }
                    let ident = self.src[start..j].to_owned();
                    self.pos = j;
                    if self.peek() == Some(b'(') {
                        self.pos += 1;
                        self.enter()?;
                        let args = self.arguments()?;
                        self.leave();
                        segments.push(Segment::Method(ident, args));
                    } else {
                        segments.push(Segment::Property(ident));
                    }
                }
                _ => break,
            }
        }
        if braced {
            if self.peek() != Some(b'}') {
                return Err(self.error("expected `}` to close `${`"));
            }
            self.pos += 1;
        }
        Ok(Some(Reference {
            name,
            quiet,
            segments,
            source: self.src[dollar..self.pos].to_owned(),
            escapes,
            at: self.base + dollar,
        }))
    }

    fn arguments(&mut self) -> R<Vec<Expr>> {
        let mut args = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b')') {
            self.pos += 1;
            return Ok(args);
        }
        loop {
            args.push(self.expr()?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b')') => {
                    self.pos += 1;
                    return Ok(args);
                }
                _ => return Err(self.error("expected `,` or `)` in the argument list")),
            }
        }
    }

    /// Handles a `#`; returns the end of the enclosing block when it is `#end`, `#else`
    /// or `#elseif`.
    fn hash(&mut self, nodes: &mut Vec<Node>, text: &mut String) -> R<Option<Closer>> {
        let at = self.pos;
        let rest = &self.b[at..];
        if rest.starts_with(b"##") {
            // A line comment swallows its line break.
            match self.b[at..].iter().position(|&c| c == b'\n') {
                Some(n) => self.pos = at + n + 1,
                None => self.pos = self.b.len(),
            }
            return Ok(None);
        }
        if rest.starts_with(b"#*") {
            let end = find(&self.b[at + 2..], b"*#")
                .ok_or_else(|| self.error("unterminated #* comment"))?;
            self.pos = at + 2 + end + 2;
            return Ok(None);
        }
        if rest.starts_with(b"#[[") {
            let end = find(&self.b[at + 3..], b"]]#")
                .ok_or_else(|| self.error("unterminated #[[ text block"))?;
            text.push_str(&self.src[at + 3..at + 3 + end]);
            self.pos = at + 3 + end + 3;
            return Ok(None);
        }
        let Some((word, after)) = self.directive_word(at) else {
            text.push('#');
            self.pos += 1;
            return Ok(None);
        };
        match word {
            "set" => {
                let mut j = after;
                while self.peek_at(j) == Some(b' ') {
                    j += 1;
                }
                if self.peek_at(j) != Some(b'(') {
                    text.push_str(&self.src[at..after]);
                    self.pos = after;
                    return Ok(None);
                }
                // #set swallows the blanks before it on its line.
                let kept = text.trim_end_matches([' ', '\t']).len();
                text.truncate(kept);
                flush(text, nodes);
                self.pos = j + 1;
                self.enter()?;
                self.skip_ws();
                let target = match self.peek() {
                    Some(b'$') => self.reference(self.pos, 0)?,
                    _ => None,
                }
                .ok_or_else(|| self.error("#set needs a reference before `=`"))?;
                self.expect(b'=', "`=` in #set")?;
                let value = self.expr()?;
                self.expect(b')', "`)` to close #set")?;
                self.leave();
                self.eat_line_end();
                nodes.push(Node::Set {
                    target,
                    value,
                    at: self.base + at,
                });
                Ok(None)
            }
            "if" => {
                self.pos = after;
                let cond = self.condition("#if")?;
                flush(text, nodes);
                self.enter()?;
                let (body, mut end, mut end_at) = self.block()?;
                let mut branches = vec![(cond, body)];
                let mut otherwise = None;
                loop {
                    match end {
                        Closer::ElseIf(cond) => {
                            let (body, e, e_at) = self.block()?;
                            branches.push((cond, body));
                            end = e;
                            end_at = e_at;
                        }
                        Closer::Else => {
                            let (body, e, e_at) = self.block()?;
                            match e {
                                Closer::End => {}
                                Closer::Eof => return Err(self.error_at(at, "#if without #end")),
                                _ => {
                                    return Err(self.error_at(e_at, "#else or #elseif after #else"));
                                }
                            }
                            otherwise = Some(body);
                            break;
                        }
                        Closer::End => break,
                        Closer::Eof => return Err(self.error_at(at, "#if without #end")),
                    }
                }
                let _ = end_at;
                self.leave();
                nodes.push(Node::If {
                    branches,
                    otherwise,
                    at: self.base + at,
                });
                Ok(None)
            }
            "elseif" => {
                self.pos = after;
                let cond = self.condition("#elseif")?;
                Ok(Some(Closer::ElseIf(cond)))
            }
            "else" => {
                self.pos = after;
                self.eat_line_end();
                Ok(Some(Closer::Else))
            }
            "end" => {
                self.pos = after;
                self.eat_line_end();
                Ok(Some(Closer::End))
            }
            "foreach" => {
                self.pos = after;
                self.expect(b'(', "`(` after #foreach")?;
                self.skip_ws();
                let var = match self.peek() {
                    Some(b'$') => self.reference(self.pos, 0)?,
                    _ => None,
                };
                let var = match var {
                    Some(r) if r.segments.is_empty() => r.name,
                    _ => return Err(self.error("#foreach needs a plain `$name` before `in`")),
                };
                self.skip_ws();
                if !self.b[self.pos..].starts_with(b"in")
                    || self.peek_at(self.pos + 2).is_some_and(is_word_char)
                {
                    return Err(self.error("expected `in` in #foreach"));
                }
                self.pos += 2;
                self.enter()?;
                let iterable = self.expr()?;
                self.expect(b')', "`)` to close #foreach")?;
                self.eat_line_end();
                flush(text, nodes);
                let (body, end, end_at) = self.block()?;
                match end {
                    Closer::End => {}
                    Closer::Eof => return Err(self.error_at(at, "#foreach without #end")),
                    _ => return Err(self.error_at(end_at, "#else or #elseif inside #foreach")),
                }
                self.leave();
                nodes.push(Node::Foreach {
                    var,
                    iterable,
                    body,
                    at: self.base + at,
                });
                Ok(None)
            }
            "break" | "stop" => {
                self.pos = after;
                flush(text, nodes);
                nodes.push(if word == "break" {
                    Node::Break
                } else {
                    Node::Stop
                });
                Ok(None)
            }
            w if UNSUPPORTED.contains(&w) => {
                Err(self.error_at(at, &format!("the #{w} directive is not supported")))
            }
            _ => {
                // Not a directive: Velocity prints it as written.
                text.push_str(&self.src[at..after]);
                self.pos = after;
                Ok(None)
            }
        }
    }

    /// `( expression )` after `#if`/`#elseif`, with the closing line break swallowed.
    fn condition(&mut self, what: &str) -> R<Expr> {
        self.expect(b'(', &format!("`(` after {what}"))?;
        self.enter()?;
        let cond = self.expr()?;
        self.expect(b')', &format!("`)` to close {what}"))?;
        self.leave();
        self.eat_line_end();
        Ok(cond)
    }

    fn expr(&mut self) -> R<Expr> {
        self.enter()?;
        let e = self.binary(0);
        self.leave();
        e
    }

    /// Operators by precedence level, lowest first: `||`, `&&`, equality, relational,
    /// additive, multiplicative.
    fn operator(&mut self, level: usize) -> Option<Op> {
        const LEVELS: &[&[(&str, Op)]] = &[
            &[("||", Op::Or), ("or", Op::Or)],
            &[("&&", Op::And), ("and", Op::And)],
            &[
                ("==", Op::Eq),
                ("!=", Op::Ne),
                ("eq", Op::Eq),
                ("ne", Op::Ne),
            ],
            &[
                ("<=", Op::Le),
                (">=", Op::Ge),
                ("<", Op::Lt),
                (">", Op::Gt),
                ("le", Op::Le),
                ("ge", Op::Ge),
                ("lt", Op::Lt),
                ("gt", Op::Gt),
            ],
            &[("+", Op::Add), ("-", Op::Sub)],
            &[("*", Op::Mul), ("/", Op::Div), ("%", Op::Mod)],
        ];
        self.skip_ws();
        let rest = &self.b[self.pos..];
        for (text, op) in LEVELS[level] {
            let t = text.as_bytes();
            if rest.starts_with(t) {
                let word = t[0].is_ascii_alphabetic();
                if word && rest.get(t.len()).is_some_and(|&c| is_word_char(c)) {
                    continue;
                }
                self.pos += t.len();
                return Some(*op);
            }
        }
        None
    }

    fn binary(&mut self, level: usize) -> R<Expr> {
        if level == 6 {
            return self.unary();
        }
        let mut left = self.binary(level + 1)?;
        loop {
            let at = self.base + self.pos;
            let Some(op) = self.operator(level) else {
                return Ok(left);
            };
            let right = self.binary(level + 1)?;
            left = Expr::Binary(op, Box::new(left), Box::new(right), at);
        }
    }

    fn unary(&mut self) -> R<Expr> {
        self.skip_ws();
        let rest = &self.b[self.pos..];
        let not = if rest.starts_with(b"!") && !rest.starts_with(b"!=") {
            Some(1)
        } else if rest.starts_with(b"not") && !rest.get(3).is_some_and(|&c| is_word_char(c)) {
            Some(3)
        } else {
            None
        };
        if let Some(n) = not {
            self.pos += n;
            self.enter()?;
            let e = self.unary()?;
            self.leave();
            return Ok(Expr::Not(Box::new(e)));
        }
        if rest.starts_with(b"-") && !rest.get(1).is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
            self.enter()?;
            let e = self.unary()?;
            self.leave();
            return Ok(Expr::Neg(Box::new(e)));
        }
        self.primary()
    }

    fn primary(&mut self) -> R<Expr> {
        self.skip_ws();
        let Some(c) = self.peek() else {
            return Err(self.error("expected an expression"));
        };
        let e = match c {
            b'"' => self.double_quoted()?,
            b'\'' => self.single_quoted()?,
            b'0'..=b'9' | b'-' => self.number()?,
            b'$' => match self.reference(self.pos, 0)? {
                Some(r) => Expr::Ref(Box::new(r)),
                None => return Err(self.error("expected a reference after `$`")),
            },
            b'[' => {
                self.pos += 1;
                self.enter()?;
                let e = self.list()?;
                self.leave();
                e
            }
            b'{' => {
                self.pos += 1;
                self.enter()?;
                let e = self.map()?;
                self.leave();
                e
            }
            b'(' => {
                self.pos += 1;
                let e = self.expr()?;
                self.expect(b')', "`)`")?;
                e
            }
            _ => {
                let start = self.pos;
                while self.peek().is_some_and(is_word_char) {
                    self.pos += 1;
                }
                match &self.src[start..self.pos] {
                    "true" => Expr::Literal(Value::Bool(true)),
                    "false" => Expr::Literal(Value::Bool(false)),
                    "null" => Expr::Literal(Value::Null),
                    _ => return Err(self.error_at(start, "expected an expression")),
                }
            }
        };
        Ok(e)
    }

    fn number(&mut self) -> R<Expr> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let digits = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        if self.pos == digits {
            return Err(self.error_at(start, "expected a number"));
        }
        let mut float = false;
        // `1..3` is a range of integers, not the decimal `1.` followed by `.3`.
        if self.peek() == Some(b'.') && self.peek_at(self.pos + 1) != Some(b'.') {
            float = true;
            self.pos += 1;
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.pos += 1;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            let mut j = self.pos + 1;
            if matches!(self.peek_at(j), Some(b'+' | b'-')) {
                j += 1;
            }
            if self.peek_at(j).is_some_and(|c| c.is_ascii_digit()) {
                float = true;
                self.pos = j;
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.pos += 1;
                }
            }
        }
        let text = &self.src[start..self.pos];
        let value = match (float, text.parse::<i64>()) {
            (false, Ok(i)) => Value::Int(i),
            _ => Value::Float(text.parse::<f64>().unwrap_or(f64::NAN)),
        };
        Ok(Expr::Literal(value))
    }

    fn list(&mut self) -> R<Expr> {
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Expr::List(Vec::new()));
        }
        let first = self.expr()?;
        self.skip_ws();
        if self.b[self.pos..].starts_with(b"..") {
            self.pos += 2;
            let last = self.expr()?;
            self.expect(b']', "`]` to close the range")?;
            return Ok(Expr::Range(Box::new(first), Box::new(last)));
        }
        let mut items = vec![first];
        loop {
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    items.push(self.expr()?);
                }
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Expr::List(items));
                }
                _ => return Err(self.error("expected `,` or `]` in the list")),
            }
        }
    }

    fn map(&mut self) -> R<Expr> {
        self.skip_ws();
        let mut pairs = Vec::new();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Expr::Map(pairs));
        }
        loop {
            let key = self.expr()?;
            self.expect(b':', "`:` after the map key")?;
            let value = self.expr()?;
            pairs.push((key, value));
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Expr::Map(pairs));
                }
                _ => return Err(self.error("expected `,` or `}` in the map")),
            }
        }
    }

    /// The text of a quoted string, a doubled quote standing for one (Velocity 1.7);
    /// backslashes are not escapes.
    fn quoted(&mut self, quote: u8) -> R<(String, usize)> {
        let open = self.pos;
        self.pos += 1;
        let content = self.pos;
        let mut s = String::new();
        loop {
            let Some(n) = self.b[self.pos..].iter().position(|&c| c == quote) else {
                return Err(self.error_at(open, "unterminated string literal"));
            };
            s.push_str(&self.src[self.pos..self.pos + n]);
            self.pos += n + 1;
            if self.peek() == Some(quote) {
                s.push(quote as char);
                self.pos += 1;
            } else {
                return Ok((s, content));
            }
        }
    }

    fn single_quoted(&mut self) -> R<Expr> {
        let (s, _) = self.quoted(b'\'')?;
        Ok(Expr::Literal(Value::String(s)))
    }

    fn double_quoted(&mut self) -> R<Expr> {
        let (s, content) = self.quoted(b'"')?;
        if !s.contains(['$', '#']) {
            return Ok(Expr::Literal(Value::String(s)));
        }
        self.enter()?;
        let mut inner = Parser::new(&s, self.base + content, self.depth, self.max_depth);
        let nodes = inner.template()?;
        self.leave();
        Ok(Expr::Interpolated(nodes))
    }
}

fn flush(text: &mut String, nodes: &mut Vec<Node>) {
    if !text.is_empty() {
        nodes.push(Node::Text(std::mem::take(text)));
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
