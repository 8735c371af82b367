//! Code generation: the function under test, wrapped.
//!
//! The user's body is never parsed into statements or rewritten: it is emitted as the same tokens,
//! inside a block (pre tests only) or a closure / async block (when there are post tests, which
//! need its value), so `return`, `?`, labels and `.await` keep their meaning and rustc's errors
//! still point into it. What this module adds around it, per test:
//!
//! ```text
//! static SITE: Site = Site::new(function, test, file, line, phase, probability, timeout_ms);
//! #[used] #[link_section = "invite_sites"] static LISTED: &Site = &SITE;   // for the summary
//! if SITE.sample() && enter(&SITE, owner) { run_test(move || test(args...)) }   // returns `!`
//! ```
//!
//! With the `enabled` feature off, the same test calls are emitted in `if false` branches that
//! never run: the tests are type-checked and count as used, and no runtime code is left.

use crate::attr::{Args, TestRef};
use proc_macro2::{Delimiter, Group, Ident, Literal, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Attribute, FnArg, Pat, ReturnType, Signature, Token, Type, Visibility};

/// A function with a body, kept as tokens: `attrs vis sig { body }`.
pub(crate) struct InVivoFn {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub sig: Signature,
    pub body: Group,
}

impl Parse for InVivoFn {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        let sig: Signature = input.parse()?;
        if input.peek(Token![;]) {
            let semi: Token![;] = input.parse()?;
            return Err(syn::Error::new(
                semi.span,
                "#[in_vivo] needs a function body: put it on the implementation, not on the \
                 declaration",
            ));
        }
        let body: Group = input.parse()?;
        if body.delimiter() != Delimiter::Brace {
            return Err(syn::Error::new(body.span(), "expected the function body"));
        }
        Ok(InVivoFn {
            attrs,
            vis,
            sig,
            body,
        })
    }
}

/// The user's body, the same tokens, as the block nested in the generated one. Its braces keep
/// their place (rustc's errors about the block still point at them) but are marked as the
/// macro's: a body on one line (`fn f(x: u32) -> u32 { x + 1 }`) is otherwise a block whose only
/// content is a block, and rustc's `unused_braces` warns in the user's crate about braces the
/// user did not write twice.
fn nested(body: Group) -> Group {
    let mut g = Group::new(Delimiter::Brace, body.stream());
    g.set_span(body.span().resolved_at(Span::mixed_site()));
    g
}

/// How a method takes `self`, which decides what its post tests receive.
#[derive(Clone, Copy, PartialEq)]
enum Receiver {
    None,
    /// `&self`, `&mut self`, `self: &Self`, ...: post tests get it before `&R`.
    Ref,
    /// `self`, `mut self`, `self: Box<Self>`, ...: consumed by the body, so post tests only get `&R`.
    Value,
}

/// The function's parameters as the tests see them.
struct Params {
    receiver: Receiver,
    /// Each parameter's name, in order, after the receiver; patterns get hidden names.
    names: Vec<Ident>,
    /// `let pattern = hidden;` for each parameter whose pattern was replaced by a hidden name.
    rebinds: Vec<TokenStream>,
    /// The names of the shared-reference parameters (`&T`, `&str`, `&[T]`), which post tests may
    /// also take.
    refs: Vec<Ident>,
}

