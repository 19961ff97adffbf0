//! nfprom's label comments `nft(key=value;key=value)`: the keys are label names, opaque to
//! the program, and every rule of the family must carry the same key set.

use super::series::{Series, SeriesSet};
use super::{AccountingConfig, Problem};
use crate::ruleset::Ruleset;
use crate::source::SourceId;

/// True when a comment is meant for this grammar: it starts with `nft(`.
pub(super) fn is_label_shaped(comment: &str) -> bool {
    comment.starts_with("nft(")
}

/// True for a valid Prometheus label name that is not reserved (`__` prefix).
pub(super) fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

/// The label pairs of a label-shaped comment, sorted by name, or why it has none.
fn parse(comment: &str) -> Result<Vec<(String, String)>, String> {
    let Some(inner) = comment
        .strip_prefix("nft(")
        .and_then(|rest| rest.strip_suffix(')'))
    else {
        return Err(format!(
            "comment {comment:?} does not end with ) (expected nft(key=value;…))"
        ));
    };
    let mut labels = Vec::new();
    // Empty pieces (a trailing `;`) hold nothing and are skipped.
    for piece in inner.split(';').filter(|p| !p.trim().is_empty()) {
        let Some((key, value)) = piece.split_once('=') else {
            return Err(format!("comment {comment:?}: {piece:?} is not key=value"));
        };
        let key = key.trim();
        if !is_label_name(key) {
            return Err(format!(
                "comment {comment:?}: {key:?} is not a valid Prometheus label name"
            ));
        }
        labels.push((key.to_owned(), value.to_owned()));
    }
    if labels.is_empty() {
        return Err(format!("comment {comment:?} has no key=value pair"));
    }
    labels.sort();
    if let Some(pair) = labels.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(format!(
            "comment {comment:?} repeats the key {:?}",
            pair[0].0
        ));
    }
    Ok(labels)
}

/// The label-comment series of the accounting chains, and the rules left out.
pub(super) fn label_view(
    rulesets: &[(SourceId, &Ruleset)],
    config: &AccountingConfig,
) -> (Vec<Series>, Vec<Problem>) {
    let mut set = SeriesSet::default();
    if !config.label_comments {
        return (set.series, set.problems);
    }
    for located in super::rules(rulesets, |source, table, chain| {
        config.accounts(source, table, chain)
    }) {
        let Some(comment) = located.rule.comments.iter().find(|c| is_label_shaped(c)) else {
            continue;
        };
        match parse(comment) {
            Ok(labels) => set.add(&located, labels),
            Err(message) => set.problems.push(located.problem(message)),
        }
    }
    (set.series, set.problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parses_sorted_pairs() {
        assert_eq!(
            parse("nft(service=SSH;dir=in;)"),
            Ok(pairs(&[("dir", "in"), ("service", "SSH")]))
        );
        assert_eq!(parse("nft(a=x=y)"), Ok(pairs(&[("a", "x=y")])));
    }

    #[test]
    fn rejects_bad_comments() {
        for bad in [
            "nft(a=b",
            "nft()",
            "nft(a)",
            "nft(1a=b)",
            "nft(a-b=c)",
            "nft(__a=b)",
            "nft(a=b;a=c)",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn label_names() {
        assert!(is_label_name("_a1"));
        assert!(is_label_name("dir"));
        assert!(!is_label_name(""));
        assert!(!is_label_name("é"));
        assert!(!is_label_name("__name__"));
    }
}
