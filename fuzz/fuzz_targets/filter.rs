//! `cargo fuzz run --sanitizer none -O --codegen-units 16 filter` from the repository root;
//! the target is `steward_fuzzing::filter`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| steward_fuzzing::filter(data));
