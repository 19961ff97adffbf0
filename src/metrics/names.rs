//! Every metric name and help text the exporter writes, in one place.
//!
//! The iptables sources' families keep the names iptables_exporter gave them, so that dashboards
//! and alerts written for it keep working. Two of those names break today's Prometheus
//! conventions and are kept on purpose:
//! - `*_rules_total` and `*_chains_total` are counts that go up and down; they are typed
//!   `untyped` (as the `_total` suffix is reserved for counters of typed families, and
//!   `promtool check metrics` accepts it on untyped ones), which no query can tell apart from
//!   the gauge iptables_exporter declared.
//!
//! The named counters of nftables are `nftables_object_{bytes,packets}_total`, not
//! `nftables_counter_…`: `promtool check metrics` refuses a counter (typed or untyped)
//! whose name holds the word `counter`.
//! - `*_scrape_duration_milliseconds` is not in base units; it can be switched off with
//!   `--no-legacy-duration-metric`, and `netfilter_exporter_collection_duration_seconds` carries the
//!   same figure in seconds.

/// Suffixes of the iptables sources' families; the source's prefix (`iptables`,
/// `ip6tables`, `iptables_legacy`, `ip6tables_legacy`) and `_` go before each.
pub mod iptables {
    /// Chain policy bytes.
    pub const CHAIN_BYTES: (&str, &str) = (
        "chain_bytes_total",
        "Bytes counted by a chain's policy (zero for user-defined chains).",
    );
    /// Chain policy packets.
    pub const CHAIN_PACKETS: (&str, &str) = (
        "chain_packets_total",
        "Packets counted by a chain's policy (zero for user-defined chains).",
    );
    /// Rule bytes.
    pub const RULE_BYTES: (&str, &str) = (
        "rule_bytes_total",
        "Bytes matched by a rule; rules with the same text in one chain are summed.",
    );
    /// Rule packets.
    pub const RULE_PACKETS: (&str, &str) = (
        "rule_packets_total",
        "Packets matched by a rule; rules with the same text in one chain are summed.",
    );
    /// Comment bytes.
    pub const COMMENT_BYTES: (&str, &str) = (
        "comment_bytes_total",
        "Bytes matched by the rules of a chain that carry a comment.",
    );
    /// Comment packets.
    pub const COMMENT_PACKETS: (&str, &str) = (
        "comment_packets_total",
        "Packets matched by the rules of a chain that carry a comment.",
    );
    /// Rules per chain.
    pub const RULES: (&str, &str) = ("rules_total", "Number of rules in a chain.");
    /// Chains per table.
    pub const CHAINS: (&str, &str) = ("chains_total", "Number of chains in a table.");
    /// Collection time, compatibility name.
    pub const SCRAPE_DURATION_MS: (&str, &str) = (
        "scrape_duration_milliseconds",
        "Time the last collection of this backend took, in milliseconds.",
    );
    /// Collection success.
    pub const SCRAPE_SUCCESS: (&str, &str) = (
        "scrape_success",
        "1 if the last collection of this backend succeeded, 0 if it failed.",
    );
}

