//! Runs a dump command with a deadline and turns every way it can fail into a typed error.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// What a dump command printed.
#[derive(Debug, Clone)]
pub struct CommandOutput {
    /// Standard output: the dump.
    pub stdout: String,
    /// Standard error, which a successful run may still use for warnings.
    pub stderr: String,
    /// Lines of standard output that were not valid UTF-8; their invalid bytes are
    /// U+FFFD in `stdout`. A rule comment can hold any bytes, and one such rule must not
    /// cost the whole backend.
    pub invalid_utf8_lines: usize,
}

/// Why a dump command gave no dump.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    /// The command is not installed (not found in `PATH`).
    #[error("{command}: not found")]
    NotFound {
        /// The command.
        command: String,
    },
    /// The command exists but could not be started (permissions, resource limits).
    #[error("{command}: cannot start: {reason}")]
    Spawn {
        /// The command.
        command: String,
        /// The operating system's reason.
        reason: String,
    },
    /// The command did not finish in time and was killed.
    #[error("{command}: no answer within {timeout:?}, killed")]
    TimedOut {
        /// The command.
        command: String,
        /// The deadline it missed.
        timeout: Duration,
    },
    /// The command exited unsuccessfully.
    #[error("{command}: {status}: {stderr}")]
    Failed {
        /// The command.
        command: String,
        /// Its exit status, as the OS describes it.
        status: String,
        /// What it printed on standard error (trimmed).
        stderr: String,
    },
    /// The exporter failed while processing the command's output: a bug in the exporter,
    /// reported as a failed collection rather than by serving the last numbers as current.
    #[error("{command}: processing its output failed, a bug to report: {reason}")]
    Internal {
        /// The command.
        command: String,
        /// What went wrong (a panic's message).
        reason: String,
    },
}

/// Runs `command args…` with no standard input, collecting its output, and kills it when
/// it has not finished after `timeout`.
pub async fn run(
    command: &str,
    args: &[&str],
    timeout: Duration,
) -> Result<CommandOutput, SourceError> {
    let child = Command::new(command)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Dropping the future on timeout must not leave a hung iptables-save behind.
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => SourceError::NotFound {
                command: command.to_owned(),
            },
            _ => SourceError::Spawn {
                command: command.to_owned(),
                reason: e.to_string(),
            },
        })?;
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| SourceError::TimedOut {
            command: command.to_owned(),
            timeout,
        })?
        .map_err(|e| SourceError::Spawn {
            command: command.to_owned(),
            reason: e.to_string(),
        })?;
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    if !output.status.success() {
        return Err(SourceError::Failed {
            command: command.to_owned(),
            status: output.status.to_string(),
            stderr,
        });
    }
    let (stdout, invalid_utf8_lines) = decode_lossily(output.stdout);
    Ok(CommandOutput {
        stdout,
        stderr,
        invalid_utf8_lines,
    })
}

/// `bytes` as text with every invalid sequence replaced by U+FFFD, and how many lines
/// held one. Valid output, the usual case, is taken over without a copy.
fn decode_lossily(bytes: Vec<u8>) -> (String, usize) {
    match String::from_utf8(bytes) {
        Ok(text) => (text, 0),
        Err(e) => {
            let bytes = e.into_bytes();
            let invalid = bytes
                .split(|&b| b == b'\n')
                .filter(|line| std::str::from_utf8(line).is_err())
                .count();
            (String::from_utf8_lossy(&bytes).into_owned(), invalid)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn missing_command_is_not_found() {
        let err = run("/nonexistent/iptables-save", &[], Duration::from_secs(5))
            .await
            .expect_err("fails");
        assert!(matches!(err, SourceError::NotFound { .. }), "{err}");
    }

    #[tokio::test]
    async fn hung_command_is_killed_at_the_deadline() {
        let started = std::time::Instant::now();
        let err = run("sleep", &["30"], Duration::from_millis(200))
            .await
            .expect_err("fails");
        assert!(matches!(err, SourceError::TimedOut { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(20));
    }

    #[tokio::test]
    async fn failing_command_reports_status_and_stderr() {
        let err = run(
            "sh",
            &["-c", "echo denied >&2; exit 4"],
            Duration::from_secs(5),
        )
        .await
        .expect_err("fails");
        let text = err.to_string();
        assert!(
            text.contains("exit status: 4") && text.contains("denied"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn output_is_returned() {
        let out = run(
            "sh",
            &["-c", "echo dump; echo warn >&2"],
            Duration::from_secs(5),
        )
        .await
        .expect("runs");
        assert_eq!(
            (out.stdout.as_str(), out.stderr.as_str()),
            ("dump\n", "warn")
        );
    }

    #[tokio::test]
    async fn invalid_utf8_is_replaced_and_its_lines_counted() {
        let out = run(
            "printf",
            &["caf\\xe9\\n\\xe9t\\xe9\\nok\\n\\xff"],
            Duration::from_secs(5),
        )
        .await
        .expect("runs");
        assert_eq!(out.stdout, "caf\u{FFFD}\n\u{FFFD}t\u{FFFD}\nok\n\u{FFFD}");
        assert_eq!(out.invalid_utf8_lines, 3);
    }
}
