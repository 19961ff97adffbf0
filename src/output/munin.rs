//! The Munin plugin protocol's text (`config`, fetch, `suggest`) drawn from the accounting
//! view, in the shape the `traffic_accounting` plugin gave its graphs.
//!
//! It is a pure function of a [`TagView`]: whichever source produced the view (iptables-save
//! today, nftables later) feeds the same graphs. Both `config` and fetch print the same list
//! of [`Graph`]s, so names, fields and values can never disagree between the two.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::str::FromStr;

use crate::accounting::{TagEntity, TagView, Traffic};
use crate::ruleset::{Counters, Family};

/// The plugin's name, and the prefix of every graph and wildcard symlink.
pub const PLUGIN_NAME: &str = "traffic_accounting";

/// What the graphs count (`env.what`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Bytes times eight.
    Bits,
    /// Bytes as the kernel counts them (layer 3).
    Bytes,
    /// Packets.
    Packets,
}

impl Unit {
    /// The setting's value, also the vertical label's unit.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Bits => "bits",
            Unit::Bytes => "bytes",
            Unit::Packets => "packets",
        }
    }

    fn value(self, counters: Counters) -> u64 {
        match self {
            Unit::Bits => counters.bytes.saturating_mul(8),
            Unit::Bytes => counters.bytes,
            Unit::Packets => counters.packets,
        }
    }
}

/// A `what` value that is none of bits, bytes or packets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown unit {0:?} (expected bits, bytes or packets)")]
pub struct UnknownUnit(pub String);

impl FromStr for Unit {
    type Err = UnknownUnit;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "bits" => Ok(Unit::Bits),
            "bytes" => Ok(Unit::Bytes),
            "packets" => Ok(Unit::Packets),
            other => Err(UnknownUnit(other.to_owned())),
        }
    }
}

/// Which graphs the plugin draws.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// Per family, a root graph with every tag and one graph per tag under it.
    Multigraph,
    /// The one graph of a wildcard symlink `traffic_accounting_<family>_<tag>`; `tag` is
    /// the tag as written in the rules or its sanitised field name.
    Single {
        /// The family named by the symlink.
        family: Family,
        /// The tag named by the symlink.
        tag: String,
    },
}

/// How a field is drawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Draw {
    /// A normal line.
    Line,
    /// Not drawn itself: the incoming half of a pair, drawn below the axis by its partner.
    Hidden,
    /// The outgoing half of a pair, drawn above the axis, with the named field below it.
    Above {
        /// The name of the incoming field.
        negative: String,
    },
}

/// One data source of a graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Sanitised, unique within its graph.
    pub name: String,
    /// The legend text.
    pub label: String,
    /// How it is drawn.
    pub draw: Draw,
    /// The counter in the chosen unit.
    pub value: u64,
}

/// One Munin graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graph {
    /// The `multigraph` name; `None` for the graph of a wildcard symlink.
    pub name: Option<String>,
    /// `graph_title`.
    pub title: String,
    /// `graph_vlabel`.
    pub vlabel: String,
    /// The fields in view order.
    pub fields: Vec<Field>,
}

/// The graphs a view gives under `layout`, counting in `unit`. Families without tags give
/// no graph; a wildcard tag that is not in the view gives none either.
pub fn graphs(view: &TagView, unit: Unit, layout: &Layout) -> Vec<Graph> {
    let mut graphs = Vec::new();
    for family in [Family::Ipv4, Family::Ipv6] {
        let tags = named_entities(view, family);
        match layout {
            Layout::Multigraph if !tags.is_empty() => {
                let root_name = format!("{PLUGIN_NAME}_{family}");
                let mut names = Names::default();
                let mut fields = Vec::new();
                for (id, entity) in &tags {
                    fields.extend(entity_fields(entity, unit, &mut names, Some(id)));
                }
                graphs.push(Graph {
                    name: Some(root_name.clone()),
                    title: format!("{} traffic accounting", family_title(family)),
                    vlabel: vlabel(unit, &fields),
                    fields,
                });
                graphs.extend(tags.iter().map(|(id, entity)| {
                    tag_graph(Some(format!("{root_name}.{id}")), entity, unit)
                }));
            }
            Layout::Multigraph => {}
            Layout::Single {
                family: wanted,
                tag,
            } if *wanted == family => {
                if let Some((_, entity)) = tags
                    .iter()
                    .find(|(_, e)| e.tag == *tag)
                    .or_else(|| tags.iter().find(|(id, _)| id == tag))
                {
                    graphs.push(tag_graph(None, entity, unit));
                }
            }
            Layout::Single { .. } => {}
        }
    }
    graphs
}

