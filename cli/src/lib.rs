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

pub mod beneath;
pub mod cmd;
pub mod error;
pub mod fuzzing;
pub mod journal;
pub mod live;
pub mod model;
pub mod pods;
pub mod reader;
pub mod render;
pub mod source;
pub mod term;
#[cfg(test)]
mod vocab_check;
