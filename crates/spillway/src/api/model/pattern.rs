//! The `pattern` constraints of AWS's service models, matched as AWS (Java's
//! `String.matches`) matches them: the whole value, not a substring.
//!
//! spillway has no regex dependency, and the models use a small dialect (classes,
//! groups, alternation, `* + ? {m,n}`, `\d \w \S \p{Print}`, `\xNN`, `\uNNNN` with
//! surrogate pairs), so this compiles each pattern once into an NFA and runs it as a
//! Thompson simulation: time linear in the value times the pattern size, whatever a
//! client sends (no backtracking blow-up on a megabyte-long value).

use thiserror::Error;

#[derive(Debug, Error)]
#[error("unsupported pattern {pattern:?}: {reason}")]
pub struct PatternError {
    pattern: String,
    reason: &'static str,
}

/// A set of characters: inclusive ranges, possibly negated.
#[derive(Debug, Clone)]
struct Class {
    ranges: Vec<(char, char)>,
    negated: bool,
}

impl Class {
    fn of(ranges: Vec<(char, char)>) -> Self {
        Self {
            ranges,
            negated: false,
        }
    }

    fn matches(&self, c: char) -> bool {
        self.ranges.iter().any(|&(a, b)| a <= c && c <= b) != self.negated
    }
}

/// The parsed pattern.
#[derive(Debug, Clone)]
enum Node {
    Class(Class),
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Repeat {
        node: Box<Node>,
        min: u32,
        max: Option<u32>,
    },
    /// `^` or `$`: the match is already anchored at both ends.
    Empty,
}

#[derive(Debug, Clone)]
enum Inst {
    Class(Class),
    Split(usize, usize),
    Jmp(usize),
    Match,
}

/// A compiled pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    prog: Vec<Inst>,
    /// The common shape `[class]+` (names, ids), matched by one scan without the NFA:
    /// the class and the fewest characters.
    simple: Option<(Class, u32)>,
}

/// More program than this means a pattern the models never use; refuse it at load.
const MAX_PROGRAM: usize = 20_000;

