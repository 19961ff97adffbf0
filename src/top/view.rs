//! What the full screen shows and how the keys change it: the rows (grouped, filtered,
//! sorted), the selected one, the filter being typed, the pause, and a short rate history of
//! the busiest rows for the selected row's sparkline. Pure: [`super::screen`] feeds it keys
//! and readings and draws it.

use std::collections::{HashMap, VecDeque};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use regex::Regex;

use super::model::Model;
use super::rates::Rate;
use super::rows::{Column, Group, Row, retain_matching, rows, sort};
use super::series::Key;

/// Readings a row's history keeps.
pub(super) const HISTORY_LEN: usize = 120;

/// Rows whose history is kept, from the top of the order: a sparkline is wanted of the busy
/// rows, and keeping one for each of 100k rules would cost more than the rest of top.
const HISTORY_ROWS: usize = 256;

/// The full screen's state.
#[derive(Debug)]
pub(super) struct View {
    /// What a row stands for.
    pub(super) group: Group,
    /// What rows are sorted by.
    pub(super) sort: Column,
    /// Bits per second rather than bytes.
    pub(super) bits: bool,
    /// Readings wait while paused.
    pub(super) paused: bool,
    /// The filter in force.
    pub(super) filter: Option<Regex>,
    /// The filter being typed after `/`, and the one in force before it.
    pub(super) editing: Option<Editing>,
    /// The rows, filtered and sorted.
    pub(super) rows: Vec<Row>,
    /// Rows before the filter.
    pub(super) unfiltered: usize,
    /// The selected row's index in `rows`.
    pub(super) selected: usize,
    /// The first row on screen.
    pub(super) offset: usize,
    /// Rows the table shows at once, as last drawn.
    pub(super) page: usize,
    /// The row the user selected, which the selection follows as the order changes;
    /// `None` keeps the selection where it is (on the first row, at start).
    selected_key: Option<Key>,
    /// Recent rates of the rows near the top, oldest first.
    history: HashMap<Key, VecDeque<Rate>>,
}

/// The filter being typed.
#[derive(Debug, Clone)]
pub(super) struct Editing {
    /// The text typed so far.
    pub(super) text: String,
    /// Why the text is not a regular expression, when it is not.
    pub(super) error: Option<String>,
    /// The filter before editing, back on Esc.
    before: Option<Regex>,
}

/// What a key asks of the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    /// Leave.
    Quit,
    /// Draw again.
    Redraw,
    /// Nothing changed.
    Nothing,
}

impl View {
    /// A view grouping by `group`, sorted by packet rate.
    pub(super) fn new(group: Group) -> View {
        View {
            group,
            sort: Column::default(),
            bits: false,
            paused: false,
            filter: None,
            editing: None,
            rows: Vec::new(),
            unfiltered: 0,
            selected: 0,
            offset: 0,
            page: 1,
            selected_key: None,
            history: HashMap::new(),
        }
    }

