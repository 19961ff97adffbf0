//! The terminal as top borrows it: standard error sent to `--log.file` (or nowhere) so that
//! no log line lands on the full screen, raw mode and the alternate screen while it is up,
//! and everything given back as it was found, on the way out, on a signal or on a panic
//! of the thread that draws.

use std::fs::File;
use std::io::{Stdout, Write};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Mutex;
use std::thread::ThreadId;

use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::{cursor, execute, terminal};

/// Where standard error was before [`Redirected::to`], while it is elsewhere.
static SAVED_STDERR: Mutex<Option<OwnedFd>> = Mutex::new(None);

/// Standard error sent elsewhere until dropped: every log line, and whatever else the
/// process writes there, goes to the file.
pub(super) struct Redirected(());

impl Redirected {
    /// Sends standard error to the end of `file`, or nowhere.
    pub(super) fn to(file: Option<&Path>) -> std::io::Result<Redirected> {
        let target = match file {
            Some(path) => File::options().create(true).append(true).open(path)?,
            None => File::options().write(true).open("/dev/null")?,
        };
        // Close-on-exec, so that the commands a source runs do not inherit the terminal.
        let saved = rustix::io::fcntl_dupfd_cloexec(std::io::stderr(), 3)?;
        rustix::stdio::dup2_stderr(&target)?;
        *SAVED_STDERR.lock().unwrap_or_else(|e| e.into_inner()) = Some(saved);
        Ok(Redirected(()))
    }
}

impl Drop for Redirected {
    fn drop(&mut self) {
        restore_stderr();
    }
}

/// Puts standard error back where it was, if it was sent elsewhere.
fn restore_stderr() {
    let saved = SAVED_STDERR
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(saved) = saved {
        // Nothing is left to tell if this fails: standard error is where it failed.
        let _ = rustix::stdio::dup2_stderr(&saved);
    }
}

/// The thread that draws on the full screen, while it is up.
static DRAWING: Mutex<Option<ThreadId>> = Mutex::new(None);

/// The full screen, given back when dropped.
pub(super) struct Screen {
    /// What draws on it.
    pub(super) terminal: Terminal<CrosstermBackend<Stdout>>,
    _stderr: Redirected,
}

impl Screen {
    /// Takes the terminal for the calling thread: logs to `log_file` or nowhere, raw mode,
    /// the alternate screen, no cursor.
    pub(super) fn enter(log_file: Option<&Path>) -> Result<Screen, super::TopError> {
        let stderr = Redirected::to(log_file).map_err(|source| super::TopError::LogFile {
            path: log_file
                .map(Path::to_owned)
                .unwrap_or_else(|| "/dev/null".into()),
            source,
        })?;
        install_panic_hook();
        *DRAWING.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::thread::current().id());
        let setup = terminal::enable_raw_mode()
            .and_then(|()| {
                execute!(
                    std::io::stdout(),
                    terminal::EnterAlternateScreen,
                    cursor::Hide
                )
            })
            .and_then(|()| Terminal::new(CrosstermBackend::new(std::io::stdout())));
        match setup {
            Ok(terminal) => Ok(Screen {
                terminal,
                _stderr: stderr,
            }),
            Err(e) => {
                leave();
                Err(super::TopError::Terminal(e))
            }
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        leave();
    }
}

/// Gives the terminal back: the main screen as it was, the cursor, cooked mode; standard
/// error where it was. Done once, by whoever comes first: the screen's drop or the panic
/// hook.
fn leave() {
    if DRAWING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .is_none()
    {
        return;
    }
    // Each step on its own: one failing (a terminal gone with SIGHUP) skips none of the
    // others.
    let mut stdout = std::io::stdout();
    let _ = execute!(stdout, terminal::LeaveAlternateScreen, cursor::Show);
    let _ = terminal::disable_raw_mode();
    let _ = stdout.flush();
    restore_stderr();
}

/// Has a panic of the drawing thread give the terminal back before the panic is told, so
/// that the message lands on the main screen. A panic elsewhere (a source's reading, which
/// is shown as that source's failure) leaves the screen up.
fn install_panic_hook() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let drawing = *DRAWING.lock().unwrap_or_else(|e| e.into_inner());
            if drawing == Some(std::thread::current().id()) {
                leave();
            }
            previous(info);
        }));
    });
}
