//! `cargo fuzz run --sanitizer none -O --codegen-units 16 proto_conversions` from the repository root;
//! the target is `steward_fuzzing::proto_conversions`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| steward_fuzzing::proto_conversions(data));
