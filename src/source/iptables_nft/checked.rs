//! Decoded rule texts on their way into the cache: parsed as a dump is, and compared with
//! the host's own listing of one chain per extension met for the first time, which decides
//! whether the decoder is trusted with that extension on this host.

use std::collections::HashSet;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use super::decode::{self, Extension};
use super::{Printed, RuleTexts, Text, learn_from};
use crate::ruleset::{Chain, Family, Table};
use crate::source::nftables::Snapshot;
use crate::source::{SourceId, iptables_save};

/// What the decoder made of a rule: its line, or what stopped it.
pub(super) type Decoding = Result<decode::Decoded, Extension>;

/// A decoded rule's text as the parser reads it, with the extensions that printed it.
pub(super) type DecodedText = Result<(Arc<Text>, Arc<[Extension]>), Extension>;

/// The span of [`Snapshot::keys`] each chain of `snapshot` holds, in order.
fn chain_spans(snapshot: &Snapshot) -> Vec<(std::ops::Range<usize>, &Table, &Chain)> {
    let mut start = 0;
    snapshot
        .ruleset
        .chains()
        .map(|(table, chain)| {
            let span = start..start + chain.rules.len();
            start = span.end;
            (span, table, chain)
        })
        .collect()
}

/// The chain span holding rule `index`.
fn span_of<'a>(
    spans: &'a [(std::ops::Range<usize>, &'a Table, &'a Chain)],
    index: usize,
) -> Option<&'a (std::ops::Range<usize>, &'a Table, &'a Chain)> {
    let at = spans.partition_point(|(span, ..)| span.end <= index);
    spans.get(at).filter(|(span, ..)| span.contains(&index))
}

/// Parses the decoded lines of `decoded` (by rule index, in order) as the texts of a dump
/// are parsed: one table block per chain, a few thousand lines at a time, so that the
/// dump and its parse of a whole ruleset are never held at once.
pub(super) fn parse_decoded(
    family: Family,
    snapshot: &Snapshot,
    decoded: Vec<(usize, Decoding)>,
) -> Vec<(usize, DecodedText)> {
    const LINES: usize = 4096;
    let spans = chain_spans(snapshot);
    let mut texts: Vec<Option<Arc<Text>>> = vec![None; decoded.len()];
    for (first, chunk) in (0..).step_by(LINES).zip(decoded.chunks(LINES)) {
        let (mut dump, mut blocks, mut current) = (String::new(), Vec::new(), None);
        for (slot, (index, decoding)) in (first..).zip(chunk) {
            let Ok(rule) = decoding else { continue };
            let Some((span, table, chain)) = span_of(&spans, *index) else {
                continue;
            };
            if current != Some(span.start) {
                if current.is_some() {
                    dump.push_str("COMMIT\n");
                }
                current = Some(span.start);
                dump.push_str(&format!("*{}\n:{} - [0:0]\n", table.name, chain.name));
                blocks.push(Vec::new());
            }
            dump.push_str(&rule.line);
            dump.push('\n');
            if let Some(block) = blocks.last_mut() {
                block.push(slot);
            }
        }
        if current.is_some() {
            dump.push_str("COMMIT\n");
        }
        let parsed = iptables_save::parse(family, &dump);
        for (block, table) in blocks.iter().zip(&parsed.tables) {
            if table.chains.iter().map(|c| c.rules.len()).sum::<usize>() != block.len() {
                continue;
            }
            let rules = table.chains.iter().flat_map(|c| &c.rules);
            for (&slot, rule) in block.iter().zip(rules) {
                let invalid_utf8 = matches!(&decoded[slot].1, Ok(d) if d.invalid_utf8);
                texts[slot] = Some(Arc::new(Text::of(rule, invalid_utf8)));
            }
        }
    }
    decoded
        .into_iter()
        .zip(texts)
        .map(|((index, decoding), text)| {
            let parsed = match (decoding, text) {
                (Ok(rule), Some(text)) => Ok((text, rule.extensions)),
                (Ok(_), None) => Err(Extension::Expression("unparsable text".to_owned())),
                (Err(extension), _) => Err(extension),
            };
            (index, parsed)
        })
        .collect()
}

/// One chain (table, name) holding each extension of `texts` the cache has not checked
/// yet, as few chains as cover them all.
pub(super) fn unchecked_chains(
    snapshot: &Snapshot,
    texts: &[(usize, DecodedText)],
    cache: &RuleTexts,
) -> Vec<(String, String)> {
    let spans = chain_spans(snapshot);
    let mut covered: HashSet<&Extension> = HashSet::new();
    let mut chains = Vec::new();
    for (index, text) in texts {
        let Ok((_, extensions)) = text else { continue };
        let new = extensions
            .iter()
            .any(|e| !cache.trusted.contains_key(e) && !covered.contains(e));
        if !new {
            continue;
        }
        let Some((span, table, chain)) = span_of(&spans, *index) else {
            continue;
        };
        let first = texts.partition_point(|(i, _)| *i < span.start);
        let in_chain = texts[first..].iter().take_while(|(i, _)| span.contains(i));
        for (_, text) in in_chain {
            if let Ok((_, extensions)) = text {
                covered.extend(extensions.iter());
            }
        }
        chains.push((table.name.clone(), chain.name.clone()));
    }
    chains
}

