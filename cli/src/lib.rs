//! `invite`: reports from in vivo test journals, kept pods, and live checkpoints.
//!
//! The flow of `invite report`: `source` (open a journal, cut it into bounded lines) → `journal`
//! and `reader` (parse each line once into a record, or a warning) → `model` (fold records into one aggregate
//! in bounded memory) → `render` (table, JSON, HTML, JUnit, Prometheus; OTLP from the records
//! themselves) → `term` (escape what came from outside before it reaches a terminal). `invite
//! pods` reads kept-pod directories through `pods` without leaving them; `invite checkpoints`,
//! `branch` and `drop` talk to live checkpoints through `live`. Each subcommand's arguments and
//! entry point live in `cmd/`.
//!
//! Exit status: 0 on success, 1 when `report --fail-on` found a listed outcome, 2 on an error
//! (a missing journal, a pod that does not exist, a usage error).
//!
//! # This library is not an API
//!
//! It exists so the `invite` binary, its fuzz target (cli/fuzz) and its tests share one build
//! of the code above. The modules the binary calls (`cmd`, `term`) are public for it and hidden
//! from these docs, and may change in any release; the rest is private. Use the `invite`
//! command (`cargo install invite-cli`). What is meant to be called from outside is
//! [`fuzzing`]: the whole reading path, on any bytes.
//!
//! ```
//! // A record, a line that is not JSON, and a record cut off mid-line: read without a panic.
//! let journal = br#"{"schema":1,"kind":"test","outcome":"pass"}
//! not json
//! {"schema":1,"kind":"te"#;
//! invite_cli::fuzzing::journal_reader(journal);
//! ```

#![warn(missing_docs)]

mod beneath;
#[doc(hidden)]
pub mod cmd;
mod error;
pub mod fuzzing;
mod journal;
mod live;
mod model;
mod outcome;
mod pods;
mod reader;
mod render;
mod source;
#[doc(hidden)]
pub mod term;
