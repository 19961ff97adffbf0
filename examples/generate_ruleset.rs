//! Prints a generated kube-proxy-style `iptables-save --counters` dump with a given number
//! of rules, for scripts that load it with `iptables-restore --counters` into a throwaway
//! network namespace (scripts/measure-memory.sh) or feed it to the parser.
//!
//! Usage: `cargo run --release --example generate_ruleset -- 100000 > rules.txt`, or
//! `… -- --nftables 100000 [SET_ELEMENTS] > rules.nft` for a native nftables ruleset
//! for `nft -f` (scripts/bench-nftables.sh).

use std::io::Write;
use std::process::ExitCode;

#[path = "../benches/generate/mod.rs"]
mod generate;

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let nftables = args.first().is_some_and(|a| a == "--nftables");
    if nftables {
        args.remove(0);
    }
    let number = |i: usize| -> Option<usize> { args.get(i)?.replace('_', "").parse().ok() };
    let Some(rules) = number(0) else {
        eprintln!("usage: generate_ruleset RULES | --nftables RULES [SET_ELEMENTS]");
        return ExitCode::from(2);
    };
    let dump = if nftables {
        generate::nftables_ruleset(rules, number(1).unwrap_or(0))
    } else {
        generate::kube_proxy_dump(rules)
    };
    match std::io::stdout().lock().write_all(dump.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("generate_ruleset: cannot write to standard output: {e}");
            ExitCode::FAILURE
        }
    }
}
