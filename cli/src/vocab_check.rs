//! The CLI's journal types derive what clap and serde need, so they cannot be the shared
//! `invite_vocab` types themselves: this checks, word for word, that they say the same.

use crate::journal::{Outcome, SCHEMA};

#[test]
fn the_cli_reads_the_schema_and_the_outcomes_the_runtime_writes() {
    assert_eq!(SCHEMA, invite_vocab::SCHEMA);
    let ours: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
    let shared: Vec<&str> = invite_vocab::Outcome::ALL
        .iter()
        .map(|o| o.as_str())
        .collect();
    assert_eq!(ours, shared);
}
