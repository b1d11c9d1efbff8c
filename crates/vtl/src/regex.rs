//! A small regular-expression engine for Java's `String.replaceAll`, `replaceFirst`,
//! `matches` and `split`, the forms templates use them in: literals, `\`-escapes, `.`,
//! classes (`[a-z]`, `[^"]`, `\d \w \s` and their negations), `^`, `$`, and the greedy
//! quantifiers `*`, `+`, `?`. Groups, alternation and `{n,m}` are refused.
//!
//! Matching simulates the automaton over sets of states, so time is linear in the input
//! per start position (no backtracking blow-up); it finds the longest match at the
//! leftmost position, which is what a greedy Java pattern without alternation finds too.

#[derive(Debug, Clone)]
enum ClassItem {
    Range(char, char),
    Digit(bool),
    Word(bool),
    Space(bool),
}

#[derive(Debug, Clone)]
enum Atom {
    Char(char),
    Any,
    Class(bool, Vec<ClassItem>),
    Start,
    End,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Count {
    One,
    Optional,
    Many,
}

/// A compiled pattern.
#[derive(Debug, Clone)]
pub(crate) struct Regex {
    pieces: Vec<(Atom, Count)>,
}

fn class_escape(c: char) -> Option<ClassItem> {
    Some(match c {
        'd' => ClassItem::Digit(true),
        'D' => ClassItem::Digit(false),
        'w' => ClassItem::Word(true),
        'W' => ClassItem::Word(false),
        's' => ClassItem::Space(true),
        'S' => ClassItem::Space(false),
        _ => return None,
    })
}

fn literal_escape(c: char) -> char {
    match c {
        't' => '\t',
        'n' => '\n',
        'r' => '\r',
        'f' => '\u{c}',
        'e' => '\u{1b}',
        other => other,
    }
}

impl ClassItem {
    fn matches(&self, c: char) -> bool {
        match *self {
            ClassItem::Range(a, b) => (a..=b).contains(&c),
            ClassItem::Digit(yes) => c.is_ascii_digit() == yes,
            ClassItem::Word(yes) => (c.is_ascii_alphanumeric() || c == '_') == yes,
            ClassItem::Space(yes) => {
                matches!(c, ' ' | '\t' | '\n' | '\r' | '\u{b}' | '\u{c}') == yes
            }
        }
    }
}

impl Atom {
    fn matches(&self, c: char) -> bool {
        match self {
            Atom::Char(x) => *x == c,
            Atom::Any => !matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}'),
            Atom::Class(negated, items) => items.iter().any(|i| i.matches(c)) != *negated,
            Atom::Start | Atom::End => false,
        }
    }
}

