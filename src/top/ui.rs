//! Drawing the full screen: a header with the origins' health, the collection's cost and
//! what was left out; the rows on screen, no more (a 100k-rule node draws as fast as a small
//! one); the selected row's rate history as a sparkline; the keys, or the filter being
//! typed. Columns give way on a narrow terminal, the least needed first.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row as TableRow, Sparkline, Table};

use super::model::{Model, State};
use super::rates::Rate;
use super::rows::{Column, Row};
use super::table::{human, human_rate, name, name_title};
use super::view::{HISTORY_LEN, View};

/// What the header says besides the model: where the readings come from, how often, and
/// what top itself costs.
pub(super) struct Context<'a> {
    /// This host, or the exporter's URL.
    pub(super) reading: &'a str,
    /// `--delay`, in seconds.
    pub(super) delay: f64,
    /// Share of one core top used since the last reading, when known.
    pub(super) cpu_share: Option<f64>,
}

/// Draws `view` and `model`'s health on `frame`, and notes in `view` how many rows fit.
pub(super) fn draw(frame: &mut Frame<'_>, view: &mut View, model: &Model, context: &Context<'_>) {
    let area = frame.area();
    let header = header(view, model, context);
    // The header never takes more than a third of the screen; the sparkline goes first
    // when the screen is short.
    let header_height = (header.len() as u16).min(area.height / 3).max(1);
    let sparkline_height = if area.height >= 16 { 4 } else { 0 };
    let [header_area, table_area, sparkline_area, footer_area] = Layout::vertical([
        Constraint::Length(header_height),
        Constraint::Min(2),
        Constraint::Length(sparkline_height),
        Constraint::Length(1),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(header), header_area);
    view.page = usize::from(table_area.height.saturating_sub(1)).max(1);
    view.scroll();
    frame.render_widget(table(view, table_area.width), table_area);
    if sparkline_height > 0 {
        draw_sparkline(frame, view, sparkline_area);
    }
    frame.render_widget(Paragraph::new(footer(view)), footer_area);
}

/// The header's lines: the title with the view's settings; each origin's state; the notes
/// of what was left out.
fn header(view: &View, model: &Model, context: &Context<'_>) -> Vec<Line<'static>> {
    let sort = match view.sort {
        Column::PacketRate => "packets/s",
        Column::ByteRate if view.bits => "bits/s",
        Column::ByteRate => "bytes/s",
        Column::Packets => "packets",
        Column::Bytes => "bytes",
        Column::Name => "name",
    };
    let mut title = vec![
        Span::styled("netfilter_exporter top", Style::new().bold()),
        Span::raw(format!(
            " · {} every {}s · by {} · sorted by {sort}",
            context.reading,
            context.delay,
            view.group.as_str()
        )),
    ];
    if let Some(filter) = &view.filter {
        title.push(Span::raw(format!(
            " · filter /{}/: {} of {} rows",
            filter.as_str(),
            view.rows.len(),
            view.unfiltered
        )));
    }
    if let Some(share) = context.cpu_share {
        title.push(Span::raw(format!(" · top uses {:.1}% CPU", share * 100.0)));
    }
    if view.paused {
        title.push(Span::styled(" · PAUSED", Style::new().reversed()));
    }
    let mut lines = vec![Line::from(title)];
    let mut origins: Vec<Span<'static>> = Vec::new();
    let mut notes: Vec<Line<'static>> = Vec::new();
    for (origin, state) in model.states() {
        let span = match state {
            State::Read(health) => {
                let mut cost = String::new();
                if let Some(duration) = health.duration {
                    cost.push_str(&format!(" {}", seconds(duration)));
                }
                if let Some(cpu) = health.cpu {
                    cost.push_str(&format!(" ({} CPU)", seconds(cpu)));
                }
                for note in &health.notes {
                    notes.push(Line::from(format!("{origin}: {note}")).yellow());
                }
                Span::raw(format!("{origin} ok{cost}"))
            }
            State::Failed(error) => {
                notes.push(Line::from(format!("{origin} failed: {error}")).red());
                Span::styled(format!("{origin} FAILED"), Style::new().red().bold())
            }
            State::LeftOut(Some(why)) => {
                notes.push(Line::from(format!("{origin} left out: {why}")).yellow());
                Span::styled(format!("{origin} left out"), Style::new().yellow())
            }
            State::LeftOut(None) => continue,
        };
        if !origins.is_empty() {
            origins.push(Span::raw(" · "));
        }
        origins.push(span);
    }
    if origins.is_empty() {
        origins.push(Span::raw("reading…"));
    }
    lines.push(Line::from(origins));
    lines.extend(notes);
    lines
}

/// `value` seconds, in the unit a person reads best.
fn seconds(value: f64) -> String {
    if value < 0.01 {
        format!("{:.1}ms", value * 1000.0)
    } else if value < 1.0 {
        format!("{:.0}ms", value * 1000.0)
    } else {
        format!("{value:.1}s")
    }
}

/// A column of the table, in the order they give way on a narrow terminal (the last to go
/// last).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shown {
    Packets,
    Bytes,
    Source,
    Table,
    Chain,
}

/// The table of the rows on screen.
fn table(view: &View, width: u16) -> Table<'static> {
    let visible = view
        .rows
        .iter()
        .enumerate()
        .skip(view.offset)
        .take(view.page);
    let text_width = |of: &dyn Fn(&Row) -> &str, title: &str| {
        view.rows
            .iter()
            .skip(view.offset)
            .take(view.page)
            .map(|row| of(row).chars().count())
            .chain([title.len()])
            .max()
            .unwrap_or(0)
            // Room for kube-proxy's chain names (KUBE-SEP- and 16 characters).
            .min(32) as u16
    };
    let byte_title = if view.bits { "BITS/S" } else { "BYTES/S" };
    // Title, width, and whether the rows are sorted by it.
    let column = |column: Shown| match column {
        Shown::Packets => ("PACKETS", 8, view.sort == Column::Packets),
        Shown::Bytes => ("BYTES", 8, view.sort == Column::Bytes),
        Shown::Source => ("SOURCE", text_width(&|r| r.key.source, "SOURCE"), false),
        Shown::Table => ("TABLE", text_width(&|r| &r.key.table, "TABLE"), false),
        Shown::Chain => ("CHAIN", text_width(&|r| &r.key.chain, "CHAIN"), false),
    };
    let mut shown = vec![
        Shown::Packets,
        Shown::Bytes,
        Shown::Source,
        Shown::Table,
        Shown::Chain,
    ];
    // Each column and its space, the two rates, and the least room for the name.
    let needed = |shown: &[Shown]| shown.iter().map(|&c| column(c).1 + 1).sum::<u16>() + 2 * 9 + 16;
    while needed(&shown) > width && !shown.is_empty() {
        shown.remove(0);
    }
    let mut titles = vec![
        sort_title("PKTS/S", view.sort == Column::PacketRate),
        sort_title(byte_title, view.sort == Column::ByteRate),
    ];
    let mut widths = vec![Constraint::Length(8), Constraint::Length(8)];
    for &shown in &shown {
        let (title, width, sorted) = column(shown);
        titles.push(sort_title(title, sorted));
        widths.push(Constraint::Length(width));
    }
    titles.push(sort_title(
        name_title(view.group),
        view.sort == Column::Name,
    ));
    widths.push(Constraint::Fill(1));
    let scale = if view.bits { 8.0 } else { 1.0 };
    let rows = visible.map(|(index, row)| {
        let rate = |of: fn(&Rate) -> f64| human_rate(row.rate.as_ref().map(of));
        let mut cells = vec![
            Cell::from(format!("{:>8}", rate(|r| r.packets))),
            Cell::from(format!(
                "{:>8}",
                human_rate(row.rate.map(|r| r.bytes * scale))
            )),
        ];
        for column in &shown {
            cells.push(Cell::from(match column {
                Shown::Packets => format!("{:>8}", human(row.counters.packets as f64)),
                Shown::Bytes => format!("{:>8}", human(row.counters.bytes as f64)),
                Shown::Source => row.key.source.to_owned(),
                Shown::Table => row.key.table.to_string(),
                Shown::Chain => row.key.chain.to_string(),
            }));
        }
        cells.push(Cell::from(name(row, view.group).into_owned()));
        let style = if index == view.selected {
            Style::new().add_modifier(Modifier::REVERSED)
        } else if row.rate.is_some_and(|r| r.packets > 0.0) {
            Style::new()
        } else {
            Style::new().dim()
        };
        TableRow::new(cells).style(style)
    });
    Table::new(rows, widths)
        .header(TableRow::new(titles).style(Style::new().bold().underlined()))
        .column_spacing(1)
}

