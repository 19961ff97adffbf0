//! Runs a dump command with a deadline and bounded output, and turns every way it can fail
//! into a typed error. The command runs in a process group of its own, and whatever ends
//! it early ends the whole group: a wrapper script's children would otherwise outlive it.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

/// Default limit of a dump's standard output: far above what the largest rulesets print,
/// so that only a command gone wrong reaches it.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 1 << 30;

/// How much of standard error is kept: the start holds what went wrong, and no warning of
/// iptables comes near it.
const STDERR_KEPT_BYTES: usize = 64 * 1024;

/// What a dump command printed.
#[derive(Debug, Clone)]
pub struct CommandOutput {
    /// Standard output: the dump.
    pub stdout: String,
    /// Standard error, which a successful run may still use for warnings.
    pub stderr: String,
    /// Lines of standard output that were not valid UTF-8; their invalid bytes are
    /// U+FFFD in `stdout`. A rule comment can hold any bytes, and one such rule must not
    /// cost the whole source.
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
    #[error("{command}: cannot start")]
    Spawn {
        /// The command.
        command: String,
        /// The operating system's reason.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The command did not finish in time and was killed.
    #[error("{command}: no answer within {timeout:?}, killed")]
    TimedOut {
        /// The command.
        command: String,
        /// The deadline it missed.
        timeout: Duration,
    },
    /// Reading the source failed: the command's output, or the kernel's answer.
    #[error("{command}: cannot read")]
    Read {
        /// The command, or the kernel interface.
        command: String,
        /// Why.
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
    /// The command printed more than the limit on standard output and was killed.
    #[error("{command}: output larger than {limit} bytes, killed")]
    OutputTooLarge {
        /// The command.
        command: String,
        /// The limit, in bytes.
        limit: usize,
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
/// it has not finished after `timeout` or when its standard output grows beyond
/// `max_stdout` bytes. Of standard error only the first 64 KiB are kept.
pub async fn run(
    command: &str,
    args: &[&str],
    timeout: Duration,
    max_stdout: usize,
) -> Result<CommandOutput, SourceError> {
    let mut child = Command::new(command)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        // Dropping the future must not leave a hung iptables-save behind.
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => SourceError::NotFound {
                command: command.to_owned(),
            },
            _ => SourceError::Spawn {
                command: command.to_owned(),
                source: Arc::new(e),
            },
        })?;
    // Declared after `child`, so dropped before it: the group is ended while its leader is
    // not yet reaped, and its id cannot have been given to another process.
    let mut group = GroupGuard(child.id());
    let (Some(stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(SourceError::Spawn {
            command: command.to_owned(),
            source: Arc::new(std::io::Error::other("its output is not a pipe")),
        });
    };
    let read_error = |e: std::io::Error| SourceError::Read {
        command: command.to_owned(),
        source: Arc::new(e),
    };
    let finished = tokio::time::timeout(timeout, async {
        let stdout = async {
            read_at_most(stdout, max_stdout)
                .await
                .map_err(read_error)?
                .ok_or_else(|| SourceError::OutputTooLarge {
                    command: command.to_owned(),
                    limit: max_stdout,
                })
        };
        let stderr = async {
            let mut start = Vec::new();
            (&mut stderr)
                .take(STDERR_KEPT_BYTES as u64)
                .read_to_end(&mut start)
                .await
                .map_err(read_error)?;
            // The rest is read and dropped: a command blocked on a full pipe never ends.
            tokio::io::copy(&mut stderr, &mut tokio::io::sink())
                .await
                .map_err(read_error)?;
            Ok(start)
        };
        // An error of either (too much output) ends both at once, not at the deadline.
        let (stdout, stderr) = tokio::try_join!(stdout, stderr)?;
        let status = child.wait().await.map_err(read_error)?;
        // Reaped: the id may now be another process's.
        group.0 = None;
        Ok((status, stdout, stderr))
    })
    .await;
    let (status, stdout, stderr) = match finished {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => {
            group.kill();
            // Already gone is fine: the kill only has to make sure of it.
            let _ = child.kill().await;
            return Err(e);
        }
        Err(_) => {
            group.kill();
            let _ = child.kill().await;
            return Err(SourceError::TimedOut {
                command: command.to_owned(),
                timeout,
            });
        }
    };
    let stderr = String::from_utf8_lossy(&stderr).trim().to_owned();
    if !status.success() {
        return Err(SourceError::Failed {
            command: command.to_owned(),
            status: status.to_string(),
            stderr,
        });
    }
    let (stdout, invalid_utf8_lines) = decode_lossily(stdout);
    Ok(CommandOutput {
        stdout,
        stderr,
        invalid_utf8_lines,
    })
}

/// The process group of a command not yet reaped; ends the group when dropped armed.
struct GroupGuard(Option<u32>);

impl GroupGuard {
    fn kill(&mut self) {
        let Some(id) = self.0.take() else { return };
        if let Some(pid) = i32::try_from(id)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            // Already gone is fine: the kill only has to make sure of it.
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Everything `reader` yields if that is at most `limit` bytes; `None` as soon as it
/// yields more. Room for the whole limit is reserved at once when the system grants it:
/// pages not written to take no memory, and a buffer that never grows is never copied,
/// whereas growing by doubling holds up to twice what was read.
async fn read_at_most(
    reader: impl AsyncRead + Unpin,
    limit: usize,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    // Refused (a strict overcommit policy, an address-space limit): grow as needed instead.
    let _ = bytes.try_reserve_exact(limit.saturating_add(1));
    let one_more = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader.take(one_more).read_to_end(&mut bytes).await?;
    if bytes.len() > limit {
        return Ok(None);
    }
    bytes.shrink_to_fit();
    Ok(Some(bytes))
}

/// `bytes` as text with every invalid sequence replaced by U+FFFD, and how many lines
/// held one. Valid output, the usual case, is taken over without a copy.
pub(crate) fn decode_lossily(bytes: Vec<u8>) -> (String, usize) {
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

    const LIMIT: usize = DEFAULT_MAX_OUTPUT_BYTES;

    #[tokio::test]
    async fn missing_command_is_not_found() {
        let err = run(
            "/nonexistent/iptables-save",
            &[],
            Duration::from_secs(5),
            LIMIT,
        )
        .await
        .expect_err("fails");
        assert!(matches!(err, SourceError::NotFound { .. }), "{err}");
    }

    #[tokio::test]
    async fn hung_command_is_killed_at_the_deadline() {
        let started = std::time::Instant::now();
        let err = run("sleep", &["30"], Duration::from_millis(200), LIMIT)
            .await
            .expect_err("fails");
        assert!(matches!(err, SourceError::TimedOut { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(20));
    }

    /// Whether process `pid` is gone or a zombie waiting for its parent.
    fn ended(pid: &str) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
            stat.rsplit(") ")
                .next()
                .is_some_and(|rest| rest.starts_with('Z'))
        })
    }

    #[tokio::test]
    async fn a_hung_wrapper_s_children_end_with_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pids = dir.path().join("pids");
        let script = format!(
            "sleep 300 & echo $! > {0}; sh -c 'echo $$ >> {0}; sleep 300'",
            pids.display()
        );
        let err = run("sh", &["-c", &script], Duration::from_secs(2), LIMIT)
            .await
            .expect_err("fails");
        assert!(matches!(err, SourceError::TimedOut { .. }), "{err}");
        let pids = std::fs::read_to_string(&pids).expect("the wrapper started its children");
        let pids: Vec<&str> = pids.split_whitespace().collect();
        assert_eq!(pids.len(), 2, "{pids:?}");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !pids.iter().all(|pid| ended(pid)) && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(pids.iter().all(|pid| ended(pid)), "still running: {pids:?}");
    }

    #[tokio::test]
    async fn a_dropped_run_ends_the_whole_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pids = dir.path().join("pids");
        let script = format!("sleep 300 & echo $! > {0}; wait", pids.display());
        let args = ["-c", script.as_str()];
        let running = run("sh", &args, Duration::from_secs(300), LIMIT);
        let abandoned = tokio::time::timeout(Duration::from_secs(2), running).await;
        assert!(abandoned.is_err(), "the wrapper cannot have ended");
        let pid = std::fs::read_to_string(&pids).expect("the wrapper started its child");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !ended(pid.trim()) && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(ended(pid.trim()), "{pid} still running");
    }

    #[tokio::test]
    async fn failing_command_reports_status_and_stderr() {
        let err = run(
            "sh",
            &["-c", "echo denied >&2; exit 4"],
            Duration::from_secs(5),
            LIMIT,
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
            LIMIT,
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
            LIMIT,
        )
        .await
        .expect("runs");
        assert_eq!(out.stdout, "caf\u{FFFD}\n\u{FFFD}t\u{FFFD}\nok\n\u{FFFD}");
        assert_eq!(out.invalid_utf8_lines, 3);
    }

    #[tokio::test]
    async fn output_up_to_the_limit_is_kept() {
        let out = run(
            "head",
            &["-c", "1000", "/dev/zero"],
            Duration::from_secs(5),
            1000,
        )
        .await
        .expect("runs");
        assert_eq!(out.stdout.len(), 1000);
    }

    #[tokio::test]
    async fn output_beyond_the_limit_fails_naming_it() {
        let err = run(
            "head",
            &["-c", "1001", "/dev/zero"],
            Duration::from_secs(5),
            1000,
        )
        .await
        .expect_err("fails");
        assert!(
            matches!(err, SourceError::OutputTooLarge { limit: 1000, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("1000 bytes"), "{err}");
    }

    #[tokio::test]
    async fn endless_output_is_killed_at_the_limit_not_the_deadline() {
        let started = std::time::Instant::now();
        let err = run(
            "sh",
            &["-c", "while :; do echo line; done"],
            Duration::from_secs(60),
            100_000,
        )
        .await
        .expect_err("fails");
        assert!(matches!(err, SourceError::OutputTooLarge { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(30));
    }

    #[tokio::test]
    async fn stderr_keeps_its_start_and_the_command_still_ends() {
        let out = run(
            "sh",
            &[
                "-c",
                "echo first >&2; head -c 1000000 /dev/zero | tr '\\0' x >&2; echo dump",
            ],
            Duration::from_secs(30),
            LIMIT,
        )
        .await
        .expect("runs");
        assert_eq!(out.stdout, "dump\n");
        assert_eq!(out.stderr.len(), STDERR_KEPT_BYTES);
        assert!(
            out.stderr.starts_with("first\nxxx"),
            "{}",
            &out.stderr[..20]
        );
    }
}