/// Exporter-wide families, labelled by `source` where they describe one.
pub mod exporter {
    /// Sources the automatic selection cannot tell present or absent.
    pub const SOURCE_UNKNOWN: (&str, &str) = (
        "netfilter_exporter_source_unknown",
        "1 for a source left out because the host does not say whether it has tables (a file only root may read).",
    );
    /// Failed writes of the looping textfile mode.
    pub const TEXTFILE_WRITE_FAILURES: (&str, &str) = (
        "netfilter_exporter_textfile_write_failures_total",
        "Writes of the textfile that failed since the exporter started.",
    );
    /// Build information.
    pub const BUILD_INFO: (&str, &str) = (
        "netfilter_exporter_build_info",
        "A metric with a constant value 1 labelled by the exporter's version.",
    );
    /// Collection duration in seconds.
    pub const COLLECTION_DURATION: (&str, &str) = (
        "netfilter_exporter_collection_duration_seconds",
        "Time the last collection of a source took, in seconds.",
    );
    /// Success of the last collection.
    pub const COLLECTION_SUCCESS: (&str, &str) = (
        "netfilter_exporter_collection_success",
        "1 if the last collection of a source succeeded, 0 if it failed.",
    );
    /// When the last collection ended.
    pub const COLLECTION_TIMESTAMP: (&str, &str) = (
        "netfilter_exporter_collection_timestamp_seconds",
        "Unix time at which the last collection of a source ended.",
    );
    /// Unparsed lines.
    pub const UNPARSED_LINES: (&str, &str) = (
        "netfilter_exporter_unparsed_lines",
        "Lines of the last dump of a source that the parser did not understand.",
    );
    /// Lines that were not UTF-8.
    pub const INVALID_UTF8_LINES: (&str, &str) = (
        "netfilter_exporter_invalid_utf8_lines",
        "Lines of the last dump of a source that were not valid UTF-8, read with U+FFFD in place of the invalid bytes.",
    );
    /// CPU cost of the last collection.
    pub const COLLECTION_CPU: (&str, &str) = (
        "netfilter_exporter_collection_cpu_seconds",
        "CPU time (user and system, child processes included) of the exporter while the last collection of a source ran.",
    );
    /// The effective collection interval.
    pub const COLLECTION_INTERVAL: (&str, &str) = (
        "netfilter_exporter_collection_interval_seconds",
        "Pause before the next collection of a source: --collect-interval, or longer to keep collections within --collect-cpu-budget.",
    );
    /// Rules without a cached text.
    pub const UNCACHED_RULES: (&str, &str) = (
        "netfilter_exporter_uncached_rules",
        "Rules of the last netlink read of an iptables source on nf_tables whose text was not cached, so that their chain was listed or iptables-save ran (0: netlink alone).",
    );
    /// Rules by how their text was found.
    pub const RULE_TEXTS: (&str, &str) = (
        "netfilter_exporter_rule_texts",
        "Rules of the last read of an iptables source on nf_tables by how their text was found: decoded (from the rule's expressions), cached, listed (iptables -S of their chain) or iptables_save.",
    );
    /// Rules whose text is not decoded, by what stopped the decoder.
    pub const UNDECODED_RULES: (&str, &str) = (
        "netfilter_exporter_undecoded_rules",
        "Rules of the last read of an iptables source on nf_tables whose text is not decoded from their expressions, by the extension (name rev N), expression or native match that stopped the decoder or printed differently from the host's iptables; their texts are listed.",
    );
    /// Runs of iptables-save by the netlink path.
    pub const SAVE_RUNS: (&str, &str) = (
        "netfilter_exporter_iptables_save_runs_total",
        "Runs of iptables-save by an iptables source read over netlink, to learn rule texts or the backend.",
    );
    /// Droppable series kept under --max-series.
    pub const SERIES: (&str, &str) = (
        "netfilter_exporter_series",
        "Series of the last collection of a source that --max-series may drop (per-rule, per-comment, user-defined chains'), kept.",
    );
    /// Droppable series dropped under --max-series.
    pub const SERIES_DROPPED: (&str, &str) = (
        "netfilter_exporter_series_dropped",
        "Series of the last collection of a source dropped to stay within --max-series, finest first.",
    );
    /// Rules read.
    pub const RULES: (&str, &str) = (
        "netfilter_exporter_rules",
        "Rules read in the last successful collection of a source.",
    );
}

/// The audit mode's families (docs/audit.md).
pub mod audit {
    /// Unexpected lines per table.
    pub const UNEXPECTED_RULES: (&str, &str) = (
        "netfilter_audit_unexpected_rules",
        "Lines of a table, in iptables -S form, that no allowlist pattern matched at the last check that listed it.",
    );
    /// Success of the last check.
    pub const CHECK_SUCCESS: (&str, &str) = (
        "netfilter_audit_check_success",
        "1 if the last check listed every table and read every allowlist, 0 if it failed.",
    );
    /// When the last check ended.
    pub const LAST_CHECK_TIMESTAMP: (&str, &str) = (
        "netfilter_audit_last_check_timestamp_seconds",
        "Unix time at which the last check ended, successful or not.",
    );
    /// Success of the last read of the pinned BPF map.
    pub const BPF_MAP_READ_SUCCESS: (&str, &str) = (
        "netfilter_audit_bpf_map_read_success",
        "1 if the last check read the pinned BPF map of --map-path, 0 if it could not.",
    );
    /// Key 0 of the map.
    pub const BPF_BLOCKED: (&str, &str) = (
        "netfilter_audit_bpf_blocked_attempts_total",
        "Attempts to add iptables rules that the BPF blocking program refused (key 0 of the pinned map).",
    );
    /// Key 1 of the map.
    pub const BPF_ALLOWED: (&str, &str) = (
        "netfilter_audit_bpf_allowed_attempts_total",
        "Attempts to add iptables rules that the BPF blocking program let through (key 1 of the pinned map, when it has one).",
    );
    /// Failed Kubernetes requests.
    pub const KUBERNETES_REQUEST_FAILURES: (&str, &str) = (
        "netfilter_audit_kubernetes_request_failures_total",
        "Kubernetes API requests of an operation that failed (refused, unanswered, or no TLS).",
    );
}

