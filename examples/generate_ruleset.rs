//! Prints a generated kube-proxy-style `iptables-save --counters` dump with a given number
//! of rules, for scripts that load it with `iptables-restore --counters` into a throwaway
//! network namespace (scripts/measure-memory.sh) or feed it to the parser.
//!
//! Usage: `cargo run --release --example generate_ruleset -- 100000 > rules.txt`

use std::io::Write;
use std::process::ExitCode;

#[path = "../benches/generate/mod.rs"]
mod generate;

fn main() -> ExitCode {
    let arg = std::env::args().nth(1);
    let Some(rules) = arg
        .as_deref()
        .and_then(|a| a.replace('_', "").parse::<usize>().ok())
    else {
        eprintln!("usage: generate_ruleset RULES   (e.g. 100000)");
        return ExitCode::from(2);
    };
    let dump = generate::kube_proxy_dump(rules);
    match std::io::stdout().lock().write_all(dump.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("generate_ruleset: cannot write to standard output: {e}");
            ExitCode::FAILURE
        }
    }
}
