//! Snapshot → the ipset source's families: per set its entries, most entries, memory and
//! references; with member counters, per member its packets and bytes, and per set the
//! members left out.

use super::limit::{Plan, Step, Unit};
use super::{SourceReport, names};
use crate::exposition::{ExpositionBuilder, Labels, MetricType};
use crate::ruleset::ipset::Set;

/// The series `render` may drop under `--max-series`: each set's member series.
pub(super) fn units(sets: &[Set]) -> Vec<Unit<'_>> {
    sets.iter()
        .filter(|set| !set.members.is_empty())
        .map(|set| Unit {
            step: Step::Rule,
            table: "",
            chain: &set.name,
            rules: set.members.len(),
            series: 2 * set.members.len(),
            grain: 2,
        })
        .collect()
}

/// Writes the ipset families of `report`'s snapshot, less what `plan` drops. The source is
/// newer than iptables_exporter: its success and duration are the exporter's per-source
/// families only.
pub(super) fn render(out: &mut ExpositionBuilder, report: &SourceReport, plan: &Plan<'_>) {
    if let Ok(reading) = &report.outcome {
        write(out, &reading.ruleset.ipsets, plan);
    }
}

/// Writes the ipset families of `sets`, in their order.
pub fn render_sets(out: &mut ExpositionBuilder, sets: &[Set]) {
    write(out, sets, &Plan::default());
}

