//! The messages from the collector process to the server process, over their socket pair:
//! each a kind byte, a length (8 bytes, little-endian) and the payload. The collector is the
//! trusted side; lengths are bounded all the same, so that a bug cannot make the server
//! allocate without end.

use std::io::Read;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use serde::{Deserialize, Serialize};

use super::connections::Limits;
use super::privileges::WebUser;
use super::process::ProcessStats;
use super::served::{Served, SourceStatus};
use super::web_config::WebConfigBundle;
use crate::exposition::Exposition;

/// What the server process needs to know besides the sockets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerSettings {
    /// Path of the metrics endpoint.
    pub telemetry_path: String,
    /// Bounds on connections and requests.
    pub limits: Limits,
    /// The user to switch to (the collector runs as root), or none: keep the user.
    pub user: Option<WebUser>,
    /// Log level, as `tracing`'s level filters print.
    pub log_level: String,
    /// Log format name of `--log.format`.
    pub log_format: String,
    /// Whether a web config follows the settings.
    pub web_config: bool,
}

/// The longest message: far above what any exposition is kept in (docs/performance.md has
/// the sizes).
pub const MAX_MESSAGE: u64 = 4 << 30;

/// A message of the collector.
#[derive(Debug)]
pub enum Message {
    /// The server's settings; the first message, after the listening sockets.
    Hello(Box<ServerSettings>),
    /// A new publication to serve.
    Publication(Served),
    /// The files of the web config, read again after a change.
    WebConfig(WebConfigBundle),
    /// The collector's process figures, for the process metrics.
    Stats(ProcessStats),
    /// Stop serving and exit: the collector is shutting down.
    Stop,
}

/// Why a message could not be sent or received.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The socket failed.
    #[error("socket between collector and server")]
    Io(#[from] std::io::Error),
    /// The collector closed its end.
    #[error("the collector process closed its socket")]
    Closed,
    /// A message that is not one.
    #[error("malformed message from the collector: {0}")]
    Malformed(String),
    /// The server process took none of a message's bytes for this long.
    #[error("the server process read nothing for {} s", .0.as_secs())]
    Stalled(Duration),
}

const HELLO: u8 = 1;
const PUBLICATION: u8 = 2;
const WEB_CONFIG: u8 = 3;
const STATS: u8 = 4;
const STOP: u8 = 5;

