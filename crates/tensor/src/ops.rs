//! `std::ops` operators for convenience. They panic with the same message the fallible methods
//! return as an error; use `add`, `mul`, ... to handle shape errors.

use std::ops::{Add, Div, Mul, Neg, Sub};

use crate::float::Float;
use crate::tensor::Tensor;

macro_rules! tensor_binop {
    ($trait:ident, $method:ident) => {
        impl<E: Float> $trait<&Tensor<E>> for &Tensor<E> {
            type Output = Tensor<E>;
            /// # Panics
            ///
            /// When the shapes do not broadcast, with the error's message (reported at the
            /// caller's line).
            #[track_caller]
            fn $method(self, rhs: &Tensor<E>) -> Tensor<E> {
                match Tensor::$method(self, rhs) {
                    Ok(t) => t,
                    Err(e) => panic!("{e}"),
                }
            }
        }
        impl<E: Float> $trait<Tensor<E>> for Tensor<E> {
            type Output = Tensor<E>;
            /// # Panics
            ///
            /// When the shapes do not broadcast, with the error's message (reported at the
            /// caller's line).
            #[track_caller]
            fn $method(self, rhs: Tensor<E>) -> Tensor<E> {
                match Tensor::$method(&self, &rhs) {
                    Ok(t) => t,
                    Err(e) => panic!("{e}"),
                }
            }
        }
        impl<E: Float> $trait<E> for &Tensor<E> {
            type Output = Tensor<E>;
            fn $method(self, rhs: E) -> Tensor<E> {
                self.map(|a| $trait::$method(a, rhs))
            }
        }
        impl<E: Float> $trait<E> for Tensor<E> {
            type Output = Tensor<E>;
            fn $method(self, rhs: E) -> Tensor<E> {
                self.map(|a| $trait::$method(a, rhs))
            }
        }
    };
}

tensor_binop!(Add, add);
tensor_binop!(Sub, sub);
tensor_binop!(Mul, mul);
tensor_binop!(Div, div);

macro_rules! scalar_lhs {
    ($t:ty) => {
        impl Add<&Tensor<$t>> for $t {
            type Output = Tensor<$t>;
            fn add(self, rhs: &Tensor<$t>) -> Tensor<$t> {
                rhs.map(|b| self + b)
            }
        }
        impl Sub<&Tensor<$t>> for $t {
            type Output = Tensor<$t>;
            fn sub(self, rhs: &Tensor<$t>) -> Tensor<$t> {
                rhs.map(|b| self - b)
            }
        }
        impl Mul<&Tensor<$t>> for $t {
            type Output = Tensor<$t>;
            fn mul(self, rhs: &Tensor<$t>) -> Tensor<$t> {
                rhs.map(|b| self * b)
            }
        }
        impl Div<&Tensor<$t>> for $t {
            type Output = Tensor<$t>;
            fn div(self, rhs: &Tensor<$t>) -> Tensor<$t> {
                rhs.map(|b| self / b)
            }
        }
    };
}

scalar_lhs!(f32);
scalar_lhs!(f64);

impl<E: Float> Neg for &Tensor<E> {
    type Output = Tensor<E>;
    fn neg(self) -> Tensor<E> {
        Tensor::neg(self)
    }
}

impl<E: Float> Neg for Tensor<E> {
    type Output = Tensor<E>;
    fn neg(self) -> Tensor<E> {
        Tensor::neg(&self)
    }
}
