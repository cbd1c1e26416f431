//! Scripted-server tests of the connection live in tests/; this keeps unit-level checks.