fn sort_title(title: &'static str, sorted: bool) -> Cell<'static> {
    if sorted {
        Cell::from(format!("{title}▼"))
    } else {
        Cell::from(title)
    }
}

/// The selected row's recent rate as a sparkline: packets per second, or bytes (bits) when
/// rows are sorted by those.
fn draw_sparkline(frame: &mut Frame<'_>, view: &View, area: Rect) {
    let Some((row, history)) = view.selected_history() else {
        return;
    };
    let bytes = matches!(view.sort, Column::ByteRate | Column::Bytes);
    let (unit, scale) = match (bytes, view.bits) {
        (false, _) => ("packets/s", 1.0),
        (true, false) => ("bytes/s", 1.0),
        (true, true) => ("bits/s", 8.0),
    };
    let values: Vec<f64> = history
        .into_iter()
        .flatten()
        .map(|rate| if bytes { rate.bytes } else { rate.packets } * scale)
        .collect();
    let peak = values.iter().copied().fold(0.0, f64::max);
    // Whole numbers for the widget, scaled so that rates below one still show.
    let data: Vec<u64> = values.iter().map(|v| (v * 100.0).round() as u64).collect();
    let key = &row.key;
    let title = format!(
        " {unit} of {} {} {} {}, last {} of {HISTORY_LEN} readings, peak {} ",
        key.source,
        key.table,
        key.chain,
        name(row, view.group),
        data.len(),
        human(peak)
    );
    // The newest reading at the right edge.
    let shown = usize::from(area.width).min(data.len());
    let sparkline = Sparkline::default()
        .block(Block::default().borders(Borders::TOP).title(title))
        .data(&data[data.len() - shown..])
        .style(Style::new().green());
    frame.render_widget(sparkline, area);
}

/// The last line: the keys, or the filter being typed with what is wrong with it.
fn footer(view: &View) -> Line<'static> {
    match &view.editing {
        Some(editing) => {
            let mut spans = vec![
                Span::styled(
                    "filter (regex, Enter keeps, Esc cancels): /",
                    Style::new().bold(),
                ),
                Span::raw(editing.text.clone()),
                Span::styled(" ", Style::new().reversed()),
            ];
            if let Some(error) = &editing.error {
                spans.push(Span::styled(format!("  {error}"), Style::new().red()));
            }
            Line::from(spans)
        }
        None => Line::from(
            " q quit · ↑↓ j k select · s sort · g group · / filter · space pause · b bits/bytes",
        )
        .dim(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::ruleset::Counters;
    use crate::top::model::{Health, Outcome, Update};
    use crate::top::rows::Group;
    use crate::top::series::{Key, Kind, Series, Snapshot};

    fn model() -> Model {
        let mut model = Model::default();
        for (at, packets) in [(10.0, 0), (11.0, 250)] {
            let rule = |name: &str, packets| Series {
                key: Key {
                    kind: Kind::Rule,
                    source: "iptables",
                    table: Arc::from("filter"),
                    chain: Arc::from("KUBE-SEP-ABCDEFGHIJKLMNOP"),
                    name: Arc::from(name),
                },
                counters: Counters {
                    packets,
                    bytes: packets * 100,
                },
                stands_for_rules: false,
            };
            model.apply(Update {
                origin: "iptables".to_owned(),
                outcome: Outcome::Read {
                    snapshot: Snapshot {
                        at,
                        series: vec![rule("-p icmp -j ACCEPT", packets), rule("-j DROP", 0)],
                    },
                    health: Health {
                        duration: Some(0.012),
                        cpu: Some(0.003),
                        notes: vec!["series dropped by the exporter (--max-series): 7".into()],
                    },
                },
            });
        }
        for (origin, outcome) in [
            (
                "nftables",
                Outcome::Failed("netlink: permission denied".into()),
            ),
            (
                "iptables-legacy",
                Outcome::LeftOut(Some("cannot read it".into())),
            ),
            ("ipset", Outcome::LeftOut(None)),
        ] {
            model.apply(Update {
                origin: origin.to_owned(),
                outcome,
            });
        }
        model
    }

    /// The screen drawn at `width`×`height`, line by line.
    fn drawn(width: u16, height: u16) -> Vec<String> {
        let model = model();
        let mut view = View::new(Group::Rule);
        view.refresh(&model);
        view.refresh(&model);
        let context = Context {
            reading: "this host",
            delay: 1.0,
            cpu_share: Some(0.02),
        };
        let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("a terminal");
        terminal
            .draw(|frame| draw(frame, &mut view, &model, &context))
            .expect("drawn");
        let buffer = terminal.backend().buffer();
        (0..height)
            .map(|y| {
                (0..width)
                    .map(|x| buffer.cell((x, y)).map_or(" ", |c| c.symbol()))
                    .collect::<String>()
                    .trim_end()
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn the_header_says_each_sources_state_and_what_was_left_out() {
        let screen = drawn(160, 40);
        assert!(
            screen[0].starts_with("netfilter_exporter top · this host every 1s · by rule"),
            "{screen:#?}"
        );
        assert!(screen[0].contains("top uses 2.0% CPU"), "{screen:#?}");
        assert_eq!(
            screen[1],
            "iptables ok 12ms (3.0ms CPU) · nftables FAILED · iptables-legacy left out"
        );
        assert_eq!(
            screen[2],
            "iptables: series dropped by the exporter (--max-series): 7"
        );
        assert_eq!(screen[3], "nftables failed: netlink: permission denied");
        assert_eq!(screen[4], "iptables-legacy left out: cannot read it");
        let titles: Vec<&str> = screen[5].split_whitespace().collect();
        assert_eq!(
            titles,
            [
                "PKTS/S▼",
                "BYTES/S",
                "PACKETS",
                "BYTES",
                "SOURCE",
                "TABLE",
                "CHAIN",
                "RULE"
            ]
        );
        let first: Vec<&str> = screen[6].split_whitespace().collect();
        assert_eq!(
            first[..5],
            ["250", "25.0k", "250", "25.0k", "iptables"],
            "{screen:#?}"
        );
        assert!(
            screen[6].ends_with("KUBE-SEP-ABCDEFGHIJKLMNOP -p icmp -j ACCEPT"),
            "{screen:#?}"
        );
        assert!(
            screen
                .iter()
                .any(|l| l.starts_with(" packets/s of iptables filter")),
            "{screen:#?}"
        );
        assert!(screen[39].starts_with(" q quit"), "{screen:#?}");
    }

    #[test]
    fn a_narrow_terminal_keeps_the_rates_and_the_rule() {
        let screen = drawn(60, 12);
        let table = screen
            .iter()
            .position(|l| l.starts_with("PKTS/S"))
            .expect("titles");
        let titles: Vec<&str> = screen[table].split_whitespace().collect();
        assert_eq!(
            titles,
            ["PKTS/S▼", "BYTES/S", "CHAIN", "RULE"],
            "{screen:#?}"
        );
        assert!(screen[table + 1].contains("-p icmp"), "{screen:#?}");
        assert!(
            !screen.iter().any(|l| l.contains("packets/s of")),
            "no room for a sparkline"
        );
        // Too small for anything useful, and still drawn.
        drawn(12, 3);
        drawn(1, 1);
    }
}
