//! RFC 8941 Structured Field Dictionaries, as far as targeted cache-control
//! fields (RFC 9213) need them: every member parsed and checked, values kept
//! only where a cache directive can use them.
//!
//! A field that does not parse as a whole is invalid, and RFC 9213 says an
//! invalid targeted field is treated as absent: hence a strict parser that
//! returns `None` on the first error instead of skipping a bad member.

use std::collections::HashMap;

/// The value of one dictionary member, reduced to what directives use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    /// An integer (`max-age=60`).
    Integer(i64),
    /// A boolean: a bare key is `true` (`no-store`), `?0` is `false`.
    Boolean(bool),
    /// A string (`private="set-cookie"`), unescaped.
    String(String),
    /// Anything else (token, decimal, byte sequence, inner list): valid, unused.
    Other,
}

/// Parses a whole field value (all lines joined with `,`) as a dictionary.
/// `None` when it is not one; an empty value is `Some` of nothing.
pub(crate) fn parse_dictionary(input: &[u8]) -> Option<Vec<(String, Item)>> {
    let mut p = Parser { b: input, i: 0 };
    p.skip_sp();
    let mut members: Vec<(String, Item)> = Vec::new();
    if p.at_end() {
        return Some(members);
    }
    loop {
        let key = p.key()?;
        let item = if p.eat(b'=') {
            if p.peek() == Some(b'(') {
                p.inner_list()?;
                Item::Other
            } else {
                p.bare_item()?
            }
        } else {
            Item::Boolean(true)
        };
        p.parameters()?;
        members.push((key, item));
        p.skip_ows();
        if p.at_end() {
            return Some(last_wins(members));
        }
        if !p.eat(b',') {
            return None;
        }
        p.skip_ows();
        if p.at_end() {
            return None;
        }
    }
}

/// A repeated key keeps its first position and its last value (RFC 8941
/// section 4.2.2), in one pass.
fn last_wins(members: Vec<(String, Item)>) -> Vec<(String, Item)> {
    let mut position: HashMap<String, usize> = HashMap::with_capacity(members.len());
    let mut out: Vec<(String, Item)> = Vec::with_capacity(members.len());
    for (key, item) in members {
        match position.get(&key) {
            Some(&i) => out[i].1 = item,
            None => {
                position.insert(key.clone(), out.len());
                out.push((key, item));
            }
        }
    }
    out
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn at_end(&self) -> bool {
        self.i >= self.b.len()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn skip_sp(&mut self) {
        while self.eat(b' ') {}
    }

    fn skip_ows(&mut self) {
        while self.eat(b' ') || self.eat(b'\t') {}
    }

    fn key(&mut self) -> Option<String> {
        let start = self.i;
        match self.peek()? {
            b'a'..=b'z' | b'*' => self.i += 1,
            _ => return None,
        }
        while let Some(b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b'*') = self.peek() {
            self.i += 1;
        }
        Some(String::from_utf8_lossy(&self.b[start..self.i]).into_owned())
    }

    fn parameters(&mut self) -> Option<()> {
        while self.eat(b';') {
            self.skip_sp();
            self.key()?;
            if self.eat(b'=') {
                self.bare_item()?;
            }
        }
        Some(())
    }

    fn inner_list(&mut self) -> Option<()> {
        if !self.eat(b'(') {
            return None;
        }
        loop {
            self.skip_sp();
            if self.eat(b')') {
                return self.parameters();
            }
            self.bare_item()?;
            self.parameters()?;
            match self.peek()? {
                b' ' | b')' => {}
                _ => return None,
            }
        }
    }

    fn bare_item(&mut self) -> Option<Item> {
        match self.peek()? {
            b'-' | b'0'..=b'9' => self.number(),
            b'"' => self.string().map(Item::String),
            b'?' => {
                self.i += 1;
                let value = match self.peek()? {
                    b'0' => false,
                    b'1' => true,
                    _ => return None,
                };
                self.i += 1;
                Some(Item::Boolean(value))
            }
            b':' => {
                self.i += 1;
                while let Some(c) = self.peek() {
                    self.i += 1;
                    match c {
                        b':' => return Some(Item::Other),
                        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' | b'=' => {}
                        _ => return None,
                    }
                }
                None
            }
            b'A'..=b'Z' | b'a'..=b'z' | b'*' => {
                self.i += 1;
                while let Some(c) = self.peek() {
                    if is_tchar(c) || c == b':' || c == b'/' {
                        self.i += 1;
                    } else {
                        break;
                    }
                }
                Some(Item::Other)
            }
            _ => None,
        }
    }

    fn number(&mut self) -> Option<Item> {
        let negative = self.eat(b'-');
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        let digits = self.i - start;
        if digits == 0 {
            return None;
        }
        if self.eat(b'.') {
            let frac = self.i;
            while let Some(b'0'..=b'9') = self.peek() {
                self.i += 1;
            }
            let frac_digits = self.i - frac;
            return (digits <= 12 && (1..=3).contains(&frac_digits)).then_some(Item::Other);
        }
        if digits > 15 {
            return None;
        }
        let text = std::str::from_utf8(&self.b[start..self.i]).ok()?;
        let value: i64 = text.parse().ok()?;
        Some(Item::Integer(if negative { -value } else { value }))
    }

    fn string(&mut self) -> Option<String> {
        if !self.eat(b'"') {
            return None;
        }
        let mut out = String::new();
        loop {
            let c = self.peek()?;
            self.i += 1;
            match c {
                b'"' => return Some(out),
                b'\\' => {
                    let next = self.peek()?;
                    if next != b'"' && next != b'\\' {
                        return None;
                    }
                    self.i += 1;
                    out.push(char::from(next));
                }
                0x20..=0x7e => out.push(char::from(c)),
                _ => return None,
            }
        }
    }
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(s: &str) -> Option<Vec<(String, Item)>> {
        parse_dictionary(s.as_bytes())
    }

    #[test]
    fn cache_directives_parse() {
        assert_eq!(
            parsed("max-age=60, no-store, private=\"set-cookie\", x=?0").unwrap(),
            vec![
                ("max-age".into(), Item::Integer(60)),
                ("no-store".into(), Item::Boolean(true)),
                ("private".into(), Item::String("set-cookie".into())),
                ("x".into(), Item::Boolean(false)),
            ]
        );
        assert_eq!(parsed("").unwrap(), vec![]);
        assert_eq!(
            parsed("a=1;p=2, b=(1 2);q, c=tok/en:x, d=1.5, e=:aGk=:").map(|m| m.len()),
            Some(5)
        );
        assert_eq!(
            parsed("max-age=1, max-age=2").unwrap(),
            vec![("max-age".into(), Item::Integer(2))]
        );
    }

    #[test]
    fn invalid_fields_are_rejected_whole() {
        for bad in [
            "max-age=,,;;\"",
            "Max-Age=60",
            "max-age=60,",
            "max-age=\"60",
            "a=1 b=2",
            "max-age=1234567890123456",
            "a=?2",
            "a=\u{e9}",
            ",a",
        ] {
            assert_eq!(parsed(bad), None, "{bad}");
        }
    }
}
