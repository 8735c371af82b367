pub mod error;
pub mod parse;
