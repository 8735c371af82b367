//! Expansion tests.
