//! netfilter_exporter: makes Linux firewall counters observable.
//!
//! The pipeline, one module per step:
//! - [`source`] runs `iptables-save --counters` (per source) with a deadline and parses
//!   its output into the source-neutral model of [`ruleset`], an immutable
//!   [`ruleset::Ruleset`] snapshot;
//! - [`metrics`] and [`accounting`] turn snapshots into metric families (pure functions),
//!   through the encoder of [`exposition`] (text, OpenMetrics, gzip, escaping);
//! - [`collect`] schedules the sources and publishes complete expositions;
//! - [`output`] holds the sinks besides HTTP (the textfile writer, the Munin renderer),
//!   [`serve`] the HTTP side and [`munin`] the Munin plugin mode;
//! - [`audit`] checks the rules against allowlists (the audit mode).

pub mod accounting;
pub mod audit;
pub mod budget;
pub mod cli;
pub mod collect;
pub mod config;
pub mod error_chain;
pub mod exposition;
pub mod logging;
pub mod metrics;
pub mod munin;
pub mod output;
pub mod procfs;
pub mod ruleset;
pub mod serve;
pub mod source;
pub mod top;