fn json<T: serde::Serialize>(value: &T) -> Bytes {
    // Serialising plain structs of strings and numbers to memory cannot fail.
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

impl Message {
    /// The kind and the payload's parts.
    fn encode(&self) -> (u8, Vec<Bytes>) {
        match self {
            Message::Hello(settings) => (HELLO, vec![json(settings)]),
            Message::Publication(served) => {
                let sources = json(&served.sources);
                let mut parts = vec![
                    Bytes::from((sources.len() as u64).to_le_bytes().to_vec()),
                    sources,
                ];
                parts.extend(served.exposition.to_wire());
                (PUBLICATION, parts)
            }
            Message::WebConfig(bundle) => {
                let mut out = BytesMut::new();
                put_bytes(&mut out, bundle.path.as_os_str().as_encoded_bytes());
                for (path, bytes) in &bundle.files {
                    put_bytes(&mut out, path.as_os_str().as_encoded_bytes());
                    put_bytes(&mut out, bytes);
                }
                (WEB_CONFIG, vec![out.freeze()])
            }
            Message::Stats(stats) => (STATS, vec![json(stats)]),
            Message::Stop => (STOP, Vec::new()),
        }
    }

    fn decode(kind: u8, mut payload: Bytes) -> Result<Message, ChannelError> {
        let malformed = |e: &dyn std::fmt::Display| ChannelError::Malformed(e.to_string());
        match kind {
            HELLO => serde_json::from_slice(&payload)
                .map(|s| Message::Hello(Box::new(s)))
                .map_err(|e| malformed(&e)),
            PUBLICATION => {
                let sources = take_bytes(&mut payload)?;
                let sources: Vec<SourceStatus> =
                    serde_json::from_slice(&sources).map_err(|e| malformed(&e))?;
                let exposition = Exposition::from_wire(payload).map_err(|e| malformed(&e))?;
                Ok(Message::Publication(Served::new(exposition, sources)))
            }
            WEB_CONFIG => {
                let path = path_of(take_bytes(&mut payload)?)?;
                let mut files = Vec::new();
                while !payload.is_empty() {
                    let file = path_of(take_bytes(&mut payload)?)?;
                    files.push((file, take_bytes(&mut payload)?.to_vec()));
                }
                Ok(Message::WebConfig(WebConfigBundle { path, files }))
            }
            STATS => serde_json::from_slice(&payload)
                .map(Message::Stats)
                .map_err(|e| malformed(&e)),
            STOP => Ok(Message::Stop),
            other => Err(ChannelError::Malformed(format!("unknown kind {other}"))),
        }
    }
}

fn put_bytes(out: &mut BytesMut, bytes: &[u8]) {
    out.put_u64_le(bytes.len() as u64);
    out.put_slice(bytes);
}

fn take_bytes(payload: &mut Bytes) -> Result<Bytes, ChannelError> {
    let short = || ChannelError::Malformed("cut short".to_owned());
    if payload.remaining() < 8 {
        return Err(short());
    }
    let len = usize::try_from(payload.get_u64_le()).map_err(|_| short())?;
    if payload.remaining() < len {
        return Err(short());
    }
    Ok(payload.split_to(len))
}

fn path_of(bytes: Bytes) -> Result<std::path::PathBuf, ChannelError> {
    use std::os::unix::ffi::OsStringExt;
    // The collector's path bytes as they were: on Unix any bytes are a path.
    Ok(std::ffi::OsString::from_vec(bytes.to_vec()).into())
}

/// Sends `message` on `out`; [`ChannelError::Stalled`] when `out` takes no byte for
/// `stall`, as a reader that stopped reading leaves the socket full. A stall is counted
/// from the last byte taken, not from the start, so that a large message to a server that
/// reads is never cut.
pub async fn send(
    out: &mut (impl AsyncWrite + Unpin),
    message: &Message,
    stall: Duration,
) -> Result<(), ChannelError> {
    let (kind, parts) = message.encode();
    let len: u64 = parts.iter().map(|p| p.len() as u64).sum();
    let mut head = BytesMut::with_capacity(9);
    head.put_u8(kind);
    head.put_u64_le(len);
    write_within(out, &head, stall).await?;
    for part in &parts {
        write_within(out, part, stall).await?;
    }
    tokio::time::timeout(stall, out.flush())
        .await
        .map_err(|_| ChannelError::Stalled(stall))??;
    Ok(())
}

/// Writes all of `bytes`, each write within `stall`. A write cut by the timeout has
/// written nothing (tokio's writes are cancel-safe), but the message it belongs to is
/// then incomplete: the stream is unusable after a stall.
async fn write_within(
    out: &mut (impl AsyncWrite + Unpin),
    mut bytes: &[u8],
    stall: Duration,
) -> Result<(), ChannelError> {
    while !bytes.is_empty() {
        match tokio::time::timeout(stall, out.write(bytes)).await {
            Err(_) => return Err(ChannelError::Stalled(stall)),
            Ok(Ok(0)) => return Err(std::io::Error::from(std::io::ErrorKind::WriteZero).into()),
            Ok(Ok(n)) => bytes = &bytes[n..],
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Ok(Err(e)) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Receives the next message from `input`, blocking; [`ChannelError::Closed`] at the end
/// of the stream between messages.
pub fn receive(input: &mut impl Read) -> Result<Message, ChannelError> {
    let mut head = [0u8; 9];
    let mut read = 0;
    while read < head.len() {
        match input.read(&mut head[read..]) {
            Ok(0) if read == 0 => return Err(ChannelError::Closed),
            Ok(0) => return Err(ChannelError::Malformed("cut short".to_owned())),
            Ok(n) => read += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let kind = head[0];
    let mut len_bytes = [0u8; 8];
    len_bytes.copy_from_slice(&head[1..]);
    let len = u64::from_le_bytes(len_bytes);
    if len > MAX_MESSAGE {
        return Err(ChannelError::Malformed(format!("a message of {len} bytes")));
    }
    let mut payload = Vec::new();
    input.take(len).read_to_end(&mut payload)?;
    if payload.len() as u64 != len {
        return Err(ChannelError::Malformed("cut short".to_owned()));
    }
    Message::decode(kind, Bytes::from(payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn round_trip(message: Message) -> Message {
        let mut buffer = Vec::new();
        send(&mut buffer, &message, Duration::from_secs(10))
            .await
            .expect("sends");
        receive(&mut &buffer[..]).expect("receives")
    }

    #[tokio::test]
    async fn messages_come_back_as_sent() {
        let bundle = WebConfigBundle {
            path: "/etc/web.yml".into(),
            files: vec![
                ("/etc/web.yml".into(), b"a: 1".to_vec()),
                ("/k".into(), vec![0, 255]),
            ],
        };
        match round_trip(Message::WebConfig(bundle.clone())).await {
            Message::WebConfig(back) => assert_eq!(back, bundle),
            other => panic!("{other:?}"),
        }
        let sources = vec![SourceStatus {
            source: "iptables".to_owned(),
            status: "ok".to_owned(),
        }];
        match round_trip(Message::Publication(Served::new(
            Exposition::default(),
            sources.clone(),
        )))
        .await
        {
            Message::Publication(back) => assert_eq!(back.sources, sources),
            other => panic!("{other:?}"),
        }
        assert!(matches!(round_trip(Message::Stop).await, Message::Stop));
    }

    #[tokio::test]
    async fn a_send_to_a_reader_that_does_not_read_stalls() {
        let (mut out, _reader) = tokio::io::duplex(64);
        let stall = Duration::from_millis(100);
        let bundle = WebConfigBundle {
            path: "/etc/web.yml".into(),
            files: vec![("/etc/web.yml".into(), vec![b'a'; 4096])],
        };
        let sent = tokio::time::timeout(
            Duration::from_secs(10),
            send(&mut out, &Message::WebConfig(bundle), stall),
        )
        .await
        .expect("gives up");
        assert!(
            matches!(sent, Err(ChannelError::Stalled(s)) if s == stall),
            "{sent:?}"
        );
    }

    #[test]
    fn the_end_between_messages_is_closed_and_within_one_malformed() {
        assert!(matches!(receive(&mut &[][..]), Err(ChannelError::Closed)));
        assert!(matches!(
            receive(&mut &[2u8, 9][..]),
            Err(ChannelError::Malformed(_))
        ));
        let huge = [&[2u8][..], &u64::MAX.to_le_bytes()].concat();
        assert!(matches!(
            receive(&mut &huge[..]),
            Err(ChannelError::Malformed(_))
        ));
    }
}
