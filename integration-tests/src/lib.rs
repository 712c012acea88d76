//! System tests for Steward: the real binaries started as separate processes on real
//! backends. The tests live in `tests/system/`; this library is empty.