/// The exporter's own processes, named as Prometheus' client libraries name them so that
/// dashboards for any exporter work; labelled by `process` (`collector`, and `server`
/// when the HTTP side runs in a process of its own).
pub mod process {
    /// CPU time.
    pub const CPU_SECONDS: (&str, &str) = (
        "process_cpu_seconds_total",
        "Total user and system CPU time spent in seconds.",
    );
    /// Resident set size.
    pub const RESIDENT_MEMORY: (&str, &str) = (
        "process_resident_memory_bytes",
        "Resident memory size in bytes.",
    );
    /// Open file descriptors.
    pub const OPEN_FDS: (&str, &str) = ("process_open_fds", "Number of open file descriptors.");
    /// The soft open-file limit.
    pub const MAX_FDS: (&str, &str) = (
        "process_max_fds",
        "Maximum number of open file descriptors.",
    );
    /// Start time.
    pub const START_TIME: (&str, &str) = (
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
    );
}

/// The nftables source's families (labels in README).
pub mod nftables {
    /// Rule bytes.
    pub const RULE_BYTES: (&str, &str) = (
        "nftables_rule_bytes_total",
        "Bytes counted by the counter expressions of an nftables rule (summed when it has several).",
    );
    /// Rule packets.
    pub const RULE_PACKETS: (&str, &str) = (
        "nftables_rule_packets_total",
        "Packets counted by the counter expressions of an nftables rule (summed when it has several).",
    );
    /// Rules per chain.
    pub const CHAIN_RULES: (&str, &str) = (
        "nftables_chain_rules",
        "Number of rules in an nftables chain.",
    );
    /// Base chain settings.
    pub const CHAIN_INFO: (&str, &str) = (
        "nftables_chain_info",
        "An nftables base chain with its type, hook, priority and policy; always 1.",
    );
    /// The ruleset generation.
    pub const GENERATION: (&str, &str) = (
        "nftables_ruleset_generation",
        "Generation id of the nf_tables ruleset that was read; it changes with every change of the ruleset.",
    );
    /// Named counter bytes.
    pub const COUNTER_BYTES: (&str, &str) = (
        "nftables_object_bytes_total",
        "Bytes counted by a named nftables counter object.",
    );
    /// Named counter packets.
    pub const COUNTER_PACKETS: (&str, &str) = (
        "nftables_object_packets_total",
        "Packets counted by a named nftables counter object.",
    );
    /// Quota use.
    pub const QUOTA_USED: (&str, &str) = (
        "nftables_quota_used_bytes",
        "Bytes a named nftables quota has used.",
    );
    /// Quota limit.
    pub const QUOTA_LIMIT: (&str, &str) = (
        "nftables_quota_limit_bytes",
        "Limit of a named nftables quota, in bytes.",
    );
    /// Set sizes.
    pub const SET_ELEMENTS: (&str, &str) = (
        "nftables_set_elements",
        "Elements of a named nftables set or map (an interval counts once).",
    );
}

/// The ipset source's families (labels in README). hatamiarash7/ipset-exporter calls the
/// number of entries `ipset_entries_count`; these follow Prometheus naming instead, as no
/// compatibility is owed to it.
pub mod ipset {
    /// Members of a set.
    pub const ENTRIES: (&str, &str) = (
        "ipset_entries",
        "Entries of an ipset set (timed-out entries not counted).",
    );
    /// Most members of a set.
    pub const MAX_ENTRIES: (&str, &str) = (
        "ipset_max_entries",
        "Most entries an ipset set can hold: maxelem of a hash set, size of a list:set (none for a bitmap set, which its range bounds).",
    );
    /// Kernel memory of a set.
    pub const MEMORY: (&str, &str) = (
        "ipset_memory_bytes",
        "Kernel memory an ipset set takes, in bytes.",
    );
    /// References to a set.
    pub const REFERENCES: (&str, &str) = (
        "ipset_references",
        "Rules and list:set sets that use an ipset set.",
    );
    /// Member packets.
    pub const MEMBER_PACKETS: (&str, &str) = (
        "ipset_member_packets_total",
        "Packets that matched a member of an ipset set created with counters (--ipset.member-counters).",
    );
    /// Member bytes.
    pub const MEMBER_BYTES: (&str, &str) = (
        "ipset_member_bytes_total",
        "Bytes of the packets that matched a member of an ipset set created with counters (--ipset.member-counters).",
    );
    /// Members beyond the limit.
    pub const MEMBERS_LEFT_OUT: (&str, &str) = (
        "ipset_members_left_out",
        "Members of an ipset set created with counters that have no member series: those beyond --ipset.member-limit.",
    );
}
