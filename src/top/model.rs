//! What top knows: each origin's last reading with the rates since the one before, and its
//! health. An origin is a source, of this host or of an exporter, or the exporter's
//! accounting tags; each is read at its own pace, and one failing leaves the others as they
//! are.

use super::rates::{Rate, rates};
use super::series::{Series, Snapshot};

/// What a reader learnt about one origin.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// The origin: a source's name, or [`super::series::ACCOUNTING`].
    pub origin: String,
    /// What became of it.
    pub outcome: Outcome,
}

/// The result of reading an origin.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A reading.
    Read {
        /// The series.
        snapshot: Snapshot,
        /// How reading it went.
        health: Health,
    },
    /// The reading failed, for this reason.
    Failed(String),
    /// The origin is not read: it has nothing here, or (with a reason) the host does not
    /// say whether it has.
    LeftOut(Option<String>),
}

/// How the last reading of an origin went, for the header.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Health {
    /// Seconds the collection took.
    pub duration: Option<f64>,
    /// CPU seconds it cost.
    pub cpu: Option<f64>,
    /// What it left out, for a person.
    pub notes: Vec<String>,
}

/// The state of an origin, as the header shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// Read: its rows are shown.
    Read(Health),
    /// Its last reading failed: no rows until it succeeds again.
    Failed(String),
    /// Not read (see [`Outcome::LeftOut`]).
    LeftOut(Option<String>),
}

#[derive(Debug)]
struct Origin {
    name: String,
    state: State,
    /// The last reading, kept across a failure so that the next one has a rate.
    last: Option<Snapshot>,
    /// The rate of each series of `last`.
    rates: Vec<Option<Rate>>,
    /// Readings of distinct collections since it was last left out.
    readings: u32,
}

/// Every origin's last reading, in the order they first reported.
#[derive(Debug, Default)]
pub struct Model {
    origins: Vec<Origin>,
}

impl Model {
    /// Takes in `update`; true when the rows changed.
    pub fn apply(&mut self, update: Update) -> bool {
        let at = match self.origins.iter().position(|o| o.name == update.origin) {
            Some(at) => at,
            None => {
                self.origins.push(Origin {
                    name: update.origin,
                    state: State::LeftOut(None),
                    last: None,
                    rates: Vec::new(),
                    readings: 0,
                });
                self.origins.len() - 1
            }
        };
        let origin = &mut self.origins[at];
        let shown_before = matches!(origin.state, State::Read(_));
        match update.outcome {
            Outcome::Read { snapshot, health } => {
                origin.state = State::Read(health);
                // An exporter's collection read again, at its pace rather than ours: its
                // rates stand until the next one.
                if origin
                    .last
                    .as_ref()
                    .is_some_and(|last| last.at == snapshot.at)
                {
                    return !shown_before;
                }
                origin.rates = match &origin.last {
                    Some(last) => rates(last, &snapshot),
                    None => vec![None; snapshot.series.len()],
                };
                origin.last = Some(snapshot);
                origin.readings += 1;
                true
            }
            Outcome::Failed(error) => {
                origin.state = State::Failed(error);
                shown_before
            }
            Outcome::LeftOut(reason) => {
                origin.state = State::LeftOut(reason);
                origin.last = None;
                origin.rates = Vec::new();
                origin.readings = 0;
                shown_before
            }
        }
    }

    /// Every series of the origins whose last reading succeeded, with its rate.
    pub fn series(&self) -> impl Iterator<Item = (&Series, Option<Rate>)> {
        self.origins
            .iter()
            .filter(|o| matches!(o.state, State::Read(_)))
            .filter_map(|o| Some(o.last.as_ref()?.series.iter().zip(o.rates.iter().copied())))
            .flatten()
    }

    /// True when every origin read has been read twice, from two collections, so that its
    /// series have rates.
    pub fn rated(&self) -> bool {
        self.origins
            .iter()
            .filter(|o| matches!(o.state, State::Read(_)))
            .all(|o| o.readings >= 2 || o.last.as_ref().is_some_and(|l| l.series.is_empty()))
    }

    /// Each origin's name and state, in the order they first reported.
    pub fn states(&self) -> impl Iterator<Item = (&str, &State)> {
        self.origins.iter().map(|o| (o.name.as_str(), &o.state))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::ruleset::Counters;
    use crate::top::series::{Key, Kind};

    fn read(origin: &str, at: f64, packets: u64) -> Update {
        Update {
            origin: origin.to_owned(),
            outcome: Outcome::Read {
                snapshot: Snapshot {
                    at,
                    series: vec![Series {
                        key: Key {
                            kind: Kind::Rule,
                            source: "iptables",
                            table: Arc::from(origin),
                            chain: Arc::from("INPUT"),
                            name: Arc::from("-j ACCEPT"),
                        },
                        counters: Counters {
                            packets,
                            bytes: packets * 100,
                        },
                        stands_for_rules: false,
                    }],
                },
                health: Health::default(),
            },
        }
    }

    fn failed(origin: &str) -> Update {
        Update {
            origin: origin.to_owned(),
            outcome: Outcome::Failed("iptables-save: exit status 1".to_owned()),
        }
    }

    fn packet_rates(model: &Model) -> Vec<(String, Option<f64>)> {
        model
            .series()
            .map(|(s, rate)| (s.key.table.to_string(), rate.map(|r| r.packets)))
            .collect()
    }

    #[test]
    fn each_origin_has_its_own_rates() {
        let mut model = Model::default();
        assert!(model.apply(read("a", 0.0, 10)));
        assert!(model.apply(read("b", 0.5, 0)));
        assert_eq!(
            packet_rates(&model),
            [("a".into(), None), ("b".into(), None)]
        );
        model.apply(read("a", 2.0, 30));
        model.apply(read("b", 1.5, 5));
        assert_eq!(
            packet_rates(&model),
            [("a".into(), Some(10.0)), ("b".into(), Some(5.0))]
        );
    }

    #[test]
    fn the_same_collection_read_again_keeps_its_rates() {
        let mut model = Model::default();
        model.apply(read("a", 0.0, 0));
        model.apply(read("a", 5.0, 50));
        assert!(model.rated());
        assert!(!model.apply(read("a", 5.0, 50)));
        assert_eq!(packet_rates(&model), [("a".into(), Some(10.0))]);
        model.apply(read("b", 5.0, 50));
        assert!(!model.rated(), "b was read once");
    }

    #[test]
    fn a_failed_origin_shows_no_rows_and_the_others_keep_updating() {
        let mut model = Model::default();
        model.apply(read("a", 0.0, 0));
        model.apply(read("b", 0.0, 0));
        assert!(model.apply(failed("a")));
        model.apply(read("b", 1.0, 3));
        assert_eq!(packet_rates(&model), [("b".into(), Some(3.0))]);
        assert!(matches!(
            model.states().next(),
            Some(("a", State::Failed(_)))
        ));
        // Back, with a rate over the whole time since its last reading.
        assert!(model.apply(read("a", 4.0, 8)));
        assert_eq!(
            packet_rates(&model),
            [("a".into(), Some(2.0)), ("b".into(), Some(3.0))]
        );
    }

    #[test]
    fn an_origin_left_out_loses_its_rows_and_starts_over() {
        let mut model = Model::default();
        model.apply(read("a", 0.0, 0));
        let left_out = Update {
            origin: "a".to_owned(),
            outcome: Outcome::LeftOut(None),
        };
        assert!(model.apply(left_out));
        assert_eq!(packet_rates(&model), []);
        model.apply(read("a", 9.0, 90));
        assert_eq!(packet_rates(&model), [("a".into(), None)]);
    }
}
