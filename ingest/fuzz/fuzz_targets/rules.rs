//! `cargo fuzz run rules`: see `cairn_correlate::fuzzing::check_rules` for the invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn_correlate::fuzzing::check_rules(data));
