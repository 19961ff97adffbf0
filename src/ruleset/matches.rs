//! The match parameters views interpret, read from a rule's label on demand.

use super::tokens::tokenize;
use super::{Matches, Param};

impl Matches {
    /// Reads the parameters and target of a rule label (the text without its comment
    /// matches). A label that cannot be split has none: the parser only keeps rules whose
    /// quotes balance, so that happens only to text that did not come from it.
    pub fn read(label: &str) -> Matches {
        let mut tokens = Vec::new();
        let mut matches = Matches::default();
        if tokenize(label, &mut tokens).is_err() {
            return matches;
        }
        let mut negated = false;
        let mut i = 0;
        while i < tokens.len() {
            let arg = tokens.get(i + 1).map(|t| t.value.as_ref());
            let param = |value: &str| {
                Some(Param {
                    negated,
                    value: value.to_owned(),
                })
            };
            let mut consumed = 2;
            match (tokens[i].value.as_ref(), arg) {
                ("!", _) => {
                    negated = true;
                    i += 1;
                    continue;
                }
                // A comment argument can look like an option; never read it as one.
                ("--comment", Some(_)) => {}
                ("-s" | "--source", Some(v)) => matches.source = param(v),
                ("-d" | "--destination", Some(v)) => matches.destination = param(v),
                ("-p" | "--protocol", Some(v)) => matches.protocol = param(v),
                ("--sport" | "--source-port" | "--sports" | "--source-ports", Some(v)) => {
                    matches.source_port = param(v)
                }
                (
                    "--dport" | "--destination-port" | "--dports" | "--destination-ports",
                    Some(v),
                ) => matches.destination_port = param(v),
                ("-i" | "--in-interface", Some(v)) => matches.in_interface = param(v),
                ("-o" | "--out-interface", Some(v)) => matches.out_interface = param(v),
                ("-j" | "--jump" | "-g" | "--goto", Some(v)) => matches.target = Some(v.to_owned()),
                _ => consumed = 1,
            }
            negated = false;
            i += consumed;
        }
        matches
    }
}
