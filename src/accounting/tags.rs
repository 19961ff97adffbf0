//! The `=tag= description` grammar of the Munin `traffic_accounting` plugin.
//!
//! The `=` after the tag is a delimiter, not a prefix: `=tag=` alone is valid, while
//! `=tag description` (no closing `=`) is a mistake users make, so it is reported.

use std::collections::HashMap;

use super::{AccountingConfig, TagEntity, TagView, Traffic};
use crate::ruleset::{Counters, Family, Ruleset};
use crate::source::SourceId;

/// True when a comment is meant for this grammar: it starts with `=`.
pub(super) fn is_tag_shaped(comment: &str) -> bool {
    comment.starts_with('=')
}

/// Splits a tag-shaped comment into its tag and description (trimmed, maybe empty), or
/// says why it is no tag comment.
fn parse(comment: &str) -> Result<(&str, &str), String> {
    let rest = comment.strip_prefix('=').unwrap_or(comment);
    let Some((tag, description)) = rest.split_once('=') else {
        return Err(format!(
            "comment {comment:?} starts with = but has no closing = after the tag (expected =tag= description)"
        ));
    };
    if tag.is_empty() {
        return Err(format!("comment {comment:?} has an empty tag"));
    }
    if tag.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "comment {comment:?}: tag {tag:?} contains white space (expected =tag= description)"
        ));
    }
    Ok((tag, description.trim()))
}

/// Which half of a pair a tag names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Half {
    Up,
    Down,
}

/// `web_up` → (`web`, Up); a tag that is only a suffix (`_up`) is a tag of its own.
fn split_pair(tag: &str) -> (&str, Option<Half>) {
    if let Some(base) = tag.strip_suffix("_up").filter(|b| !b.is_empty()) {
        (base, Some(Half::Up))
    } else if let Some(base) = tag.strip_suffix("_down").filter(|b| !b.is_empty()) {
        (base, Some(Half::Down))
    } else {
        (tag, None)
    }
}

/// Pure: entities ordered by family (ipv4 first) then by first appearance of the tag in kernel order.
///
/// Rules sharing a tag are summed across rules, across the accounting chains of a family
/// and across sources of one family (iptables and iptables-legacy both reporting the
/// chain). When a plain tag and a pair share a base name (`web` and `web_up`), the form met
/// first wins and the rules of the other form are reported and left out: both would be the
/// same Munin graph and the same `tag` label. Returns nothing when tag comments are off.
pub fn tag_view(rulesets: &[(SourceId, &Ruleset)], config: &AccountingConfig) -> TagView {
    let mut view = TagView::default();
    if !config.tag_comments {
        return view;
    }
    let mut index: HashMap<(Family, &str), usize> = HashMap::new();
    for located in super::rules(rulesets, |source, table, chain| {
        config.accounts(source, table, chain)
    }) {
        let Some(comment) = located.rule.comments.iter().find(|c| is_tag_shaped(c)) else {
            continue;
        };
        let (tag, description) = match parse(comment) {
            Ok(parsed) => parsed,
            Err(message) => {
                view.problems.push(located.problem(message));
                continue;
            }
        };
        let (base, half) = split_pair(tag);
        let counters = located.rule.counters;
        let i = *index.entry((located.family, base)).or_insert_with(|| {
            view.entities.push(TagEntity {
                family: located.family,
                tag: base.to_owned(),
                description: String::new(),
                traffic: match half {
                    None => Traffic::Single(Counters::default()),
                    Some(_) => Traffic::Paired {
                        up: None,
                        down: None,
                    },
                },
            });
            view.entities.len() - 1
        });
        let entity = &mut view.entities[i];
        let added = match (&mut entity.traffic, half) {
            (Traffic::Single(sum), None) => {
                *sum += counters;
                true
            }
            (Traffic::Paired { up, .. }, Some(Half::Up)) => {
                *up.get_or_insert_default() += counters;
                true
            }
            (Traffic::Paired { down, .. }, Some(Half::Down)) => {
                *down.get_or_insert_default() += counters;
                true
            }
            _ => false,
        };
        if !added {
            let first = match entity.traffic {
                Traffic::Single(_) => format!("plain tag {base:?}"),
                Traffic::Paired { .. } => format!("pair {base:?}_up/{base:?}_down"),
            };
            view.problems.push(located.problem(format!(
                "tag {tag:?} conflicts with the {first} met first; rule left out"
            )));
            continue;
        }
        if entity.description.is_empty() && !description.is_empty() {
            entity.description = description.to_owned();
        }
    }
    for entity in &mut view.entities {
        if entity.description.is_empty() {
            entity.description = entity.tag.clone();
        }
    }
    view
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tag_and_description() {
        assert_eq!(parse("=web= Web traffic "), Ok(("web", "Web traffic")));
        assert_eq!(parse("=web="), Ok(("web", "")));
        assert_eq!(parse("=a=b= c"), Ok(("a", "b= c")));
        assert!(parse("=web Web traffic").is_err());
        assert!(parse("==x").is_err());
        assert!(parse("=my web= x").is_err());
    }

    #[test]
    fn splits_pairs() {
        assert_eq!(split_pair("web_up"), ("web", Some(Half::Up)));
        assert_eq!(split_pair("web_down"), ("web", Some(Half::Down)));
        assert_eq!(split_pair("web"), ("web", None));
        assert_eq!(split_pair("_up"), ("_up", None));
        assert_eq!(split_pair("upload"), ("upload", None));
    }
}
