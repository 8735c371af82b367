//! The lexical pieces of C the scan and the tokenizer share: where a comment, a literal, a
//! number or a preprocessor line ends, and fast byte searches.

use super::is_ident_byte;

/// The first byte at or after `from` that may change the scan's state inside a body (a
/// newline does too, but only through the blanks before a `#`: see [`super::scan::scan`]), or the end. Most
/// of a C file is bodies: sixteen bytes at a time, in a loop the compiler vectorizes.
pub(crate) fn body_stop(text: &[u8], from: usize) -> usize {
    let mut at = from;
    while let Some(chunk) = text.get(at..at + 16) {
        let any = chunk.iter().fold(false, |any, &b| {
            any | (b == b'{')
                | (b == b'}')
                | (b == b'"')
                | (b == b'\'')
                | (b == b'/')
                | (b == b'#')
                | (b == b'\\')
        });
        if any {
            break;
        }
        at += 16;
    }
    at + text[at..]
        .iter()
        .position(|&b| BODY_STOP[b as usize])
        .unwrap_or(text.len() - at)
}

/// Bytes that may change the scan's state inside a body, but for newlines.
const BODY_STOP: [bool; 256] = {
    let mut t = [false; 256];
    let stops = *b"{}\"'/#\\";
    let mut k = 0;
    while k < stops.len() {
        t[stops[k] as usize] = true;
        k += 1;
    }
    t
};

/// The name a `#define` or `#undef` line names, and where.
pub(crate) fn defined_name(text: &[u8], hash: usize, end: usize) -> (usize, &[u8]) {
    let mut j = hash + 1;
    while j < end && matches!(text[j], b' ' | b'\t') {
        j += 1;
    }
    while j < end && text[j].is_ascii_alphabetic() {
        j += 1;
    }
    while j < end && matches!(text[j], b' ' | b'\t') {
        j += 1;
    }
    let start = j;
    while j < end && is_ident_byte(text[j]) {
        j += 1;
    }
    (start, &text[start..j])
}

/// End (offset of the terminating newline, or EOF) of the directive starting at `#`, and its
/// keyword (`if`, `include`, ...).
pub(crate) fn directive(text: &[u8], hash: usize) -> (usize, &[u8]) {
    let n = text.len();
    let mut j = hash + 1;
    while j < n && (text[j] == b' ' || text[j] == b'\t') {
        j += 1;
    }
    let kw_start = j;
    while j < n && text[j].is_ascii_alphanumeric() {
        j += 1;
    }
    let keyword = &text[kw_start..j];
    while j < n {
        match text[j] {
            b'\n' => break,
            b'\\' if text.get(j + 1) == Some(&b'\n') => j += 2,
            b'\\' if text.get(j + 1) == Some(&b'\r') && text.get(j + 2) == Some(&b'\n') => j += 3,
            b'/' if text.get(j + 1) == Some(&b'*') => match find(text, j + 2, b"*/") {
                Some(e) => j = e + 2,
                None => return (n, keyword),
            },
            b'/' if text.get(j + 1) == Some(&b'/') => return (line_comment_end(text, j), keyword),
            b'"' | b'\'' => j = literal_end(text, j),
            _ => j += 1,
        }
    }
    (j, keyword)
}

/// Offset of the newline that ends a `//` comment (continuations with `\` included).
pub(crate) fn line_comment_end(text: &[u8], start: usize) -> usize {
    let mut j = start;
    while j < text.len() {
        if text[j] == b'\n' && !(j > 0 && text[j - 1] == b'\\') {
            return j;
        }
        j += 1;
    }
    j
}

/// One past the closing quote of a string or character literal; a literal left open ends at the
/// newline (as in `#error don't`), which it does not consume.
pub(crate) fn literal_end(text: &[u8], start: usize) -> usize {
    let quote = text[start];
    let mut j = start + 1;
    while j < text.len() {
        match text[j] {
            b'\\' => j += 2,
            b'\n' => return j,
            c if c == quote => return j + 1,
            _ => j += 1,
        }
    }
    text.len()
}

/// One past a preprocessing number (`1.0`, `0x1f`, `1e-4`, `500ms`).
pub(crate) fn number_end(text: &[u8], start: usize) -> usize {
    let mut j = start;
    while j < text.len() {
        let c = text[j];
        let sign = matches!(c, b'+' | b'-')
            && j > start
            && matches!(text[j - 1], b'e' | b'E' | b'p' | b'P');
        if sign || is_ident_byte(c) || c == b'.' {
            j += 1;
        } else {
            break;
        }
    }
    j
}

/// The first `byte` at or after `from`, eight bytes at a time (comments are a good part of
/// many C files, and their end is searched for byte by byte otherwise).
pub(crate) fn find_byte(text: &[u8], from: usize, byte: u8) -> Option<usize> {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let pattern = u64::from_ne_bytes([byte; 8]);
    let mut at = from;
    while let Some(word) = text.get(at..at + 8) {
        let x = u64::from_le_bytes(word.try_into().expect("8 bytes")) ^ pattern;
        // The high bit of each byte that was `byte` (exact: no carries between bytes).
        let hits = !(((x & LOW7).wrapping_add(LOW7)) | x) & !LOW7;
        if hits != 0 {
            return Some(at + (hits.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    text.get(at..)?
        .iter()
        .position(|&b| b == byte)
        .map(|p| at + p)
}

/// The first `needle` at or after `from` (a scan for its first byte, then a compare).
pub(crate) fn find(text: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let mut at = from;
    while at + needle.len() <= text.len() {
        let p = find_byte(&text[..=text.len() - needle.len()], at, first)?;
        if &text[p + 1..p + needle.len()] == rest {
            return Some(p);
        }
        at = p + 1;
    }
    None
}
