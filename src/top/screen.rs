//! The full screen's loop: readings arrive from the readers' tasks, keys from the
//! terminal, and the screen is drawn again when either changed something. It runs on a
//! thread of its own, so that neither a slow source nor a large regrouping holds up the
//! readers, and stops on `q`, Ctrl-C, `SIGINT`, `SIGTERM` or `SIGHUP`, giving the terminal
//! back in each case.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event, KeyEventKind};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use super::model::{Model, Update};
use super::terminal::Screen;
use super::ui::{self, Context};
use super::view::{Action, View};
use super::{Reader, Settings, TopError};
use crate::budget;

/// How long the loop waits for a key before it looks for readings: short enough that a
/// reading shows at once, long enough to cost nothing.
const TICK: Duration = Duration::from_millis(50);

/// Shows the rows full-screen until asked to stop.
pub(super) async fn run(
    reader: Reader,
    settings: &Settings,
    delay: Duration,
) -> Result<ExitCode, TopError> {
    if !std::io::stdout().is_terminal() {
        return Err(TopError::NotATerminal);
    }
    let stop = Arc::new(AtomicBool::new(false));
    for kind in [
        SignalKind::interrupt(),
        SignalKind::terminate(),
        SignalKind::hangup(),
    ] {
        let mut signals = signal(kind).map_err(TopError::Terminal)?;
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            signals.recv().await;
            stop.store(true, Ordering::Relaxed);
        });
    }
    let reading = match &settings.exporter {
        Some(exporter) => exporter.url.to_string(),
        None => "this host".to_owned(),
    };
    let (updates, received) = mpsc::unbounded_channel();
    reader.spawn(updates);
    let (log_file, group) = (settings.log_file.clone(), settings.group);
    let delay = delay.as_secs_f64();
    let shown = tokio::task::spawn_blocking(move || {
        let context = Context {
            reading: &reading,
            delay,
            cpu_share: None,
        };
        show(
            received,
            &stop,
            View::new(group),
            context,
            log_file.as_deref(),
        )
    })
    .await;
    // A panic there gave the terminal back and said so on standard error.
    shown.unwrap_or(Ok(ExitCode::FAILURE))
}

/// The loop: takes the screen, and gives it back when it returns.
fn show(
    mut received: mpsc::UnboundedReceiver<Update>,
    stop: &AtomicBool,
    mut view: View,
    mut context: Context<'_>,
    log_file: Option<&std::path::Path>,
) -> Result<ExitCode, TopError> {
    let mut screen = Screen::enter(log_file)?;
    let mut model = Model::default();
    // Readings that came while paused: the last of each origin, in order.
    let mut waiting: Vec<Update> = Vec::new();
    let mut cpu = (Instant::now(), budget::cpu_time());
    let mut redraw = true;
    while !stop.load(Ordering::Relaxed) {
        if redraw {
            screen
                .terminal
                .draw(|frame| ui::draw(frame, &mut view, &model, &context))
                .map_err(TopError::Terminal)?;
            redraw = false;
        }
        if event::poll(TICK).map_err(TopError::Terminal)? {
            match event::read().map_err(TopError::Terminal)? {
                Event::Key(key) if key.kind != KeyEventKind::Release => {
                    match view.key(key, &model) {
                        Action::Quit => break,
                        Action::Redraw => redraw = true,
                        Action::Nothing => {}
                    }
                }
                Event::Resize(..) => redraw = true,
                _ => {}
            }
        }
        while let Ok(update) = received.try_recv() {
            waiting.retain(|w| w.origin != update.origin);
            waiting.push(update);
        }
        if view.paused || waiting.is_empty() {
            continue;
        }
        let mut changed = false;
        for update in waiting.drain(..) {
            changed |= model.apply(update);
        }
        if changed {
            view.refresh(&model);
            let now = (Instant::now(), budget::cpu_time());
            if let (Some(before), Some(after)) = (cpu.1, now.1) {
                let wall = now.0.duration_since(cpu.0).as_secs_f64();
                context.cpu_share = Some(after.saturating_sub(before).as_secs_f64() / wall);
            }
            cpu = now;
        }
        redraw = true;
    }
    Ok(ExitCode::SUCCESS)
}