impl Regex {
    /// Compiles `pattern`, or says which unsupported feature it uses.
    pub(crate) fn new(pattern: &str) -> Result<Regex, String> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut pieces: Vec<(Atom, Count)> = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            let atom = match c {
                '\\' => {
                    let e = *chars
                        .get(i)
                        .ok_or_else(|| "pattern ends with a lone backslash".to_owned())?;
                    i += 1;
                    match class_escape(e) {
                        Some(item) => Atom::Class(false, vec![item]),
                        None if e.is_ascii_alphanumeric() && !"tnrfe".contains(e) => {
                            return Err(format!("unsupported regex escape \\{e}"));
                        }
                        None => Atom::Char(literal_escape(e)),
                    }
                }
                '.' => Atom::Any,
                '^' => Atom::Start,
                '$' => Atom::End,
                '[' => {
                    let negated = chars.get(i) == Some(&'^');
                    if negated {
                        i += 1;
                    }
                    let mut items = Vec::new();
                    let mut first = true;
                    loop {
                        let Some(&c) = chars.get(i) else {
                            return Err("unclosed character class".into());
                        };
                        i += 1;
                        if c == ']' && !first {
                            break;
                        }
                        first = false;
                        let lo = if c == '\\' {
                            let e = *chars
                                .get(i)
                                .ok_or_else(|| "unclosed character class".to_owned())?;
                            i += 1;
                            if let Some(item) = class_escape(e) {
                                items.push(item);
                                continue;
                            }
                            literal_escape(e)
                        } else if c == '[' {
                            return Err("nested character classes are not supported".into());
                        } else {
                            c
                        };
                        if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|&n| n != ']')
                        {
                            let mut hi = chars[i + 1];
                            i += 2;
                            if hi == '\\' {
                                hi = literal_escape(
                                    *chars
                                        .get(i)
                                        .ok_or_else(|| "unclosed character class".to_owned())?,
                                );
                                i += 1;
                            }
                            items.push(ClassItem::Range(lo, hi));
                        } else {
                            items.push(ClassItem::Range(lo, lo));
                        }
                    }
                    Atom::Class(negated, items)
                }
                '(' | ')' | '|' | '{' | '}' => {
                    return Err(format!("regex feature `{c}` is not supported"));
                }
                '*' | '+' | '?' => return Err(format!("dangling quantifier `{c}`")),
                other => Atom::Char(other),
            };
            let count = match chars.get(i) {
                Some('*') => Count::Many,
                Some('+') => Count::One,
                Some('?') => Count::Optional,
                _ => {
                    pieces.push((atom, Count::One));
                    continue;
                }
            };
            let plus = chars[i] == '+';
            i += 1;
            if matches!(chars.get(i), Some('?' | '+')) {
                return Err("lazy and possessive quantifiers are not supported".into());
            }
            if matches!(atom, Atom::Start | Atom::End) {
                return Err("quantified anchor".into());
            }
            if plus {
                pieces.push((atom.clone(), Count::One));
                pieces.push((atom, Count::Many));
            } else {
                pieces.push((atom, count));
            }
        }
        Ok(Regex { pieces })
    }

    /// Adds state `k` and everything reachable from it without reading a character.
    fn close(&self, set: &mut [bool], k: usize, pos: usize, len: usize) {
        let mut k = k;
        loop {
            if set[k] {
                return;
            }
            set[k] = true;
            let Some((atom, count)) = self.pieces.get(k) else {
                return;
            };
            let skip = match atom {
                Atom::Start => pos == 0,
                Atom::End => pos == len,
                _ => *count != Count::One,
            };
            if !skip {
                return;
            }
            k += 1;
        }
    }

    /// The end of the longest match starting at `start` (if any), and whether a match
    /// ends exactly at the end of the input. `budget` is charged per state step.
    fn run(&self, text: &[char], start: usize, budget: &mut u64) -> Option<(Option<usize>, bool)> {
        let n = self.pieces.len();
        let mut set = vec![false; n + 1];
        self.close(&mut set, 0, start, text.len());
        let mut longest = set[n].then_some(start);
        let mut pos = start;
        while pos < text.len() && set.iter().any(|&s| s) {
            let c = text[pos];
            let mut next = vec![false; n + 1];
            for (k, _) in set.iter().enumerate().take(n).filter(|(_, on)| **on) {
                *budget = budget.checked_sub(1)?;
                let (atom, count) = &self.pieces[k];
                if atom.matches(c) {
                    let to = if *count == Count::Many { k } else { k + 1 };
                    self.close(&mut next, to, pos + 1, text.len());
                }
            }
            set = next;
            pos += 1;
            if set[n] {
                longest = Some(pos);
            }
        }
        Some((longest, pos == text.len() && set[n]))
    }

    /// Whether the whole text matches (`String.matches`); `None` when out of budget.
    pub(crate) fn full_match(&self, text: &str, budget: &mut u64) -> Option<bool> {
        let chars: Vec<char> = text.chars().collect();
        self.run(&chars, 0, budget).map(|(_, whole)| whole)
    }

    /// The non-overlapping leftmost-longest matches, as char ranges, at most `limit` of
    /// them; `None` when out of budget.
    pub(crate) fn find_all(
        &self,
        chars: &[char],
        limit: usize,
        budget: &mut u64,
    ) -> Option<Vec<(usize, usize)>> {
        let mut found = Vec::new();
        let mut at = 0;
        while at <= chars.len() && found.len() < limit {
            match self.run(chars, at, budget)?.0 {
                Some(end) => {
                    found.push((at, end));
                    at = if end > at { end } else { end + 1 };
                }
                None => at += 1,
            }
        }
        Some(found)
    }
}

/// Expands a Java replacement string: `\x` is `x`, `$0` the match; other groups do not
/// exist in this engine.
pub(crate) fn expand(replacement: &str, matched: &str, out: &mut String) -> Result<(), String> {
    let mut it = replacement.chars();
    while let Some(c) = it.next() {
        match c {
            '\\' => out.push(it.next().ok_or("replacement ends with a backslash")?),
            '$' => match it.next() {
                Some('0') => out.push_str(matched),
                _ => return Err("group references other than $0 are not supported".into()),
            },
            c => out.push(c),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replace_all(text: &str, pattern: &str, with: &str) -> String {
        let re = Regex::new(pattern).expect("pattern");
        let chars: Vec<char> = text.chars().collect();
        let mut budget = 1_000_000;
        let found = re
            .find_all(&chars, usize::MAX, &mut budget)
            .expect("budget");
        let mut out = String::new();
        let mut last = 0;
        for (s, e) in found {
            out.extend(&chars[last..s]);
            let m: String = chars[s..e].iter().collect();
            expand(with, &m, &mut out).expect("replacement");
            last = e;
        }
        out.extend(&chars[last..]);
        out
    }

    #[test]
    fn java_like_replacements() {
        assert_eq!(replace_all(r"it\'s", r"\\'", "'"), "it's");
        assert_eq!(replace_all("a  b   c", " +", " "), "a b c");
        assert_eq!(replace_all("x1y22", r"\d", "#"), "x#y##");
        assert_eq!(replace_all("ab", "x*", "-"), "-a-b-");
        assert_eq!(replace_all("a.b", r"\.", "/"), "a/b");
        assert_eq!(replace_all("say \"hi\"", "[\"]", "'"), "say 'hi'");
        assert_eq!(replace_all("abc", "^a", "A"), "Abc");
    }

    #[test]
    fn full_match_and_refusals() {
        let mut b = 1_000_000;
        assert_eq!(
            Regex::new("[a-z]+").expect("re").full_match("abc", &mut b),
            Some(true)
        );
        assert_eq!(
            Regex::new("[a-z]+").expect("re").full_match("abc1", &mut b),
            Some(false)
        );
        assert!(Regex::new("(a|b)").is_err());
        assert!(Regex::new("a{2}").is_err());
    }
}