fn write(out: &mut ExpositionBuilder, sets: &[Set], plan: &Plan<'_>) {
    let gauge = |(name, help): (&str, &str)| out.writer(name, help, MetricType::Gauge);
    let counter = |(name, help): (&str, &str)| out.writer(name, help, MetricType::Counter);
    let mut entries = gauge(names::ipset::ENTRIES);
    let mut max_entries = gauge(names::ipset::MAX_ENTRIES);
    let mut memory = gauge(names::ipset::MEMORY);
    let mut references = gauge(names::ipset::REFERENCES);
    let mut packets = counter(names::ipset::MEMBER_PACKETS);
    let mut bytes = counter(names::ipset::MEMBER_BYTES);
    let mut left_out = gauge(names::ipset::MEMBERS_LEFT_OUT);
    let mut labels = Labels::default();
    for set in sets {
        let (name, type_name) = (set.name.as_str(), set.type_name.as_str());
        match set.family {
            Some(family) => labels.set(&[
                ("set", name),
                ("type", type_name),
                ("family", family.as_str()),
            ]),
            None => labels.set(&[("set", name), ("type", type_name)]),
        }
        entries.labelled_sample(&labels, set.entries);
        if let Some(max) = set.max_entries {
            max_entries.labelled_sample(&labels, max);
        }
        memory.labelled_sample(&labels, set.memory_bytes);
        references.labelled_sample(&labels, set.references);
        let keep = plan.keep(Step::Rule, "", name, 2 * set.members.len()) / 2;
        for member in set.members.iter().take(keep) {
            labels.set(&[("set", name), ("member", &member.element)]);
            packets.labelled_sample(&labels, member.packets);
            bytes.labelled_sample(&labels, member.bytes);
        }
        if let Some(count) = set.members_left_out {
            left_out.sample(&[("set", name)], count);
        }
    }
    for family in [
        entries,
        max_entries,
        memory,
        references,
        packets,
        bytes,
        left_out,
    ] {
        out.push(family);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::Format;
    use crate::ruleset::Family;
    use crate::ruleset::ipset::Member;

    fn rendered(sets: &[Set]) -> String {
        let mut out = ExpositionBuilder::default();
        render_sets(&mut out, sets);
        String::from_utf8(out.finish().to_vec(Format::Text)).expect("UTF-8")
    }

    fn set(name: &str, type_name: &str, family: Option<Family>) -> Set {
        Set {
            name: name.to_owned(),
            type_name: type_name.to_owned(),
            family,
            entries: 2,
            max_entries: Some(65536),
            memory_bytes: 408,
            references: 1,
            members: Vec::new(),
            members_left_out: None,
        }
    }

    #[test]
    fn headers_only() {
        let sets = [
            set("blocked", "hash:ip", Some(Family::Ipv4)),
            Set {
                max_entries: None,
                ..set("ports", "bitmap:port", None)
            },
        ];
        assert_eq!(
            rendered(&sets),
            concat!(
                "# HELP ipset_entries Entries of an ipset set (timed-out entries not counted).\n",
                "# TYPE ipset_entries gauge\n",
                "ipset_entries{set=\"blocked\",type=\"hash:ip\",family=\"ipv4\"} 2\n",
                "ipset_entries{set=\"ports\",type=\"bitmap:port\"} 2\n",
                "# HELP ipset_max_entries Most entries an ipset set can hold: maxelem of a hash set, size of a list:set (none for a bitmap set, which its range bounds).\n",
                "# TYPE ipset_max_entries gauge\n",
                "ipset_max_entries{set=\"blocked\",type=\"hash:ip\",family=\"ipv4\"} 65536\n",
                "# HELP ipset_memory_bytes Kernel memory an ipset set takes, in bytes.\n",
                "# TYPE ipset_memory_bytes gauge\n",
                "ipset_memory_bytes{set=\"blocked\",type=\"hash:ip\",family=\"ipv4\"} 408\n",
                "ipset_memory_bytes{set=\"ports\",type=\"bitmap:port\"} 408\n",
                "# HELP ipset_references Rules and list:set sets that use an ipset set.\n",
                "# TYPE ipset_references gauge\n",
                "ipset_references{set=\"blocked\",type=\"hash:ip\",family=\"ipv4\"} 1\n",
                "ipset_references{set=\"ports\",type=\"bitmap:port\"} 1\n",
            )
        );
    }

    #[test]
    fn member_counters_and_members_left_out() {
        let member = |element: &str, packets, bytes| Member {
            element: element.to_owned(),
            packets,
            bytes,
        };
        let sets = [
            Set {
                members: vec![member("2001:db8::1", 2, 208), member("::1", 0, 0)],
                members_left_out: Some(0),
                ..set("six", "hash:ip", Some(Family::Ipv6))
            },
            Set {
                members: vec![member("10.0.0.1,tcp:80", 7, 420)],
                members_left_out: Some(1),
                ..set("web", "hash:ip,port", Some(Family::Ipv4))
            },
            // Created without counters: no member series, nothing left out.
            set("plain", "hash:net", Some(Family::Ipv4)),
        ];
        let text = rendered(&sets);
        let members: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("ipset_member"))
            .collect();
        assert_eq!(
            members,
            [
                "ipset_member_packets_total{set=\"six\",member=\"2001:db8::1\"} 2",
                "ipset_member_packets_total{set=\"six\",member=\"::1\"} 0",
                "ipset_member_packets_total{set=\"web\",member=\"10.0.0.1,tcp:80\"} 7",
                "ipset_member_bytes_total{set=\"six\",member=\"2001:db8::1\"} 208",
                "ipset_member_bytes_total{set=\"six\",member=\"::1\"} 0",
                "ipset_member_bytes_total{set=\"web\",member=\"10.0.0.1,tcp:80\"} 420",
                "ipset_members_left_out{set=\"six\"} 0",
                "ipset_members_left_out{set=\"web\"} 1",
            ]
        );
        assert!(text.contains("# TYPE ipset_member_packets_total counter\n"));
        let open_metrics = {
            let mut out = ExpositionBuilder::default();
            render_sets(&mut out, &sets);
            String::from_utf8(out.finish().to_vec(Format::OpenMetrics)).expect("UTF-8")
        };
        assert!(open_metrics.contains("# TYPE ipset_member_packets counter\n"));
    }

    #[test]
    fn no_set_no_family() {
        assert_eq!(rendered(&[]), "");
    }
}
