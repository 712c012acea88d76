//! `cargo fuzz run --sanitizer none -O --codegen-units 16 artifact_paths` from the repository root;
//! the target is `steward_fuzzing::artifact_paths`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| steward_fuzzing::artifact_paths(data));