impl Pattern {
    pub fn compile(source: &str) -> Result<Self, PatternError> {
        let err = |reason| PatternError {
            pattern: source.to_owned(),
            reason,
        };
        let chars: Vec<char> = source.chars().collect();
        let mut p = Parser { s: &chars, i: 0 };
        let node = p.alt().map_err(err)?;
        if p.i != chars.len() {
            return Err(err("unbalanced parenthesis"));
        }
        let simple = match &node {
            Node::Concat(parts) if parts.len() == 1 => match &parts[0] {
                Node::Repeat {
                    node: inner,
                    min,
                    max: None,
                } => match inner.as_ref() {
                    Node::Class(c) => Some((c.clone(), *min)),
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        };
        let mut prog = Vec::new();
        emit(&node, &mut prog);
        prog.push(Inst::Match);
        if prog.len() > MAX_PROGRAM {
            return Err(err("too large"));
        }
        Ok(Self {
            source: source.to_owned(),
            prog,
            simple,
        })
    }

    /// The pattern as the model writes it (and AWS's message shows it).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the whole of `s` matches.
    pub fn is_match(&self, s: &str) -> bool {
        if let Some((class, min)) = &self.simple {
            let mut count = 0u32;
            for c in s.chars() {
                if !class.matches(c) {
                    return false;
                }
                count = count.saturating_add(1);
            }
            return count >= *min;
        }
        let n = self.prog.len();
        let mut current = Vec::with_capacity(n);
        let mut next = Vec::with_capacity(n);
        let mut seen = vec![usize::MAX; n];
        let mut step = 0usize;
        self.add(&mut current, &mut seen, step, 0);
        for c in s.chars() {
            if current.is_empty() {
                return false;
            }
            step += 1;
            next.clear();
            for &pc in &current {
                if let Inst::Class(cls) = &self.prog[pc]
                    && cls.matches(c)
                {
                    self.add(&mut next, &mut seen, step, pc + 1);
                }
            }
            std::mem::swap(&mut current, &mut next);
        }
        current
            .iter()
            .any(|&pc| matches!(self.prog[pc], Inst::Match))
    }

    /// Adds `pc` and everything reachable from it without reading a character.
    fn add(&self, list: &mut Vec<usize>, seen: &mut [usize], step: usize, pc: usize) {
        let mut stack = vec![pc];
        while let Some(pc) = stack.pop() {
            if seen[pc] == step {
                continue;
            }
            seen[pc] = step;
            match self.prog[pc] {
                Inst::Jmp(t) => stack.push(t),
                Inst::Split(a, b) => {
                    stack.push(b);
                    stack.push(a);
                }
                Inst::Class(_) | Inst::Match => list.push(pc),
            }
        }
    }
}

fn emit(node: &Node, prog: &mut Vec<Inst>) {
    match node {
        Node::Empty => {}
        Node::Class(c) => prog.push(Inst::Class(c.clone())),
        Node::Concat(parts) => parts.iter().for_each(|p| emit(p, prog)),
        Node::Alt(options) => {
            // split L1, next; L1: a; jmp end; next: split L2, ...
            let mut jumps = Vec::new();
            for (i, o) in options.iter().enumerate() {
                if i + 1 < options.len() {
                    let split = prog.len();
                    prog.push(Inst::Split(split + 1, 0));
                    emit(o, prog);
                    jumps.push(prog.len());
                    prog.push(Inst::Jmp(0));
                    let after = prog.len();
                    prog[split] = Inst::Split(split + 1, after);
                } else {
                    emit(o, prog);
                }
            }
            let end = prog.len();
            for j in jumps {
                prog[j] = Inst::Jmp(end);
            }
        }
        Node::Repeat { node, min, max } => {
            for _ in 0..*min {
                emit(node, prog);
            }
            match max {
                None => {
                    let split = prog.len();
                    prog.push(Inst::Split(split + 1, 0));
                    emit(node, prog);
                    prog.push(Inst::Jmp(split));
                    let after = prog.len();
                    prog[split] = Inst::Split(split + 1, after);
                }
                Some(max) => {
                    let mut splits = Vec::new();
                    for _ in *min..*max {
                        splits.push(prog.len());
                        prog.push(Inst::Split(0, 0));
                        emit(node, prog);
                    }
                    let end = prog.len();
                    for s in splits {
                        prog[s] = Inst::Split(s + 1, end);
                    }
                }
            }
        }
    }
}

struct Parser<'a> {
    s: &'a [char],
    i: usize,
}

type P<T> = Result<T, &'static str>;

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }

    fn next(&mut self) -> P<char> {
        let c = self.peek().ok_or("unexpected end")?;
        self.i += 1;
        Ok(c)
    }

    fn alt(&mut self) -> P<Node> {
        let mut options = vec![self.concat()?];
        while self.peek() == Some('|') {
            self.i += 1;
            options.push(self.concat()?);
        }
        Ok(if options.len() == 1 {
            options.pop().expect("one")
        } else {
            Node::Alt(options)
        })
    }

    fn concat(&mut self) -> P<Node> {
        let mut parts = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let atom = self.atom()?;
            parts.push(self.quantified(atom)?);
        }
        Ok(Node::Concat(parts))
    }

    fn quantified(&mut self, atom: Node) -> P<Node> {
        let (min, max) = match self.peek() {
            Some('*') => (0, None),
            Some('+') => (1, None),
            Some('?') => (0, Some(1)),
            Some('{') => {
                self.i += 1;
                let min = self.number()?;
                let max = if self.peek() == Some(',') {
                    self.i += 1;
                    if self.peek() == Some('}') {
                        None
                    } else {
                        Some(self.number()?)
                    }
                } else {
                    Some(min)
                };
                if self.next()? != '}' {
                    return Err("bad repetition");
                }
                if max.is_some_and(|m| m < min || m > 1000) {
                    return Err("bad repetition bounds");
                }
                return Ok(Node::Repeat {
                    node: Box::new(atom),
                    min,
                    max,
                });
            }
            _ => return Ok(atom),
        };
        self.i += 1;
        Ok(Node::Repeat {
            node: Box::new(atom),
            min,
            max,
        })
    }

    fn number(&mut self) -> P<u32> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        self.s[start..self.i]
            .iter()
            .collect::<String>()
            .parse()
            .map_err(|_| "bad number")
    }

    fn atom(&mut self) -> P<Node> {
        match self.next()? {
            '(' => {
                let inner = self.alt()?;
                if self.next()? != ')' {
                    return Err("unbalanced parenthesis");
                }
                Ok(inner)
            }
            '[' => self.class().map(Node::Class),
            '.' => Ok(Node::Class(Class {
                ranges: vec![('\n', '\n'), ('\r', '\r')],
                negated: true,
            })),
            '^' | '$' => Ok(Node::Empty),
            '\\' => self.escape().map(Node::Class),
            c => Ok(Node::Class(Class::of(vec![(c, c)]))),
        }
    }

    /// After a backslash: a class or one (possibly escaped) character.
    fn escape(&mut self) -> P<Class> {
        let c = self.next()?;
        Ok(match c {
            'd' => Class::of(vec![('0', '9')]),
            'w' => Class::of(vec![('a', 'z'), ('A', 'Z'), ('0', '9'), ('_', '_')]),
            's' => Class::of(WHITESPACE.to_vec()),
            'S' => Class {
                ranges: WHITESPACE.to_vec(),
                negated: true,
            },
            'p' => {
                let name = self.braced()?;
                match name.as_str() {
                    // Java's POSIX classes are ASCII-only.
                    "Print" => Class::of(vec![(' ', '~')]),
                    "Alnum" => Class::of(vec![('a', 'z'), ('A', 'Z'), ('0', '9')]),
                    _ => return Err("unsupported \\p class"),
                }
            }
            _ => {
                let ch = self.escaped_char(c)?;
                Class::of(vec![(ch, ch)])
            }
        })
    }

    fn braced(&mut self) -> P<String> {
        if self.next()? != '{' {
            return Err("expected {");
        }
        let mut name = String::new();
        loop {
            match self.next()? {
                '}' => return Ok(name),
                c => name.push(c),
            }
        }
    }

    fn hex(&mut self, digits: usize) -> P<u32> {
        let mut v = 0u32;
        for _ in 0..digits {
            v = v * 16 + self.next()?.to_digit(16).ok_or("bad hex escape")?;
        }
        Ok(v)
    }

    /// The character an escape stands for; `\uD83D\uDE00` pairs become one character.
    fn escaped_char(&mut self, c: char) -> P<char> {
        Ok(match c {
            't' => '\t',
            'n' => '\n',
            'r' => '\r',
            'x' => char::from_u32(self.hex(2)?).ok_or("bad \\x")?,
            'u' => {
                let hi = self.hex(4)?;
                if (0xD800..0xDC00).contains(&hi)
                    && self.s.get(self.i) == Some(&'\\')
                    && self.s.get(self.i + 1) == Some(&'u')
                {
                    self.i += 2;
                    let lo = self.hex(4)?;
                    let cp = 0x10000 + ((hi - 0xD800) << 10) + (lo.wrapping_sub(0xDC00) & 0x3FF);
                    char::from_u32(cp).ok_or("bad surrogate pair")?
                } else {
                    // A lone surrogate cannot occur in a Rust string: map it to a
                    // character that bounds ranges the same way.
                    match char::from_u32(hi) {
                        Some(ch) => ch,
                        None if hi < 0xDC00 => '\u{D7FF}',
                        None => '\u{E000}',
                    }
                }
            }
            c if c.is_ascii_alphanumeric() => return Err("unsupported escape"),
            c => c,
        })
    }

    fn class(&mut self) -> P<Class> {
        let mut negated = false;
        if self.peek() == Some('^') {
            negated = true;
            self.i += 1;
        }
        let mut ranges = Vec::new();
        let mut first = true;
        loop {
            let c = self.next()?;
            if c == ']' && !first {
                break;
            }
            first = false;
            let lo = if c == '\\' {
                let e = self.next()?;
                match e {
                    'd' | 'w' | 's' | 'S' | 'p' => {
                        self.i -= 1;
                        let cls = self.escape()?;
                        if cls.negated {
                            return Err("negated class inside a class");
                        }
                        ranges.extend(cls.ranges);
                        continue;
                    }
                    _ => self.escaped_char(e)?,
                }
            } else {
                c
            };
            if self.peek() == Some('-') && self.s.get(self.i + 1).is_some_and(|&n| n != ']') {
                self.i += 1;
                let h = self.next()?;
                let hi = if h == '\\' {
                    let e = self.next()?;
                    self.escaped_char(e)?
                } else {
                    h
                };
                ranges.push((lo, hi));
            } else {
                ranges.push((lo, lo));
            }
        }
        Ok(Class { ranges, negated })
    }
}

