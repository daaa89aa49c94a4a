//! Reverse-mode autodiff on a tape (filled by its own issue).
#![deny(missing_docs)]
