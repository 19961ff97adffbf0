//! Logging what persists once: a problem found on every collection is logged when it
//! appears or changes, not after every collection.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use crate::source::SourceId;

/// What a group of log messages is about: a source (or none for views of all sources)
/// and a topic.
pub(super) type Topic = (Option<SourceId>, &'static str);

/// Remembers what the previous round logged per scope, so that a problem that persists is
/// logged when it appears, not after every collection.
#[derive(Default)]
pub(super) struct LogOnce(Mutex<BTreeMap<Topic, HashSet<String>>>);

impl LogOnce {
    /// The messages of `current` that the previous call for `scope` did not have, in the
    /// order of `current`, without repeats.
    pub(super) fn new_messages(
        &self,
        scope: Topic,
        current: impl Iterator<Item = String>,
    ) -> Vec<String> {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let previous = seen.remove(&scope).unwrap_or_default();
        let mut now = HashSet::new();
        let mut fresh = Vec::new();
        for message in current {
            if !previous.contains(&message) && !now.contains(&message) {
                fresh.push(message.clone());
            }
            now.insert(message);
        }
        seen.insert(scope, now);
        fresh
    }

    /// `message` if the previous call for `scope` had another one or none: a message that
    /// repeats is logged once, until it changes or goes away.
    pub(super) fn once(&self, scope: Topic, message: Option<String>) -> Option<String> {
        self.new_messages(scope, message.into_iter()).pop()
    }

    /// Whether the last call for `scope` had a message.
    pub(super) fn is_set(&self, scope: Topic) -> bool {
        let seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(&scope)
            .is_some_and(|messages| !messages.is_empty())
    }
}
