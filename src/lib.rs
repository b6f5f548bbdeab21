//! The `oms` package's shared code: how the binary's load generator and the end-to-end tests
//! reach a running mesh.

pub mod mesh;