/// Java's `\s`: `[ \t\n\x0B\f\r]`.
const WHITESPACE: [(char, char); 2] = [(' ', ' '), ('\t', '\r')];

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        Pattern::compile(p).unwrap().is_match(s)
    }

    #[test]
    fn the_models_patterns_match_as_java_does() {
        assert!(m("[a-zA-Z0-9_.-]+", "a-b.c_9"));
        assert!(!m("[a-zA-Z0-9_.-]+", ""));
        assert!(!m("[a-zA-Z0-9_.-]+", "a b"));
        assert!(m("0|([1-9]\\d{0,38})", "0"));
        assert!(m("0|([1-9]\\d{0,38})", &format!("1{}", "0".repeat(38))));
        assert!(!m("0|([1-9]\\d{0,38})", &format!("1{}", "0".repeat(39))));
        assert!(!m("0|([1-9]\\d{0,38})", "01"));
        assert!(!m("0|([1-9]\\d{0,38})", ""));
        let arn = "arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+";
        assert!(m(arn, "arn:aws:kinesis:us-east-1:000000000000:stream/s"));
        assert!(!m(arn, "arn:aws:kinesis:us-east-1:0000:stream/s"));
        assert!(m("\\p{Print}+", "abc ~"));
        assert!(!m("\\p{Print}+", "a\u{e9}"));
        let xml = "[\\u0020-\\uD7FF\\uE000-\\uFFFD\\uD800\\uDC00-\\uDBFF\\uDFFF\\r\\n\\t]*";
        assert!(m(xml, "ok \u{1F600}\t"));
        assert!(!m(xml, "\u{1}"));
        assert!(m("[\\x20-\\x21\\x23-\\x2B\\x2D-\\x7E]*", "ab"));
        assert!(!m("[\\x20-\\x21\\x23-\\x2B\\x2D-\\x7E]*", "a,b"));
        assert!(m("^[^\\$]+$", "abc"));
        assert!(!m("^[^\\$]+$", "a$c"));
        assert!(m(
            "[A-Za-z0-9][A-Za-z0-9\\-\\_\\.]{0,126}[A-Za-z0-9]",
            "a-b"
        ));
    }

    #[test]
    fn a_huge_value_is_matched_in_linear_time() {
        let s = "a".repeat(1 << 20);
        assert!(!m("arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+", &s));
    }
}