/// The `config` answer: every graph's definition.
pub fn config(graphs: &[Graph]) -> String {
    let mut out = String::new();
    for graph in graphs {
        if let Some(name) = &graph.name {
            let _ = writeln!(out, "multigraph {name}");
        }
        let _ = writeln!(out, "graph_title {}", one_line(&graph.title));
        let _ = writeln!(out, "graph_args --base 1000");
        let _ = writeln!(out, "graph_vlabel {}", graph.vlabel);
        let _ = writeln!(out, "graph_category network");
        for field in &graph.fields {
            let name = &field.name;
            let _ = writeln!(out, "{name}.label {}", one_line(&field.label));
            let _ = writeln!(out, "{name}.type DERIVE");
            let _ = writeln!(out, "{name}.min 0");
            match &field.draw {
                Draw::Line => {}
                Draw::Hidden => {
                    let _ = writeln!(out, "{name}.graph no");
                }
                Draw::Above { negative } => {
                    let _ = writeln!(out, "{name}.negative {negative}");
                }
            }
        }
    }
    out
}

/// The fetch answer: every graph's values.
pub fn fetch(graphs: &[Graph]) -> String {
    let mut out = String::new();
    for graph in graphs {
        if let Some(name) = &graph.name {
            let _ = writeln!(out, "multigraph {name}");
        }
        for field in &graph.fields {
            let _ = writeln!(out, "{}.value {}", field.name, field.value);
        }
    }
    out
}

/// The `suggest` answer: one `<family>_<tag>` line per tag, the suffixes of the wildcard
/// symlinks `traffic_accounting_<family>_<tag>`.
pub fn suggest(view: &TagView) -> String {
    let mut out = String::new();
    for family in [Family::Ipv4, Family::Ipv6] {
        for (id, _) in named_entities(view, family) {
            let _ = writeln!(out, "{family}_{id}");
        }
    }
    out
}

/// Turns any text into a Munin field name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn sanitise(text: &str) -> String {
    let mut name: String = text
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    name
}

/// Sanitised names made unique within one graph (or one family) with `_2`, `_3` … suffixes.
#[derive(Default)]
struct Names(HashSet<String>);

impl Names {
    fn claim(&mut self, text: &str) -> String {
        let base = sanitise(text);
        let mut name = base.clone();
        let mut n = 1;
        while self.0.contains(&name) {
            n += 1;
            name = format!("{base}_{n}");
        }
        self.0.insert(name.clone());
        name
    }
}

/// The family's entities in view order, each with its sanitised, unique name.
fn named_entities(view: &TagView, family: Family) -> Vec<(String, &TagEntity)> {
    let mut names = Names::default();
    view.entities
        .iter()
        .filter(|e| e.family == family)
        .map(|e| (names.claim(&e.tag), e))
        .collect()
}

/// The graph of one tag: its description as title, one field or a sent/received pair.
fn tag_graph(name: Option<String>, entity: &TagEntity, unit: Unit) -> Graph {
    let mut names = Names::default();
    let fields = entity_fields(entity, unit, &mut names, None);
    Graph {
        name,
        title: entity.description.clone(),
        vlabel: vlabel(unit, &fields),
        fields,
    }
}

/// The fields of one entity. In a root graph (`root_id`, the entity's unique name there) a
/// single tag's field is `<id>` and a pair's `<id>_down`/`<id>_up`; in the tag's own graph they
/// are `<tag>` and `down`/`up`. Every field is labelled with the tag's
/// description. A pair with both halves draws the incoming half below the axis; a lone half
/// is a plain line.
fn entity_fields(
    entity: &TagEntity,
    unit: Unit,
    names: &mut Names,
    root_id: Option<&str>,
) -> Vec<Field> {
    let half = |half: &str| root_id.map_or_else(|| half.to_owned(), |id| format!("{id}_{half}"));
    let label = &entity.description;
    match entity.traffic {
        Traffic::Single(counters) => vec![Field {
            name: names.claim(root_id.unwrap_or(&entity.tag)),
            label: label.clone(),
            draw: Draw::Line,
            value: unit.value(counters),
        }],
        Traffic::Paired { up, down } => {
            let down = down.map(|counters| Field {
                name: names.claim(&half("down")),
                label: label.clone(),
                draw: if up.is_some() {
                    Draw::Hidden
                } else {
                    Draw::Line
                },
                value: unit.value(counters),
            });
            let up = up.map(|counters| Field {
                name: names.claim(&half("up")),
                label: label.clone(),
                draw: match &down {
                    Some(down) => Draw::Above {
                        negative: down.name.clone(),
                    },
                    None => Draw::Line,
                },
                value: unit.value(counters),
            });
            down.into_iter().chain(up).collect()
        }
    }
}

fn vlabel(unit: Unit, fields: &[Field]) -> String {
    let unit = unit.as_str();
    if fields.iter().any(|f| matches!(f.draw, Draw::Above { .. })) {
        format!("{unit} in (-) / out (+) per ${{graph_period}}")
    } else {
        format!("{unit} per ${{graph_period}}")
    }
}

fn family_title(family: Family) -> &'static str {
    match family {
        Family::Ipv4 => "IPv4",
        Family::Ipv6 => "IPv6",
        Family::Inet | Family::Arp | Family::Bridge | Family::Netdev => family.as_str(),
    }
}

/// Munin's protocol is line based: a newline in a description would end the line.
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests;
