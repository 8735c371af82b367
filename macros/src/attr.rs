//! The attribute's arguments, parsed into [`Args`].
//!
//! `pre = path`, `test = path` (the same as `pre`), `post = path`, each as often as wanted, and at
//! most one `probability = 0.01`, one `timeout_ms = 500` and one `outermost`. Every error carries the span of the
//! token that caused it.

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprPath, Ident, Lit, Token};

/// Probability of a site when the attribute does not say: one call in a hundred. `INVITE_PROBABILITY`
/// and `INVITE_RATES` override it at run time.
pub(crate) const DEFAULT_PROBABILITY: f64 = 0.01;

/// A test named in the attribute.
pub(crate) struct TestRef {
    /// The test function, as written (`checks::balance`, `Self::check`, `check::<T>`).
    pub path: ExprPath,
    /// Its name in the journal: the path with the spaces `quote` puts in removed.
    pub name: String,
}

/// The parsed `#[in_vivo(...)]` arguments.
pub(crate) struct Args {
    pub pre: Vec<TestRef>,
    pub post: Vec<TestRef>,
    pub probability: f64,
    /// `0` means the runtime's default (`INVITE_TIMEOUT_MS`).
    pub timeout_ms: u32,
    /// `outermost`: sample only the thread's outermost call of the function.
    pub outermost: Option<Ident>,
}

/// One `key = value` pair (or the bare flag `outermost`), before its meaning is checked.
struct Arg {
    key: Ident,
    value: Option<Expr>,
}

/// The arguments that take no value.
const FLAGS: &[&str] = &["outermost"];

impl Parse for Arg {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let key: Ident = input.parse()?;
        if FLAGS.contains(&key.to_string().as_str()) {
            if input.peek(Token![=]) {
                return Err(syn::Error::new(
                    input.parse::<Token![=]>()?.span,
                    format!("`{key}` takes no value: write `{key}` alone"),
                ));
            }
            return Ok(Arg { key, value: None });
        }
        if !input.peek(Token![=]) {
            return Err(syn::Error::new(
                key.span(),
                format!("expected `{key} = ...`: every argument has a value"),
            ));
        }
        input.parse::<Token![=]>()?;
        let value: Expr = input.parse()?;
        Ok(Arg {
            key,
            value: Some(value),
        })
    }
}

impl Parse for Args {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let list = Punctuated::<Arg, Token![,]>::parse_terminated(input)?;
        let mut args = Args {
            pre: Vec::new(),
            post: Vec::new(),
            probability: DEFAULT_PROBABILITY,
            timeout_ms: 0,
            outermost: None,
        };
        let mut probability_seen = false;
        let mut timeout_seen = false;
        for Arg { key, value } in list {
            let Some(value) = value else {
                once(&mut args.outermost.is_some(), &key)?;
                args.outermost = Some(key);
                continue;
            };
            match key.to_string().as_str() {
                "pre" | "test" => args.pre.push(test_ref(value)?),
                "post" => args.post.push(test_ref(value)?),
                "probability" => {
                    once(&mut probability_seen, &key)?;
                    args.probability = probability(&value)?;
                }
                "timeout_ms" => {
                    once(&mut timeout_seen, &key)?;
                    args.timeout_ms = timeout_ms(&value)?;
                }
                other => {
                    return Err(syn::Error::new(
                        key.span(),
                        format!(
                            "unknown argument `{other}`: expected `pre`, `test`, `post`, \
                             `probability`, `timeout_ms` or `outermost`"
                        ),
                    ))
                }
            }
        }
        if args.pre.is_empty() && args.post.is_empty() {
            return Err(syn::Error::new(
                Span::call_site(),
                "#[in_vivo] needs at least one test: `pre = path`, `test = path` or `post = path`",
            ));
        }
        Ok(args)
    }
}

fn once(seen: &mut bool, key: &Ident) -> syn::Result<()> {
    if std::mem::replace(seen, true) {
        return Err(syn::Error::new(
            key.span(),
            format!("`{key}` is given more than once"),
        ));
    }
    Ok(())
}

fn test_ref(value: Expr) -> syn::Result<TestRef> {
    match value {
        Expr::Path(path) if path.attrs.is_empty() => {
            let name = quote::quote!(#path).to_string().replace(' ', "");
            if name.contains('\0') {
                return Err(syn::Error::new(
                    path.span(),
                    "a test path cannot contain NUL",
                ));
            }
            Ok(TestRef { path, name })
        }
        other => Err(syn::Error::new(
            other.span(),
            "expected the path of a test function, like `pre = checks::balance_is_positive`",
        )),
    }
}

fn probability(value: &Expr) -> syn::Result<f64> {
    let p = match literal(value) {
        Some(Lit::Float(f)) => f.base10_parse::<f64>().ok(),
        Some(Lit::Int(i)) => i.base10_parse::<f64>().ok(),
        _ => None,
    };
    match p {
        Some(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(syn::Error::new(
            value.span(),
            "`probability` must be a number from 0 to 1, like `probability = 0.01`",
        )),
    }
}

fn timeout_ms(value: &Expr) -> syn::Result<u32> {
    match literal(value) {
        Some(Lit::Int(i)) if i.suffix().is_empty() || i.suffix() == "u32" => {
            i.base10_parse::<u32>().map_err(|_| timeout_error(value))
        }
        _ => Err(timeout_error(value)),
    }
}

fn timeout_error(value: &Expr) -> syn::Error {
    syn::Error::new(
        value.span(),
        "`timeout_ms` must be a whole number of milliseconds (at most 4294967295), like \
         `timeout_ms = 500`; 0 means the runtime's default",
    )
}

fn literal(value: &Expr) -> Option<&Lit> {
    match value {
        Expr::Lit(l) => Some(&l.lit),
        _ => None,
    }
}
