//! The words of C that carry meaning in a head; every other identifier is taken for a macro.

use super::tokens::{Kind, Tok};

/// Words that are C (or GNU C) and never a function's or parameter's name.
pub fn is_keyword(w: &[u8]) -> bool {
    matches!(
        w,
        b"auto"
            | b"break"
            | b"case"
            | b"char"
            | b"const"
            | b"continue"
            | b"default"
            | b"do"
            | b"double"
            | b"else"
            | b"enum"
            | b"extern"
            | b"float"
            | b"for"
            | b"goto"
            | b"if"
            | b"inline"
            | b"int"
            | b"long"
            | b"register"
            | b"restrict"
            | b"return"
            | b"short"
            | b"signed"
            | b"sizeof"
            | b"static"
            | b"struct"
            | b"switch"
            | b"typedef"
            | b"union"
            | b"unsigned"
            | b"void"
            | b"volatile"
            | b"while"
            | b"_Bool"
            | b"_Complex"
            | b"_Imaginary"
            | b"_Atomic"
            | b"_Noreturn"
            | b"_Thread_local"
            | b"_Static_assert"
            | b"_Alignof"
            | b"_Generic"
            | b"bool"
            | b"__restrict"
            | b"__restrict__"
            | b"__const"
            | b"__volatile__"
            | b"__volatile"
            | b"__inline"
            | b"__inline__"
            | b"__signed__"
            | b"__signed"
            | b"__extension__"
            | b"__int128"
            | b"__thread"
            | b"_Float128"
            | b"__float128"
            | b"_Float16"
            | b"_Float32"
            | b"_Float64"
            | b"__complex__"
    ) || is_attribute(w)
}

/// Words followed by a parenthesized argument that is not a declarator.
pub fn is_attribute(w: &[u8]) -> bool {
    matches!(
        w,
        b"__attribute__"
            | b"__attribute"
            | b"__declspec"
            | b"__asm__"
            | b"__asm"
            | b"asm"
            | b"_Alignas"
            | b"alignas"
            | b"__typeof__"
            | b"__typeof"
            | b"typeof"
            | b"__alignof__"
            | b"_Pragma"
    )
}

pub fn word<'t>(text: &'t [u8], t: &Tok) -> &'t [u8] {
    &text[t.start..t.end]
}

pub fn is_name_word(text: &[u8], t: &Tok) -> bool {
    t.kind == Kind::Ident && !is_keyword(word(text, t))
}
