//! Nothing here: see tests/ and benches/.
