//! `std::ops` operators on `Var`: between vars (`a * b`) and between a var and a plain number on
//! either side (`a + 1.0`, `2.0 * a`, `a / 2.0`, `10.0 / a`, `-a`). Var-var operators panic with
//! the message the fallible methods return as an error (shape mismatch, another tape).

use std::ops::{Add, Div, Mul, Neg, Sub};

use tapegrad_tensor::Float;

use crate::ops::Op;
use crate::tape::Tape;
use crate::var::Var;

macro_rules! var_var {
    ($trait:ident, $method:ident, $op:ident, $module:ident) => {
        impl<'t, E: Float> $trait<Var<'t, E>> for Var<'t, E> {
            type Output = Var<'t, E>;
            /// # Panics
            ///
            /// When the shapes do not broadcast or the vars belong to different tapes, with the
            /// error's message.
            #[track_caller]
            #[inline(always)]
            fn $method(self, rhs: Var<'t, E>) -> Var<'t, E> {
                // Two scalars take the scalar path here, without the method's `Result`: a var
                // that passes through that enum is packed into integer registers, which would
                // move a scalar chain's values through memory.
                if let Some(v) = self.scalar_binary(rhs, Op::$op, super::$module::forward) {
                    return v;
                }
                // The general path takes and gives ids: no var crosses the call, for the same
                // reason.
                #[track_caller]
                #[inline(never)]
                fn general<'t, E: Float>(
                    tape: &'t Tape<E>,
                    a: u32,
                    other: &'t Tape<E>,
                    b: u32,
                ) -> u32 {
                    match Var::$method(Var::at(tape, a), Var::at(other, b)) {
                        Ok(v) => v.index() as u32,
                        Err(e) => panic!("{e}"),
                    }
                }
                let (a, b) = (self.index() as u32, rhs.index() as u32);
                Var::at(self.tape(), general(self.tape(), a, rhs.tape(), b))
            }
        }
    };
}

var_var!(Add, add, Add, add);
var_var!(Sub, sub, Sub, sub);
var_var!(Mul, mul, Mul, mul);
var_var!(Div, div, Div, div);

impl<'t, E: Float> Add<E> for Var<'t, E> {
    type Output = Var<'t, E>;
    #[inline]
    fn add(self, c: E) -> Var<'t, E> {
        self.affine(E::ONE, c)
    }
}

impl<'t, E: Float> Sub<E> for Var<'t, E> {
    type Output = Var<'t, E>;
    #[inline]
    fn sub(self, c: E) -> Var<'t, E> {
        self.affine(E::ONE, -c)
    }
}

impl<'t, E: Float> Mul<E> for Var<'t, E> {
    type Output = Var<'t, E>;
    #[inline]
    fn mul(self, c: E) -> Var<'t, E> {
        self.affine(c, E::ZERO)
    }
}

impl<'t, E: Float> Div<E> for Var<'t, E> {
    type Output = Var<'t, E>;
    #[inline]
    fn div(self, c: E) -> Var<'t, E> {
        self.affine(E::ONE / c, E::ZERO)
    }
}

impl<'t, E: Float> Neg for Var<'t, E> {
    type Output = Var<'t, E>;
    #[inline]
    fn neg(self) -> Var<'t, E> {
        Var::neg(self)
    }
}

macro_rules! scalar_lhs {
    ($t:ty) => {
        impl<'t> Add<Var<'t, $t>> for $t {
            type Output = Var<'t, $t>;
            #[inline]
            fn add(self, x: Var<'t, $t>) -> Var<'t, $t> {
                x.affine(1.0, self)
            }
        }
        impl<'t> Sub<Var<'t, $t>> for $t {
            type Output = Var<'t, $t>;
            #[inline]
            fn sub(self, x: Var<'t, $t>) -> Var<'t, $t> {
                x.affine(-1.0, self)
            }
        }
        impl<'t> Mul<Var<'t, $t>> for $t {
            type Output = Var<'t, $t>;
            #[inline]
            fn mul(self, x: Var<'t, $t>) -> Var<'t, $t> {
                x.affine(self, 0.0)
            }
        }
        impl<'t> Div<Var<'t, $t>> for $t {
            type Output = Var<'t, $t>;
            #[inline]
            fn div(self, x: Var<'t, $t>) -> Var<'t, $t> {
                x.rdiv_scalar(self)
            }
        }
    };
}

scalar_lhs!(f32);
scalar_lhs!(f64);