/// Compares the decoded texts of `chain` of `table` with the host's listing of it, taken at
/// the snapshot's generation, and records which extensions print as the host's iptables
/// prints them. The chain's texts are learnt: decoded where the two agree, listed where
/// they do not, so that a rule the decoder got wrong never has its decoded text. Returns
/// how many of each it learnt.
pub(super) fn check(
    id: SourceId,
    cache: &mut RuleTexts,
    snapshot: &Snapshot,
    texts: &[(usize, DecodedText)],
    listed: &Printed,
    table: &str,
    chain: &str,
) -> (usize, usize) {
    let spans = chain_spans(snapshot);
    let Some((span, ..)) = spans
        .iter()
        .find(|(_, t, c)| t.name == table && c.name == chain)
    else {
        return (0, 0);
    };
    let Some((_, printed)) = listed.ruleset.chains().find(|(_, c)| c.name == chain) else {
        return (0, 0);
    };
    if printed.rules.len() != span.len() {
        return (0, 0);
    }
    let first = texts.partition_point(|(i, _)| *i < span.start);
    let compared: Vec<(usize, &Arc<Text>, &[Extension], &str)> = texts[first..]
        .iter()
        .take_while(|(i, _)| span.contains(i))
        .filter_map(|(i, text)| {
            let (text, extensions) = text.as_ref().ok()?;
            let listed = printed.rules[i - span.start].text.as_str();
            Some((*i, text, &**extensions, listed))
        })
        .collect();
    // Extensions of rules printed alike are trusted first, so that a difference is put
    // on the extensions only it could come from.
    let mut decoded = 0;
    for (index, text, extensions, listed) in &compared {
        if text.text == *listed {
            for extension in *extensions {
                cache.trusted.entry(extension.clone()).or_insert(true);
            }
            if let Entry::Vacant(slot) = cache.by_key.entry(snapshot.keys[*index]) {
                slot.insert(Arc::clone(text));
                decoded += 1;
            }
        }
    }
    for (_, text, extensions, listed) in &compared {
        if text.text == *listed {
            continue;
        }
        let unchecked: Vec<&Extension> = extensions
            .iter()
            .filter(|e| !cache.trusted.contains_key(*e))
            .collect();
        let blamed = if unchecked.is_empty() {
            // Extensions trusted each alone, wrong together: none of them is trusted again.
            extensions
                .iter()
                .filter(|e| **e != Extension::Native("ip"))
                .collect()
        } else {
            unchecked
        };
        for extension in blamed {
            if cache.trusted.insert(extension.clone(), false) != Some(false) {
                tracing::warn!(source = %id, %extension, decoded = %text.text, listed, "the text decoded from a rule's expressions differs from the host's iptables listing; rules with this extension are listed instead");
            }
        }
    }
    (decoded, learn_from(cache, listed, snapshot))
}

/// Trusts every extension of `texts` not checked yet: what a host without `iptables` gets,
/// there being no other printing to differ from.
pub(super) fn trust_all(cache: &mut RuleTexts, texts: &[(usize, DecodedText)]) {
    let mut seen: HashSet<&Arc<[Extension]>> = HashSet::new();
    for (_, extensions) in texts.iter().filter_map(|(_, t)| t.as_ref().ok()) {
        if seen.insert(extensions) {
            for extension in extensions.iter() {
                if !cache.trusted.contains_key(extension) {
                    cache.trusted.insert(extension.clone(), true);
                }
            }
        }
    }
}

/// Adds to the cache the decoded texts of `texts` whose extensions are all trusted, and
/// records for the others what kept them from it; returns how many texts it added.
pub(super) fn learn_trusted(
    cache: &mut RuleTexts,
    snapshot: &Snapshot,
    texts: &[(usize, DecodedText)],
) -> usize {
    let mut added = 0;
    for (index, text) in texts {
        let key = snapshot.keys[*index];
        let failed = match text {
            Ok((text, extensions)) => {
                match extensions
                    .iter()
                    .find(|e| cache.trusted.get(*e) != Some(&true))
                {
                    None => {
                        if let Entry::Vacant(slot) = cache.by_key.entry(key) {
                            slot.insert(Arc::clone(text));
                            added += 1;
                        }
                        continue;
                    }
                    Some(distrusted) => distrusted.clone(),
                }
            }
            Err(extension) => extension.clone(),
        };
        cache.undecoded.insert(key, failed);
    }
    added
}
