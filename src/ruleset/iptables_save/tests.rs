//! Unit tests of the parent module.
