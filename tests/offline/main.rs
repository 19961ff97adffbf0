//! The integration tests that need neither root nor a network namespace: the library's
//! parser and renderings against fixtures, golden files and random rulesets, and the real
//! binary started with a stand-in `iptables-save` (flags, the textfile loop, the CPU
//! budget, slow clients). One module per area; `cargo test --test offline AREA::` runs one.

#[path = "../common/mod.rs"]
mod common;

mod cli;
mod cpu_budget;
mod golden;
mod parser_props;
mod slow_clients;
mod textfile;
