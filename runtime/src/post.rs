//! The two shapes of a Rust post test: `test(receiver, &R)` or `test(receiver, refs..., &R)`,
//! where `refs` are the function's shared-reference parameters (`&T`, `&str`, `&[T]`) in order
//! and the receiver is there only for `&self` / `&mut self` methods.
//!
//! The attribute cannot see a test's signature (it names a path), so for a function that has
//! reference parameters it passes everything, `(head, refs, &R)`, through [`PostTest`], and the
//! shape is chosen by the test's arity: of the two impls that could apply, the one whose
//! `FnOnce` bound does not fit is discarded. A test that fits neither is a type error at its path
//! in the attribute, worded by `on_unimplemented`.

/// A post test that takes `&R` after the receiver, without the reference parameters.
pub struct Short;
/// A post test that takes the reference parameters between the receiver and `&R`.
pub struct Long;

/// A post test called with what the function's call left: `full` is `(head, refs, &R)`, `head`
/// `()` or `(receiver,)`, `refs` a tuple of the function's reference parameters.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not fit as a post test of this function",
    label = "a post test takes the receiver (for `&self` / `&mut self` methods), then optionally \
             the function's reference parameters in order, then `&R` (the return value)"
)]
pub trait PostTest<Full, Shape> {
    /// What the test returns (a [`TestResult`](crate::TestResult)).
    type Output;
    /// Call the test with the part of `full` its shape takes.
    fn call(self, full: Full) -> Self::Output;
}

impl<'r, F, O, Refs, R: ?Sized> PostTest<((), Refs, &'r R), Short> for F
where
    F: FnOnce(&'r R) -> O,
{
    type Output = O;
    fn call(self, (_, _, r): ((), Refs, &'r R)) -> O {
        self(r)
    }
}

impl<'r, F, O, S, Refs, R: ?Sized> PostTest<((S,), Refs, &'r R), Short> for F
where
    F: FnOnce(S, &'r R) -> O,
{
    type Output = O;
    fn call(self, ((s,), _, r): ((S,), Refs, &'r R)) -> O {
        self(s, r)
    }
}

macro_rules! long {
    ($($a:ident)+) => {
        impl<'r, F, O, R: ?Sized, $($a),+> PostTest<((), ($($a,)+), &'r R), Long> for F
        where
            F: FnOnce($($a,)+ &'r R) -> O,
        {
            type Output = O;
            #[allow(non_snake_case)]
            fn call(self, (_, ($($a,)+), r): ((), ($($a,)+), &'r R)) -> O {
                self($($a,)+ r)
            }
        }

        impl<'r, F, O, S, R: ?Sized, $($a),+> PostTest<((S,), ($($a,)+), &'r R), Long> for F
        where
            F: FnOnce(S, $($a,)+ &'r R) -> O,
        {
            type Output = O;
            #[allow(non_snake_case)]
            fn call(self, ((s,), ($($a,)+), r): ((S,), ($($a,)+), &'r R)) -> O {
                self(s, $($a,)+ r)
            }
        }
    };
}

long!(A1);
long!(A1 A2);
long!(A1 A2 A3);
long!(A1 A2 A3 A4);
long!(A1 A2 A3 A4 A5);
long!(A1 A2 A3 A4 A5 A6);
long!(A1 A2 A3 A4 A5 A6 A7);
long!(A1 A2 A3 A4 A5 A6 A7 A8);
