//! `cargo fuzz run --sanitizer none -O --codegen-units 16 page_token` from the repository root;
//! the target is `steward_fuzzing::page_token`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| steward_fuzzing::page_token(data));
