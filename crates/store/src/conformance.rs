//! Backend conformance suite (filled in below).