/// Rewrite parameters that are patterns (`(a, b): (u8, u8)`, `_`) to hidden names so they can be
/// passed on whole; the body gets the pattern back through a `let`.
fn params(sig: &mut Signature) -> Params {
    let mut receiver = Receiver::None;
    let mut names = Vec::new();
    let mut rebinds = Vec::new();
    let mut refs = Vec::new();
    for (i, input) in sig.inputs.iter_mut().enumerate() {
        match input {
            FnArg::Receiver(r) => {
                receiver = if matches!(&*r.ty, Type::Reference(_)) {
                    Receiver::Ref
                } else {
                    Receiver::Value
                };
            }
            FnArg::Typed(pt) => match &*pt.pat {
                Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => {
                    names.push(p.ident.clone());
                    shared_ref(&pt.ty, &p.ident, &mut refs);
                }
                _ => {
                    // Call-site hygiene, as if the user had written the name: a name from another
                    // context would make rustc report a test's type error at the whole attribute.
                    let hidden = format_ident!("__invite_arg{}", i, span = Span::call_site());
                    let pat =
                        std::mem::replace(&mut *pt.pat, Pat::Verbatim(hidden.to_token_stream()));
                    rebinds.push(quote!(let #pat = #hidden;));
                    shared_ref(&pt.ty, &hidden, &mut refs);
                    names.push(hidden);
                }
            },
        }
    }
    Params {
        receiver,
        names,
        rebinds,
        refs,
    }
}

/// Note `name` when its type is a shared reference.
fn shared_ref(ty: &Type, name: &Ident, refs: &mut Vec<Ident>) {
    if matches!(ty, Type::Reference(r) if r.mutability.is_none()) {
        refs.push(name.clone());
    }
}

/// Where in vivo testing cannot apply, an error on the token that says why.
fn check(args: &Args, sig: &Signature) -> syn::Result<()> {
    let mut errors: Vec<syn::Error> = Vec::new();
    if let Some(c) = &sig.constness {
        errors.push(syn::Error::new(
            c.span,
            "#[in_vivo] cannot apply to a `const fn`: its tests start pods at run time",
        ));
    }
    if let Some(v) = &sig.variadic {
        errors.push(syn::Error::new(
            v.span(),
            "#[in_vivo] cannot pass C variadic arguments on to a test",
        ));
    }
    if let (Some(flag), Some(a)) = (&args.outermost, &sig.asyncness) {
        let mut e = syn::Error::new(
            flag.span(),
            "`outermost` counts calls per thread, and an `async fn` may move between threads: \
             put `outermost` on a synchronous function",
        );
        e.combine(syn::Error::new(a.span, "this function is `async`"));
        errors.push(e);
    }
    if let ReturnType::Type(_, ty) = &sig.output {
        if matches!(**ty, Type::Never(_)) {
            for t in &args.post {
                errors.push(syn::Error::new(
                    t.path.span(),
                    "a post test needs a return value, and this function never returns",
                ));
            }
        }
    }
    match errors.into_iter().reduce(|mut a, b| {
        a.combine(b);
        a
    }) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Generate the wrapped function. `enabled` is the crate feature of the same name.
pub(crate) fn expand(args: &Args, f: InVivoFn, enabled: bool) -> syn::Result<TokenStream> {
    check(args, &f.sig)?;
    let InVivoFn {
        attrs,
        vis,
        mut sig,
        body,
    } = f;
    let body = nested(body);
    let p = params(&mut sig);
    let ret_ty = nameable_return(&sig.output);
    let ret = Ident::new("__invite_ret", Span::call_site());

    let pre_calls: Vec<_> = args.pre.iter().map(|t| call(t, &p, None)).collect();
    let post_calls: Vec<_> = args.post.iter().map(|t| call(t, &p, Some(&ret))).collect();
    let rebinds = &p.rebinds;

    let new_body = if enabled {
        let site = Sites::new(args, &sig, p.receiver);
        let pre = args
            .pre
            .iter()
            .zip(&pre_calls)
            .map(|(t, c)| site.guard(t, c, quote!(Pre)));
        let post: Vec<_> = args
            .post
            .iter()
            .zip(&post_calls)
            .map(|(t, c)| site.guard(t, c, quote!(Post)))
            .collect();
        let depth = outermost_depth(args);
        if post.is_empty() {
            quote!({ #depth #(#pre)* #(#rebinds)* #body })
        } else {
            let annot = ret_ty.as_ref().map(|t| quote!(: #t));
            // The return type is written into the closure (or, for an async block, fixed by a
            // first `return` that never runs) so that a wrong `return` in the body is reported
            // in the body, not at the attribute.
            let value = match (&ret_ty, sig.asyncness.is_some()) {
                (Some(t), true) => {
                    let typed = quote_spanned!(return_span(&sig.output)=> __invite_never::<#t>());
                    quote!(async {
                        if false {
                            fn __invite_never<R>() -> R { loop {} }
                            return #typed;
                        }
                        #body
                    }.await)
                }
                (None, true) => quote!(async #body.await),
                (t, false) => {
                    let arrow = t.as_ref().map(|t| quote!(-> #t));
                    // Passing the closure where `FnOnce` is expected makes it `FnOnce`, so a body
                    // that returns a reborrow of `&mut self` still compiles.
                    quote!({
                        #[inline(always)]
                        fn __invite_once<R, F: ::core::ops::FnOnce() -> R>(f: F) -> R { f() }
                        __invite_once(|| #arrow #body)
                    })
                }
            };
            quote!({
                #depth
                #(#pre)*
                #(#rebinds)*
                let #ret #annot = #value;
                #(#post)*
                #ret
            })
        }
    } else {
        let pre = args.pre.iter().zip(&pre_calls).map(|(t, c)| {
            let c = verdict(t, c);
            quote!(#[allow(unreachable_code)] if false { let _ = #c; ::core::unreachable!() })
        });
        // A post test can only be checked against a return type that can be written down.
        let ret = &ret;
        let post = ret_ty.iter().flat_map(|t| {
            args.post.iter().zip(&post_calls).map(move |(test, c)| {
                let c = verdict(test, c);
                quote!(#[allow(unreachable_code)] if false {
                    let #ret: #t = ::core::unreachable!();
                    let _ = #c;
                })
            })
        });
        quote!({ #(#pre)* #(#post)* #(#rebinds)* #body })
    };
    Ok(quote!(#(#attrs)* #vis #sig #new_body))
}

/// `test(args...)`, spanned at the test's path so a signature that does not fit is reported there.
fn call(t: &TestRef, p: &Params, ret: Option<&Ident>) -> TokenStream {
    let span = t.path.span();
    let here = |id: &Ident| {
        let mut id = id.clone();
        id.set_span(span);
        id
    };
    let this = Ident::new("self", span);
    let mut args = Vec::new();
    match ret {
        None => {
            if p.receiver != Receiver::None {
                args.push(this.to_token_stream());
            }
            args.extend(p.names.iter().map(|n| here(n).to_token_stream()));
        }
        Some(r) if !p.refs.is_empty() && p.refs.len() <= MAX_POST_REFS => {
            return post_with_refs(t, p, r);
        }
        Some(r) => {
            if p.receiver == Receiver::Ref {
                args.push(this.to_token_stream());
            }
            let r = here(r);
            args.push(quote_spanned!(span=> &#r));
        }
    }
    let path = &t.path;
    quote_spanned!(span=> #path(#(#args),*))
}

/// The most reference parameters a post test can take (`PostTest`'s impls in the runtime).
const MAX_POST_REFS: usize = 8;

/// A post test of a function with reference parameters, which may take them or not: the runtime's
/// `PostTest` picks the call by the test's arity, and a test that fits neither shape is an error
/// at its path.
fn post_with_refs(t: &TestRef, p: &Params, ret: &Ident) -> TokenStream {
    let span = t.path.span();
    let here = |id: &Ident| {
        let mut id = id.clone();
        id.set_span(span);
        id
    };
    let head = if p.receiver == Receiver::Ref {
        let this = Ident::new("self", span);
        quote_spanned!(span=> (#this,))
    } else {
        quote_spanned!(span=> ())
    };
    let refs = p.refs.iter().map(here);
    let ret = here(ret);
    let path = &t.path;
    quote_spanned!(span=> ::invite::__private::PostTest::call(#path, (#head, (#(#refs,)*), &#ret)))
}

/// `outermost`: the thread's depth in this function, held for the whole call (one thread-local
/// per function, only where asked for).
fn outermost_depth(args: &Args) -> Option<TokenStream> {
    args.outermost.as_ref()?;
    let depth = Ident::new("__INVITE_DEPTH", Span::mixed_site());
    let guard = Ident::new("__invite_depth", Span::mixed_site());
    Some(quote! {
        ::std::thread_local! {
            static #depth: ::core::cell::Cell<u32> = const { ::core::cell::Cell::new(0) };
        }
        let #guard = ::invite::__private::Outermost::enter(&#depth);
    })
}

/// The test's verdict from its call: an `async fn` test's future runs on the pod's executor, an
/// error with `Display` becomes its message (see the runtime's `test_kind`). Emitted the same
/// way with the feature off, so both builds accept and reject the same tests.
fn verdict(t: &TestRef, call: &TokenStream) -> TokenStream {
    let p = quote_spanned!(t.path.span()=> ::invite::__private);
    quote_spanned!(t.path.span()=> {
        #[allow(unused_imports)]
        use #p::{ViaDisplay as _, ViaFuture as _, ViaTestResult as _, ViaValue as _};
        #[allow(clippy::let_unit_value)]
        let __invite_test = #call;
        #p::probe(&__invite_test).__invite_kind().run(__invite_test, |__invite_out| {
            #p::probe(&__invite_out).__invite_verdict().verdict(__invite_out)
        })
    })
}

/// What every site of one function shares.
struct Sites {
    function: String,
    line: TokenStream,
    owner: TokenStream,
    sample: TokenStream,
    probability: Literal,
    timeout_ms: Literal,
    /// `outermost`: the condition before sampling.
    outer: Option<TokenStream>,
}

impl Sites {
    fn new(args: &Args, sig: &Signature, receiver: Receiver) -> Sites {
        let method = receiver != Receiver::None || mentions_self(sig.to_token_stream());
        let owner = if method {
            quote!(::core::option::Option::Some(
                ::core::any::type_name::<Self>()
            ))
        } else {
            quote!(::core::option::Option::None)
        };
        // Methods name their `Self` type on the slow path too, for the summary record.
        let sample = if method {
            quote!(sample_with_owner(|| ::core::any::type_name::<Self>()))
        } else {
            quote!(sample())
        };
        Sites {
            function: sig.ident.unraw().to_string(),
            line: quote_spanned!(sig.ident.span()=> ::core::line!()),
            owner,
            sample,
            probability: Literal::f64_suffixed(args.probability),
            timeout_ms: Literal::u32_suffixed(args.timeout_ms),
            outer: args.outermost.as_ref().map(|_| {
                let guard = Ident::new("__invite_depth", Span::mixed_site());
                quote!(#guard.is_outermost() &&)
            }),
        }
    }

    /// The site record of one test and the branch that starts it.
    fn guard(&self, t: &TestRef, call: &TokenStream, phase: TokenStream) -> TokenStream {
        let Sites {
            function,
            line,
            owner,
            sample,
            probability,
            timeout_ms,
            outer,
        } = self;
        let site = Ident::new("__INVITE_SITE", Span::mixed_site());
        let listed = Ident::new("__INVITE_LISTED", Span::mixed_site());
        let test = format!("{}\0", t.name);
        let span = t.path.span();
        let call = verdict(t, call);
        let run = quote_spanned!(span=> ::invite::__private::run_test(move || #call));
        quote!({
            static #site: ::invite::__private::Site = ::invite::__private::Site::new(
                ::core::concat!(::core::module_path!(), "::", #function, "\0"),
                #test,
                ::core::concat!(::core::file!(), "\0"),
                #line,
                ::invite::__private::Phase::#phase,
                #probability,
                #timeout_ms,
            );
            // Listed, so that the summary has the site's row even if the function is never
            // called (the runtime reads the section only when it writes the summary).
            #[used]
            #[unsafe(link_section = "invite_sites")]
            static #listed: &::invite::__private::Site = &#site;
            if #outer #site.#sample && ::invite::__private::enter(&#site, #owner) {
                #run;
            }
        })
    }
}

/// The return type as a type that can be written in a `let`: not when it contains `impl Trait`.
fn nameable_return(output: &ReturnType) -> Option<TokenStream> {
    match output {
        ReturnType::Default => Some(quote!(())),
        ReturnType::Type(_, ty) if has_ident(ty.to_token_stream(), "impl") => None,
        ReturnType::Type(_, ty) => Some(ty.to_token_stream()),
    }
}

/// Where the declared return type is written (its first token: spans do not join on stable).
fn return_span(output: &ReturnType) -> Span {
    match output {
        ReturnType::Default => Span::call_site(),
        ReturnType::Type(_, ty) => ty.span(),
    }
}

fn mentions_self(tokens: TokenStream) -> bool {
    has_ident(tokens, "Self")
}

fn has_ident(tokens: TokenStream, name: &str) -> bool {
    tokens.into_iter().any(|t| match t {
        TokenTree::Ident(i) => i == name,
        TokenTree::Group(g) => has_ident(g.stream(), name),
        _ => false,
    })
}
