//! `cargo fuzz run --sanitizer none -O --codegen-units 16 resource_names` from the repository root;
//! the target is `steward_fuzzing::resource_names`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| steward_fuzzing::resource_names(data));
