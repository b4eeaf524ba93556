//! `cargo fuzz run rfc3164`: see `cairn_ingest::fuzzing::check_syslog` for the input layout and the
//! invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn_ingest::fuzzing::check_syslog(data));
