//! Replays the fuzz corpus of the journal reader (cli/fuzz/corpus/journal_reader) as an ordinary
//! test: every input the fuzzer kept, and the seeds, must still pass the target's checks.

use std::fs;
use std::path::Path;

#[test]
fn the_journal_reader_corpus_replays_clean() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/journal_reader");
    let mut n = 0;
    for entry in fs::read_dir(&dir).expect("the corpus is in the tree") {
        let path = entry.unwrap().path();
        let data = fs::read(&path).unwrap();
        let result = std::panic::catch_unwind(|| invite_cli::fuzzing::journal_reader(&data));
        assert!(result.is_ok(), "{} fails the fuzz target", path.display());
        n += 1;
    }
    assert!(n >= 3, "only {n} corpus files");
}