    /// Takes `key`; rows it regroups, refilters or resorts are made again from `model`.
    pub(super) fn key(&mut self, key: KeyEvent, model: &Model) -> Action {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Action::Quit;
        }
        if self.editing.is_some() {
            return self.edit(key, model);
        }
        match key.code {
            KeyCode::Char('q') | KeyCode::Esc => return Action::Quit,
            KeyCode::Up | KeyCode::Char('k') => self.pick(self.selected.saturating_sub(1)),
            KeyCode::Down | KeyCode::Char('j') => self.pick(self.selected + 1),
            KeyCode::PageUp => self.pick(self.selected.saturating_sub(self.page)),
            KeyCode::PageDown => self.pick(self.selected + self.page),
            KeyCode::End => self.pick(usize::MAX),
            KeyCode::Home => {
                // Back to following the top of the order.
                self.selected_key = None;
                self.select(0);
            }
            KeyCode::Char('s') => {
                self.sort = self.sort.next();
                self.rebuild(model);
            }
            KeyCode::Char('g') => {
                self.group = self.group.next();
                self.history.clear();
                self.selected_key = None;
                self.rebuild(model);
            }
            KeyCode::Char('b') => self.bits = !self.bits,
            KeyCode::Char(' ') => self.paused = !self.paused,
            KeyCode::Char('/') => {
                self.editing = Some(Editing {
                    text: self
                        .filter
                        .as_ref()
                        .map(|f| f.as_str().to_owned())
                        .unwrap_or_default(),
                    error: None,
                    before: self.filter.clone(),
                });
            }
            _ => return Action::Nothing,
        }
        Action::Redraw
    }

    /// A key while the filter is typed: the rows narrow as it is typed, Enter keeps it,
    /// Esc puts back the one before.
    fn edit(&mut self, key: KeyEvent, model: &Model) -> Action {
        let Some(editing) = &mut self.editing else {
            return Action::Nothing;
        };
        match key.code {
            KeyCode::Enter => {
                let error = editing.error.is_some();
                self.editing = None;
                if error {
                    self.filter = None;
                    self.rebuild(model);
                }
                return Action::Redraw;
            }
            KeyCode::Esc => {
                self.filter = editing.before.take();
                self.editing = None;
                self.rebuild(model);
                return Action::Redraw;
            }
            KeyCode::Backspace => {
                editing.text.pop();
            }
            KeyCode::Char(c) => editing.text.push(c),
            _ => return Action::Nothing,
        }
        match Regex::new(&editing.text) {
            Ok(_) if editing.text.is_empty() => {
                editing.error = None;
                self.filter = None;
            }
            Ok(filter) => {
                editing.error = None;
                self.filter = Some(filter);
            }
            Err(e) => {
                // The rows stay as the last valid text left them.
                editing.error = Some(e.to_string().lines().last().unwrap_or("").to_owned());
                return Action::Redraw;
            }
        }
        self.rebuild(model);
        Action::Redraw
    }

    /// Makes the rows again from `model` after new readings, and notes the rates of the
    /// rows near the top in their history.
    pub(super) fn refresh(&mut self, model: &Model) {
        self.rebuild(model);
        let keep: Vec<(Key, Option<Rate>)> = self
            .rows
            .iter()
            .take(HISTORY_ROWS)
            .chain(self.rows.get(self.selected))
            .map(|row| (row.key.clone(), row.rate))
            .collect();
        let mut history = std::mem::take(&mut self.history);
        for (key, rate) in keep {
            if self.history.contains_key(&key) {
                continue;
            }
            let mut past = history.remove(&key).unwrap_or_default();
            past.push_back(rate.unwrap_or_default());
            if past.len() > HISTORY_LEN {
                past.pop_front();
            }
            self.history.insert(key, past);
        }
    }

    /// The recent rates of the selected row, oldest first.
    pub(super) fn selected_history(&self) -> Option<(&Row, Option<&VecDeque<Rate>>)> {
        let row = self.rows.get(self.selected)?;
        Some((row, self.history.get(&row.key)))
    }

    /// Makes the rows again from `model`: grouped, filtered, sorted; the selection follows
    /// its row.
    fn rebuild(&mut self, model: &Model) {
        let mut rows = rows(model.series(), self.group);
        self.unfiltered = rows.len();
        if let Some(filter) = &self.filter {
            retain_matching(&mut rows, filter);
        }
        sort(&mut rows, self.sort);
        self.rows = rows;
        let found = self
            .selected_key
            .as_ref()
            .and_then(|key| self.rows.iter().position(|row| &row.key == key));
        self.select(found.unwrap_or(self.selected));
    }

    /// Selects the row at `index` for the user: the selection follows that row from now on.
    fn pick(&mut self, index: usize) {
        self.select(index);
        self.selected_key = self.rows.get(self.selected).map(|row| row.key.clone());
    }

    /// Selects the row at `index` (the last one past the end), keeping it on screen.
    fn select(&mut self, index: usize) {
        self.selected = index.min(self.rows.len().saturating_sub(1));
        self.scroll();
    }

    /// Moves the rows on screen so that the selected one is among them.
    pub(super) fn scroll(&mut self) {
        let page = self.page.max(1);
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if self.selected >= self.offset + page {
            self.offset = self.selected + 1 - page;
        }
        self.offset = self.offset.min(self.rows.len().saturating_sub(page));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ratatui::crossterm::event::KeyEventKind;

    use super::*;
    use crate::ruleset::Counters;
    use crate::top::model::{Health, Outcome, Update};
    use crate::top::series::{Kind, Series, Snapshot};

    fn model(at: f64, rules: &[(&str, u64)]) -> Model {
        let mut model = Model::default();
        for (i, at) in [at - 1.0, at].into_iter().enumerate() {
            let series = rules
                .iter()
                .map(|&(name, packets)| Series {
                    key: Key {
                        kind: Kind::Rule,
                        source: "iptables",
                        table: Arc::from("filter"),
                        chain: Arc::from("INPUT"),
                        name: Arc::from(name),
                    },
                    counters: Counters {
                        packets: packets * i as u64,
                        bytes: 0,
                    },
                    stands_for_rules: false,
                })
                .collect();
            model.apply(Update {
                origin: "iptables".to_owned(),
                outcome: Outcome::Read {
                    snapshot: Snapshot { at, series },
                    health: Health::default(),
                },
            });
        }
        model
    }

    fn press(view: &mut View, model: &Model, code: KeyCode) -> Action {
        let key = KeyEvent {
            code,
            modifiers: KeyModifiers::NONE,
            kind: KeyEventKind::Press,
            state: ratatui::crossterm::event::KeyEventState::NONE,
        };
        view.key(key, model)
    }

    fn names(view: &View) -> Vec<&str> {
        view.rows.iter().map(|r| &*r.key.name).collect()
    }

    #[test]
    fn the_busiest_row_first_and_the_selection_follows_its_row() {
        let model1 = model(10.0, &[("-j A", 1), ("-j B", 5), ("-j C", 3)]);
        let mut view = View::new(Group::Rule);
        view.page = 2;
        view.refresh(&model1);
        assert_eq!(names(&view), ["-j B", "-j C", "-j A"]);
        press(&mut view, &model1, KeyCode::Down);
        press(&mut view, &model1, KeyCode::Char('j'));
        assert_eq!((view.selected, view.offset), (2, 1));
        // -j A becomes the busiest: still selected, now first.
        let model2 = model(20.0, &[("-j A", 9), ("-j B", 5), ("-j C", 3)]);
        view.refresh(&model2);
        assert_eq!(
            (view.selected, &*view.rows[view.selected].key.name),
            (0, "-j A")
        );
        assert_eq!(view.offset, 0);
        let (_, history) = view.selected_history().expect("a row");
        assert_eq!(history.map(VecDeque::len), Some(2));
        view.refresh(&model2);
        let (_, history) = view.selected_history().expect("a row");
        assert_eq!(history.map(VecDeque::len), Some(3));
    }

    #[test]
    fn without_a_key_the_selection_stays_on_the_first_row() {
        let mut view = View::new(Group::Rule);
        // No rates yet: by name, -j A first.
        view.refresh(&model(10.0, &[("-j A", 0), ("-j B", 0)]));
        assert_eq!(view.rows[view.selected].key.name.as_ref(), "-j A");
        let busy = model(20.0, &[("-j A", 1), ("-j B", 5)]);
        view.refresh(&busy);
        assert_eq!(view.rows[view.selected].key.name.as_ref(), "-j B");
        press(&mut view, &busy, KeyCode::Down);
        press(&mut view, &busy, KeyCode::Home);
        view.refresh(&model(30.0, &[("-j A", 9), ("-j B", 5)]));
        assert_eq!(view.rows[view.selected].key.name.as_ref(), "-j A");
    }

    #[test]
    fn a_filter_narrows_the_rows_as_it_is_typed_and_esc_puts_back_the_last() {
        let model = model(10.0, &[("-p icmp -j ACCEPT", 1), ("-p tcp -j ACCEPT", 2)]);
        let mut view = View::new(Group::Rule);
        view.refresh(&model);
        press(&mut view, &model, KeyCode::Char('/'));
        for c in "icm".chars() {
            press(&mut view, &model, KeyCode::Char(c));
        }
        assert_eq!(names(&view), ["-p icmp -j ACCEPT"]);
        assert_eq!(view.unfiltered, 2);
        // Not a regex yet: the rows stay, the error shows.
        press(&mut view, &model, KeyCode::Char('('));
        assert!(view.editing.as_ref().is_some_and(|e| e.error.is_some()));
        assert_eq!(names(&view), ["-p icmp -j ACCEPT"]);
        press(&mut view, &model, KeyCode::Backspace);
        press(&mut view, &model, KeyCode::Enter);
        assert!(view.editing.is_none());
        assert_eq!(view.filter.as_ref().map(Regex::as_str), Some("icm"));
        press(&mut view, &model, KeyCode::Char('/'));
        for _ in 0..3 {
            press(&mut view, &model, KeyCode::Backspace);
        }
        assert_eq!(view.rows.len(), 2, "an empty filter keeps every row");
        for c in "tcp".chars() {
            press(&mut view, &model, KeyCode::Char(c));
        }
        assert_eq!(names(&view), ["-p tcp -j ACCEPT"]);
        press(&mut view, &model, KeyCode::Esc);
        assert_eq!(names(&view), ["-p icmp -j ACCEPT"]);
        // Esc, once the filter is not typed, and q, leave.
        assert_eq!(press(&mut view, &model, KeyCode::Esc), Action::Quit);
        assert_eq!(press(&mut view, &model, KeyCode::Char('q')), Action::Quit);
    }

    #[test]
    fn keys_that_change_the_columns_the_grouping_and_the_pause() {
        let model = model(10.0, &[("-j A", 1), ("-j B", 5)]);
        let mut view = View::new(Group::Rule);
        view.refresh(&model);
        press(&mut view, &model, KeyCode::Char('s'));
        assert_eq!(view.sort, Column::ByteRate);
        press(&mut view, &model, KeyCode::Char('g'));
        assert_eq!(view.group, Group::Comment);
        assert!(view.rows.is_empty());
        for _ in 0..4 {
            press(&mut view, &model, KeyCode::Char('g'));
        }
        assert_eq!(view.group, Group::Rule);
        press(&mut view, &model, KeyCode::Char('b'));
        press(&mut view, &model, KeyCode::Char(' '));
        assert!(view.bits && view.paused);
        assert_eq!(press(&mut view, &model, KeyCode::F(5)), Action::Nothing);
    }
}
