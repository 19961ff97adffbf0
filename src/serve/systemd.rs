//! `--web.systemd-socket`: the listening sockets systemd opened for the service (socket
//! activation: `LISTEN_PID`, `LISTEN_FDS`, descriptors from 3 on), so that the port is
//! bound before the exporter starts and no capability is needed for one below 1024.

/// Why the sockets systemd passed cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SystemdSocketError {
    /// No descriptor was passed to this process.
    #[error(
        "--web.systemd-socket: no socket passed (LISTEN_FDS unset, or LISTEN_PID is another process)"
    )]
    NoneGiven,
    /// A passed descriptor is not a listening TCP socket.
    #[error("--web.systemd-socket: descriptor {fd} is not a TCP socket")]
    NotTcp {
        /// The descriptor's number.
        fd: usize,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
}

/// Takes every socket passed by systemd, as TCP listeners, closed on exec so that the dump
/// commands do not inherit them; the environment variables are removed. Call it before
/// threads start: removing a variable races with other threads reading the environment.
pub fn listeners() -> Result<Vec<std::net::TcpListener>, SystemdSocketError> {
    let mut passed = listenfd::ListenFd::from_env();
    if passed.len() == 0 {
        return Err(SystemdSocketError::NoneGiven);
    }
    let mut listeners = Vec::new();
    for index in 0..passed.len() {
        let listener = passed
            .take_tcp_listener(index)
            .and_then(|l| l.ok_or_else(|| std::io::Error::other("already taken")))
            .and_then(|l| {
                rustix::io::fcntl_setfd(&l, rustix::io::FdFlags::CLOEXEC)?;
                Ok(l)
            })
            .map_err(|source| SystemdSocketError::NotTcp {
                fd: index + 3,
                source,
            })?;
        listeners.push(listener);
    }
    Ok(listeners)
}
