//! Expansion tests: what the attribute generates, read as text. What the generated code does is
//! tested by compiling and running it (`tests/run_pass`, `tests/ui`).

use crate::in_vivo_impl;
use proc_macro2::TokenStream;

fn expand(attr: &str, item: &str, enabled: bool) -> String {
    let attr: TokenStream = attr.parse().unwrap();
    let item: TokenStream = item.parse().unwrap();
    in_vivo_impl(attr, item, enabled).to_string()
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

const WITHDRAW: &str = "fn withdraw(&mut self, amount: u64) -> Result<u64, E> { \
                        if amount == 0 { return Err(E); } self.n -= amount; Ok(self.n) }";

#[test]
fn one_site_per_test_with_its_phase() {
    let out = expand("pre = a, test = b, post = c", WITHDRAW, true);
    assert_eq!(count(&out, "Site :: new"), 3, "{out}");
    assert_eq!(count(&out, "Phase :: Pre"), 2, "{out}");
    assert_eq!(count(&out, "Phase :: Post"), 1, "{out}");
    assert_eq!(count(&out, "run_test"), 3, "{out}");
    assert!(out.contains("\"a\\0\""), "test names end in NUL: {out}");
    assert!(out.contains("0.01f64"), "default probability: {out}");
    assert!(out.contains("0u32"), "default timeout: {out}");
}

#[test]
fn the_body_is_kept_token_for_token() {
    let body = "{ if amount == 0 { return Err (E) ; } self . n -= amount ; Ok (self . n) }";
    for args in ["pre = a", "post = a"] {
        for enabled in [true, false] {
            let out = expand(args, WITHDRAW, enabled);
            assert_eq!(count(&out, body), 1, "{args}, enabled {enabled}: {out}");
        }
    }
}

#[test]
fn methods_name_their_type_free_functions_do_not() {
    let method = expand("pre = a", WITHDRAW, true);
    assert!(method.contains("type_name :: < Self >"), "{method}");
    let constructor = expand("pre = a", "fn new(n: u64) -> Self { Self { n } }", true);
    assert!(
        constructor.contains("type_name :: < Self >"),
        "{constructor}"
    );
    let free = expand("pre = a", "fn f(n: u64) -> u64 { n }", true);
    assert!(!free.contains("type_name"), "{free}");
    assert!(free.contains("Option :: None"), "{free}");
}

#[test]
fn tests_get_the_arguments_and_post_tests_the_receiver_and_return_value() {
    let out = expand("pre = a, post = b", WITHDRAW, true);
    assert!(out.contains("a (self , amount)"), "{out}");
    assert!(out.contains("b (self , & __invite_ret)"), "{out}");
    let by_value = expand("post = b", "fn into(self) -> u8 { 0 }", true);
    assert!(by_value.contains("b (& __invite_ret)"), "{by_value}");
}

#[test]
fn patterns_get_hidden_names_and_are_destructured_in_the_body() {
    let out = expand(
        "pre = a",
        "fn f((x, y): (u8, u8), _: u8) -> u8 { x + y }",
        true,
    );
    assert!(
        out.contains("fn f (__invite_arg0 : (u8 , u8) , __invite_arg1 : u8)"),
        "{out}"
    );
    assert!(out.contains("a (__invite_arg0 , __invite_arg1)"), "{out}");
    assert!(out.contains("let (x , y) = __invite_arg0 ;"), "{out}");
    assert!(out.contains("let _ = __invite_arg1 ;"), "{out}");
}

#[test]
fn probability_and_timeout_are_passed_on() {
    let out = expand("pre = a, probability = 1, timeout_ms = 500", WITHDRAW, true);
    assert!(out.contains("1f64"), "{out}");
    assert!(out.contains("500u32"), "{out}");
}

#[test]
fn off_leaves_no_runtime_code_but_still_names_the_tests() {
    let out = expand("pre = a, post = b", WITHDRAW, false);
    // The runtime is named only in the never-run branches that type-check the tests.
    for runtime_code in ["Site", "sample", "enter", "run_test", "static"] {
        assert!(!out.contains(runtime_code), "{runtime_code}: {out}");
    }
    assert_eq!(count(&out, "__invite_verdict ()"), 2, "{out}");
    assert!(out.contains("if false"), "{out}");
    assert!(out.contains("a (self , amount)"), "{out}");
    assert!(out.contains("b (self , & __invite_ret)"), "{out}");
}

#[test]
fn a_body_that_does_not_parse_goes_through_untouched() {
    let item = "fn f(x: u8) -> u8 { let y = x + ; y }";
    let out = expand("pre = a", item, true);
    assert_eq!(out, item.parse::<TokenStream>().unwrap().to_string());
}

#[test]
fn errors_keep_the_item() {
    let out = expand("pre = a", "const fn f() {}", true);
    assert!(out.contains("compile_error"), "{out}");
    assert!(out.contains("const fn f () { }"), "{out}");
    let out = expand("rate = 1", "fn f() {}", true);
    assert!(out.contains("compile_error"), "{out}");
    assert!(out.contains("fn f () { }"), "{out}");
}
