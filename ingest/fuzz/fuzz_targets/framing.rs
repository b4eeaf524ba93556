//! `cargo fuzz run framing`: see `cairn_ingest::fuzzing::check_framing` for the input layout and the
//! invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn_ingest::fuzzing::check_framing(data));
