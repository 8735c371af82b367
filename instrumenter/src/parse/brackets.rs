//! Matching brackets in a head's or a `.ic` item's tokens, with a bounded depth.
//!
//! Brackets nest at most [`MAX_NESTING`] deep: deeper input is refused with a located error, so no
//! input can exhaust the stack.

use super::head::HeadError;
use super::tokens::{Kind, Tok};

/// How deep `(`, `[` and `{` may nest in a head or a `.ic` item.
pub const MAX_NESTING: usize = 256;

/// For each token, the index of the bracket that matches it (open ↔ close), if it is one.
pub struct Brackets(Vec<Option<usize>>);

impl Brackets {
    pub fn new(text: &[u8], toks: &[Tok]) -> Result<Brackets, HeadError> {
        let mut pair = vec![None; toks.len()];
        let mut stack: Vec<usize> = Vec::new();
        for (i, t) in toks.iter().enumerate() {
            let Kind::Punct(p) = t.kind else { continue };
            match p {
                b'(' | b'[' | b'{' => {
                    if stack.len() >= MAX_NESTING {
                        return Err(HeadError {
                            at: t.start,
                            message: format!("brackets nest deeper than {MAX_NESTING} levels"),
                        });
                    }
                    stack.push(i);
                }
                b')' | b']' | b'}' => {
                    let open = stack.pop().filter(|&o| {
                        let want = match p {
                            b')' => b'(',
                            b']' => b'[',
                            _ => b'{',
                        };
                        text[toks[o].start] == want
                    });
                    let Some(o) = open else {
                        return Err(HeadError {
                            at: t.start,
                            message: format!("`{}` without a matching opening bracket", p as char),
                        });
                    };
                    pair[o] = Some(i);
                    pair[i] = Some(o);
                }
                _ => {}
            }
        }
        if let Some(&o) = stack.last() {
            return Err(HeadError {
                at: toks[o].start,
                message: format!("this `{}` is never closed", text[toks[o].start] as char),
            });
        }
        Ok(Brackets(pair))
    }

    /// The close of the group opened at `i` (or `i` itself for any other token).
    pub fn end(&self, toks: &[Tok], i: usize) -> usize {
        match toks[i].kind {
            Kind::Punct(b'(' | b'[' | b'{') => self.0[i].unwrap_or(i),
            _ => i,
        }
    }

    /// The bracket that matches token `i`, if it is one and is matched.
    pub fn pair(&self, i: usize) -> Option<usize> {
        self.0[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::tokens::lex;

    #[test]
    fn nesting_is_bounded() {
        let code = format!("int f{}int a{}", "(".repeat(10_000), ")".repeat(10_000));
        let toks = lex(code.as_bytes(), 0..code.len()).unwrap();
        let e = Brackets::new(code.as_bytes(), &toks).err().unwrap();
        assert!(e.message.contains("deeper than"), "{e:?}");
    }
}
