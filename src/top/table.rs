//! How a row reads: its name cell, its numbers for a person (the full screen) and the plain
//! table of `--once`, for scripts and tickets.

use std::borrow::Cow;

use super::rates::Rate;
use super::rows::{Group, Row};
use super::series::Kind;

/// The name cell of `row` under `group`.
pub fn name(row: &Row, group: Group) -> Cow<'_, str> {
    match (group, row.key.kind) {
        (Group::Rule, Kind::Chain) => Cow::Borrowed("(no rule series: the chain's policy)"),
        _ if row.key.name.is_empty() => Cow::Borrowed("-"),
        _ => Cow::Borrowed(&row.key.name),
    }
}

/// The title of the name column under `group`.
pub fn name_title(group: Group) -> &'static str {
    match group {
        Group::Rule => "RULE",
        Group::Comment => "COMMENT",
        Group::Chain => "",
        Group::Tag => "TAG",
        Group::Object => "OBJECT",
    }
}

/// `value` with an SI prefix and three significant digits: `950`, `1.23k`, `45.6M`.
pub fn human(value: f64) -> String {
    const PREFIXES: [&str; 7] = ["", "k", "M", "G", "T", "P", "E"];
    let mut scaled = value;
    let mut prefix = 0;
    while scaled.abs() >= 999.5 && prefix + 1 < PREFIXES.len() {
        scaled /= 1000.0;
        prefix += 1;
    }
    let decimals = match scaled.abs() {
        _ if prefix == 0 && scaled.fract() == 0.0 => 0,
        a if a < 9.995 => 2,
        a if a < 99.95 => 1,
        _ => 0,
    };
    format!("{scaled:.decimals$}{}", PREFIXES[prefix])
}

/// A rate for a person; `-` while there is none yet.
pub fn human_rate(rate: Option<f64>) -> String {
    rate.map_or_else(|| "-".to_owned(), human)
}

/// The plain table of `--once`: a header line and one line per row, columns aligned and
/// separated by spaces, the name last and whole; rates per second with one decimal.
pub fn plain(rows: &[Row], group: Group) -> String {
    let rate = |rate: Option<Rate>, of: fn(&Rate) -> f64| {
        rate.as_ref()
            .map_or_else(|| "-".to_owned(), |r| format!("{:.1}", of(r)))
    };
    let dash = |text: &str| {
        if text.is_empty() {
            "-".to_owned()
        } else {
            text.to_owned()
        }
    };
    let header = [
        "PKTS/S", "BYTES/S", "PACKETS", "BYTES", "SOURCE", "TABLE", "CHAIN",
    ]
    .map(str::to_owned);
    let lines: Vec<[String; 7]> = rows
        .iter()
        .map(|row| {
            [
                rate(row.rate, |r| r.packets),
                rate(row.rate, |r| r.bytes),
                row.counters.packets.to_string(),
                row.counters.bytes.to_string(),
                row.key.source.to_owned(),
                dash(&row.key.table),
                dash(&row.key.chain),
            ]
        })
        .collect();
    let mut widths = header.clone().map(|h| h.len());
    for line in &lines {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut write = |cells: &[String; 7], name: &str| {
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            let padded = if i < 4 {
                format!("{cell:>width$}")
            } else {
                format!("{cell:<width$}")
            };
            out.push_str(&padded);
            out.push(' ');
        }
        out.push_str(name);
        let end = out.trim_end().len();
        out.truncate(end);
        out.push('\n');
    };
    write(&header, name_title(group));
    for (line, row) in lines.iter().zip(rows) {
        write(line, &name(row, group));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::ruleset::Counters;
    use crate::top::series::Key;

    #[test]
    fn human_numbers() {
        let cases = [
            (0.0, "0"),
            (7.0, "7"),
            (0.5, "0.50"),
            (950.0, "950"),
            (999.6, "1.00k"),
            (1234.0, "1.23k"),
            (45_600_000.0, "45.6M"),
            (123_456_789_000.0, "123G"),
        ];
        for (value, expected) in cases {
            assert_eq!(human(value), expected, "{value}");
        }
        assert_eq!(human_rate(None), "-");
    }

    #[test]
    fn the_plain_table_aligns_and_keeps_names_whole() {
        let row = |chain: &str, name: &str, rate: Option<Rate>, packets| Row {
            key: Key {
                kind: Kind::Rule,
                source: "iptables",
                table: Arc::from("filter"),
                chain: Arc::from(chain),
                name: Arc::from(name),
            },
            rate,
            counters: Counters {
                packets,
                bytes: packets * 84,
            },
        };
        let rows = [
            row(
                "INPUT",
                "-p icmp -m icmp --icmp-type 8 -j ACCEPT",
                Some(Rate {
                    packets: 20.0,
                    bytes: 1680.0,
                }),
                1234,
            ),
            row("KUBE-SERVICES", "-j RETURN", None, 0),
        ];
        assert_eq!(
            plain(&rows, Group::Rule),
            "\
PKTS/S BYTES/S PACKETS  BYTES SOURCE   TABLE  CHAIN         RULE
  20.0  1680.0    1234 103656 iptables filter INPUT         -p icmp -m icmp --icmp-type 8 -j ACCEPT
     -       -       0      0 iptables filter KUBE-SERVICES -j RETURN
"
        );
    }
}
