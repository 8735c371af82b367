//! Helpers for the integration tests: build the runtime, compile C fixtures, read journals.
