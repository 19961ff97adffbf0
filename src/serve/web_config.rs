//! `--web.config.file`, in the format of the Prometheus exporter-toolkit, so that a file
//! written for node_exporter works here: TLS (`tls_server_config`), basic authentication
//! (`basic_auth_users`, bcrypt hashes) and extra response headers (`http_server_config`).
//! What rustls cannot do (TLS 1.0 and 1.1, client certificates taken without being
//! verified, Go's curve names) is refused with an error naming the setting, never ignored.
//!
//! The file, and the certificate files it names, are re-read when one of them changes: a
//! [`WebConfigFile`] is asked for the current settings at each connection (its TLS) and each
//! request (its users and headers), as the toolkit does. When the server runs in a process
//! of its own, the collector reads the files (the key may be readable by root only) and
//! sends their contents, a [`WebConfigBundle`], which the server builds the same settings
//! from.
//!
//! Only regular files are read: a FIFO or a device named as a file would block the read,
//! or never end it. A read that still blocks (a hung network mount) cannot be interrupted;
//! [`WebConfigFile::stuck`] names the file for whoever waits.

use std::collections::BTreeMap;
use std::fs::FileType;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use axum::http::{HeaderName, HeaderValue};
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

use crate::error_chain::Chain;

/// Why a web config file cannot be used; the message names the file.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    /// A file cannot be read.
    #[error("cannot read {path}{}", named(*.setting))]
    Read {
        /// The file.
        path: PathBuf,
        /// The setting that names it; none for the config file itself.
        setting: Option<&'static str>,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file is a FIFO, a device, a directory or a socket rather than a regular file.
    #[error(
        "{path}{} is not a regular file but a {kind}: refused, as reading it could wait for ever",
        named(*.setting)
    )]
    NotRegular {
        /// The file.
        path: PathBuf,
        /// The setting that names it; none for the config file itself.
        setting: Option<&'static str>,
        /// What it is instead.
        kind: &'static str,
    },
    /// The YAML does not have the toolkit's shape.
    #[error("{path}: not a web config")]
    Parse {
        /// The config file.
        path: PathBuf,
        /// What the parser says.
        #[source]
        source: serde_norway::Error,
    },
    /// A setting has a value that cannot be used.
    #[error("{path}: {setting}: {reason}")]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// The setting, as written in the file.
        setting: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// The setting that names a file, for an error message.
fn named(setting: Option<&str>) -> String {
    setting.map_or_else(String::new, |setting| format!(" ({setting})"))
}

/// The toolkit's file, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    tls_server_config: Option<RawTls>,
    http_server_config: Option<RawHttp>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_auth_type: Option<String>,
    client_ca_file: Option<PathBuf>,
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Option<Vec<String>>,
    prefer_server_cipher_suites: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// Read so that a toolkit file with it loads; HTTP/2 is not served.
    #[serde(rename = "http2")]
    _http2: Option<bool>,
}

/// Settings in force for a connection.
#[derive(Debug, Default)]
pub struct WebConfig {
    /// TLS, when configured.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// User name → bcrypt hash; empty: no authentication.
    pub users: BTreeMap<String, String>,
    /// Headers added to every response.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// Headers the server sets itself, which the file may not override (the toolkit's list).
const RESERVED_HEADERS: [&str; 6] = [
    "authorization",
    "content-length",
    "content-encoding",
    "server",
    "vary",
    "www-authenticate",
];

/// A file the settings were read from, and its modification time then.
type Stamp = (PathBuf, Option<SystemTime>);

fn stamp(path: &Path) -> Stamp {
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    (path.to_owned(), modified)
}

/// The contents of a web config file and of the files it names, as read for one load.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebConfigBundle {
    /// The config file.
    pub path: PathBuf,
    /// Each file read, in the order read, the config file first.
    pub files: Vec<(PathBuf, Vec<u8>)>,
}

/// Reads the files of one load: from the file system, keeping what it read, or from a
/// bundle received. `setting` names the file in errors (none: the config file itself).
trait Files {
    fn read(
        &mut self,
        path: &Path,
        setting: Option<&'static str>,
    ) -> Result<Vec<u8>, WebConfigError>;
}

/// The file system, noting each file's modification time and contents.
struct FileSystem<'a> {
    stamps: Vec<Stamp>,
    bundle: WebConfigBundle,
    reading: &'a Reading,
}

impl Files for FileSystem<'_> {
    fn read(
        &mut self,
        path: &Path,
        setting: Option<&'static str>,
    ) -> Result<Vec<u8>, WebConfigError> {
        let (stamp, bytes) = self
            .reading
            .at(path, || (stamp(path), read_regular(path, setting)));
        self.stamps.push(stamp);
        let bytes = bytes?;
        self.bundle.files.push((path.to_owned(), bytes.clone()));
        Ok(bytes)
    }
}

/// The contents of `path`, when it is a regular file.
fn read_regular(path: &Path, setting: Option<&'static str>) -> Result<Vec<u8>, WebConfigError> {
    let failed = |source| WebConfigError::Read {
        path: path.to_owned(),
        setting,
        source,
    };
    // Opened before it is looked at, so that what is checked is what is read, not a file
    // put in its place in between. O_NONBLOCK, as opening a FIFO waits for a writer
    // without it, for ever if none comes; on a regular file it changes nothing. O_NOCTTY,
    // so that a terminal named by mistake does not become this process's.
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(failed)?;
    let file_type = file.metadata().map_err(failed)?.file_type();
    if !file_type.is_file() {
        return Err(WebConfigError::NotRegular {
            path: path.to_owned(),
            setting,
            kind: kind_of(file_type),
        });
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(failed)?;
    Ok(bytes)
}

/// What a file that is not a regular one is, in words.
fn kind_of(file_type: FileType) -> &'static str {
    if file_type.is_fifo() {
        "FIFO"
    } else if file_type.is_dir() {
        "directory"
    } else if file_type.is_char_device() {
        "character device"
    } else if file_type.is_block_device() {
        "block device"
    } else if file_type.is_socket() {
        "socket"
    } else {
        "special file"
    }
}

/// The file a read of the web config is at, and since when.
#[derive(Debug, Default)]
struct Reading(Mutex<Option<(PathBuf, Instant)>>);

impl Reading {
    fn lock(&self) -> MutexGuard<'_, Option<(PathBuf, Instant)>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `read`, a look at `path`, noted as in progress meanwhile.
    fn at<T>(&self, path: &Path, read: impl FnOnce() -> T) -> T {
        *self.lock() = Some((path.to_owned(), Instant::now()));
        let result = read();
        *self.lock() = None;
        result
    }

    /// The file a look at has lasted `limit` or more.
    fn stuck(&self, limit: Duration) -> Option<PathBuf> {
        self.lock()
            .as_ref()
            .filter(|(_, since)| since.elapsed() >= limit)
            .map(|(path, _)| path.clone())
    }
}

impl Files for &WebConfigBundle {
    fn read(
        &mut self,
        path: &Path,
        setting: Option<&'static str>,
    ) -> Result<Vec<u8>, WebConfigError> {
        self.files
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, bytes)| bytes.clone())
            .ok_or_else(|| WebConfigError::Read {
                path: path.to_owned(),
                setting,
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "not among the files the collector sent",
                ),
            })
    }
}

/// Reads the settings from the file system, with what it read, noting each look at a
/// file in `reading`.
fn load<'a>(
    path: &Path,
    reading: &'a Reading,
) -> Result<(WebConfig, FileSystem<'a>), WebConfigError> {
    let mut files = FileSystem {
        stamps: Vec::new(),
        bundle: WebConfigBundle {
            path: path.to_owned(),
            files: Vec::new(),
        },
        reading,
    };
    let config = load_from(path, &mut files)?;
    Ok((config, files))
}

/// Reads and checks the file at `path`, and the files it names (relative to its
/// directory), through `files`.
fn load_from(path: &Path, files: &mut dyn Files) -> Result<WebConfig, WebConfigError> {
    let text = String::from_utf8(files.read(path, None)?).map_err(|e| WebConfigError::Read {
        path: path.to_owned(),
        setting: None,
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })?;
    let raw: RawConfig = if text.trim().is_empty() {
        RawConfig::default()
    } else {
        serde_norway::from_str(&text).map_err(|source| WebConfigError::Parse {
            path: path.to_owned(),
            source,
        })?
    };
    let invalid = |setting: &'static str, reason: String| WebConfigError::Invalid {
        path: path.to_owned(),
        setting,
        reason,
    };
    for (user, hash) in &raw.basic_auth_users {
        if hash.parse::<bcrypt::HashParts>().is_err() {
            return Err(invalid(
                "basic_auth_users",
                format!("the hash of {user:?} is not a bcrypt hash"),
            ));
        }
    }
    let mut headers = Vec::new();
    for (name, value) in raw
        .http_server_config
        .as_ref()
        .map(|h| &h.headers)
        .into_iter()
        .flatten()
    {
        let header = HeaderName::try_from(name.as_str())
            .map_err(|e| invalid("http_server_config.headers", format!("{name:?}: {e}")))?;
        if RESERVED_HEADERS.contains(&header.as_str()) {
            return Err(invalid(
                "http_server_config.headers",
                format!("{name:?} is set by the server and cannot be overridden"),
            ));
        }
        let value = HeaderValue::try_from(value.as_str())
            .map_err(|e| invalid("http_server_config.headers", format!("{name:?}: {e}")))?;
        headers.push((header, value));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let tls = match raw.tls_server_config {
        Some(tls) => Some(tls_config(tls, dir, files, &invalid)?),
        None => None,
    };
    Ok(WebConfig {
        tls,
        users: raw.basic_auth_users,
        headers,
    })
}

fn tls_config(
    tls: RawTls,
    dir: &Path,
    files: &mut dyn Files,
    invalid: &dyn Fn(&'static str, String) -> WebConfigError,
) -> Result<Arc<rustls::ServerConfig>, WebConfigError> {
    let (Some(cert_file), Some(key_file)) = (&tls.cert_file, &tls.key_file) else {
        return Err(invalid(
            "tls_server_config",
            "needs both cert_file and key_file".to_owned(),
        ));
    };
    let pem_error = |setting: &'static str, file: &Path, e: rustls_pki_types::pem::Error| {
        invalid(setting, format!("{}: {e}", file.display()))
    };
    let cert_path = dir.join(cert_file);
    let certs = CertificateDer::pem_slice_iter(&files.read(&cert_path, Some("cert_file"))?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error("cert_file", &cert_path, e))?;
    if certs.is_empty() {
        return Err(invalid(
            "cert_file",
            format!("{}: no certificate in it", cert_path.display()),
        ));
    }
    let key_path = dir.join(key_file);
    let key = PrivateKeyDer::from_pem_slice(&files.read(&key_path, Some("key_file"))?)
        .map_err(|e| pem_error("key_file", &key_path, e))?;

    let version = |setting: &'static str, value: &Option<String>, default: &'static str| match value
        .as_deref()
        .unwrap_or(default)
    {
        "TLS12" => Ok(&rustls::version::TLS12),
        "TLS13" => Ok(&rustls::version::TLS13),
        "TLS10" | "TLS11" => Err(invalid(
            setting,
            "TLS 1.0 and 1.1 are not supported (rustls); use TLS12 or TLS13".to_owned(),
        )),
        other => Err(invalid(
            setting,
            format!("{other:?} is none of TLS12, TLS13"),
        )),
    };
    let min = version("min_version", &tls.min_version, "TLS12")?;
    let max = version("max_version", &tls.max_version, "TLS13")?;
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = match (min, max) {
        (a, b) if a.version == b.version => vec![a],
        (a, _) if a.version == rustls::ProtocolVersion::TLSv1_3 => {
            return Err(invalid("max_version", "is below min_version".to_owned()));
        }
        _ => vec![&rustls::version::TLS12, &rustls::version::TLS13],
    };

    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(names) = &tls.cipher_suites {
        // As in Go, the list chooses among the TLS 1.2 suites; TLS 1.3's are always on.
        let mut chosen: Vec<rustls::SupportedCipherSuite> = provider
            .cipher_suites
            .iter()
            .filter(|s| s.version() == &rustls::version::TLS13)
            .copied()
            .collect();
        for name in names {
            // Go names the ChaCha20 suites without their hash.
            let wanted = if name.ends_with("CHACHA20_POLY1305") {
                format!("{name}_SHA256")
            } else {
                name.clone()
            };
            let suite = provider
                .cipher_suites
                .iter()
                .find(|s| {
                    s.version() == &rustls::version::TLS12 && format!("{:?}", s.suite()) == wanted
                })
                .ok_or_else(|| {
                    let supported: Vec<String> = provider
                        .cipher_suites
                        .iter()
                        .filter(|s| s.version() == &rustls::version::TLS12)
                        .map(|s| format!("{:?}", s.suite()))
                        .collect();
                    invalid(
                        "cipher_suites",
                        format!(
                            "{name:?} is not supported (rustls); supported: {}",
                            supported.join(", ")
                        ),
                    )
                })?;
            if !chosen.iter().any(|s| s.suite() == suite.suite()) {
                chosen.push(*suite);
            }
        }
        provider.cipher_suites = chosen;
    }
    let provider = Arc::new(provider);
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| invalid("tls_server_config", e.to_string()))?;

    let client_auth = tls.client_auth_type.as_deref().unwrap_or("NoClientCert");
    let verify = match client_auth {
        "NoClientCert" => None,
        "VerifyClientCertIfGiven" => Some(false),
        "RequireAndVerifyClientCert" => Some(true),
        "RequestClientCert" | "RequireAnyClientCert" => {
            return Err(invalid(
                "client_auth_type",
                format!(
                    "{client_auth} (a certificate taken without verifying it) is not supported \
                     (rustls); use VerifyClientCertIfGiven or RequireAndVerifyClientCert"
                ),
            ));
        }
        other => {
            return Err(invalid(
                "client_auth_type",
                format!(
                    "{other:?} is none of NoClientCert, VerifyClientCertIfGiven, \
                     RequireAndVerifyClientCert"
                ),
            ));
        }
    };
    let builder = match (verify, &tls.client_ca_file) {
        (None, None) => builder.with_no_client_auth(),
        (None, Some(_)) => {
            return Err(invalid(
                "client_ca_file",
                "is set but client_auth_type does not verify client certificates".to_owned(),
            ));
        }
        (Some(_), None) => {
            return Err(invalid(
                "client_auth_type",
                format!("{client_auth} needs client_ca_file"),
            ));
        }
        (Some(required), Some(ca_file)) => {
            let ca_path = dir.join(ca_file);
            let mut roots = rustls::RootCertStore::empty();
            for cert in
                CertificateDer::pem_slice_iter(&files.read(&ca_path, Some("client_ca_file"))?)
            {
                let cert = cert.map_err(|e| pem_error("client_ca_file", &ca_path, e))?;
                roots.add(cert).map_err(|e| {
                    invalid("client_ca_file", format!("{}: {e}", ca_path.display()))
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if required {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            let verifier = verifier
                .build()
                .map_err(|e| invalid("client_ca_file", format!("{}: {e}", ca_path.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| invalid("key_file", format!("{}: {e}", key_path.display())))?;
    config.ignore_client_order = tls.prefer_server_cipher_suites.unwrap_or(true);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The web config file and the settings last read from it.
#[derive(Debug)]
pub struct WebConfigFile {
    path: PathBuf,
    /// Re-read from the file system on change; false when the settings come in bundles.
    reads_files: bool,
    last: Mutex<Last>,
    reading: Reading,
    /// Set by [`WebConfigFile::request_reload`] (SIGHUP): the next look reads the files
    /// whether or not they seem changed (a file replaced within its mtime's granularity).
    reload_requested: AtomicBool,
}

/// The last good settings, with the files they were read from.
#[derive(Debug)]
struct Last {
    stamps: Vec<Stamp>,
    config: Arc<WebConfig>,
    bundle: Arc<WebConfigBundle>,
}

impl WebConfigFile {
    /// Reads `path` for the first time: an error here is the user's to fix before start.
    pub fn open(path: PathBuf) -> Result<Self, WebConfigError> {
        let reading = Reading::default();
        let (config, files) = load(&path, &reading)?;
        let last = Mutex::new(Last {
            stamps: files.stamps,
            config: Arc::new(config),
            bundle: Arc::new(files.bundle),
        });
        Ok(Self {
            path,
            reads_files: true,
            last,
            reading,
            reload_requested: AtomicBool::new(false),
        })
    }

    /// Settings built from the files the collector read, replaced by
    /// [`WebConfigFile::replace`] only.
    pub fn from_bundle(bundle: WebConfigBundle) -> Result<Self, WebConfigError> {
        let config = load_from(&bundle.path.clone(), &mut &bundle)?;
        Ok(Self {
            path: bundle.path.clone(),
            reads_files: false,
            last: Mutex::new(Last {
                stamps: Vec::new(),
                config: Arc::new(config),
                bundle: Arc::new(bundle),
            }),
            reading: Reading::default(),
            reload_requested: AtomicBool::new(false),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Last> {
        self.last.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts the settings of `bundle` in force; if they do not load, the last good ones
    /// stay and the error is returned.
    pub fn replace(&self, bundle: WebConfigBundle) -> Result<(), WebConfigError> {
        let config = load_from(&bundle.path.clone(), &mut &bundle)?;
        let mut last = self.lock();
        last.config = Arc::new(config);
        last.bundle = Arc::new(bundle);
        Ok(())
    }

    /// The current settings, after [`WebConfigFile::reload_if_changed`].
    pub fn current(&self) -> Arc<WebConfig> {
        self.reload_if_changed();
        Arc::clone(&self.lock().config)
    }

    /// Re-reads the files when the config file or one it names changed since the last
    /// read. Settings that no longer load leave the last good ones in force, logged once
    /// per change. Blocks for as long as a file does (a hung mount); the settings in force
    /// stay available to other threads meanwhile.
    pub fn reload_if_changed(&self) {
        if !self.reads_files {
            return;
        }
        let stamps = self.lock().stamps.clone();
        let now: Vec<Stamp> = stamps
            .iter()
            .map(|(path, _)| self.reading.at(path, || stamp(path)))
            .collect();
        let requested = self.reload_requested.swap(false, Ordering::Relaxed);
        if now == stamps && !requested {
            return;
        }
        let loaded = load(&self.path, &self.reading);
        let mut last = self.lock();
        match loaded {
            Ok((config, files)) => {
                tracing::info!(file = %self.path.display(), "web config reloaded");
                *last = Last {
                    stamps: files.stamps,
                    config: Arc::new(config),
                    bundle: Arc::new(files.bundle),
                };
            }
            Err(e) => {
                tracing::error!(error = %Chain(&e), "web config not reloaded, the last good one stays");
                // Logged once per change, not at every look.
                last.stamps = now;
            }
        }
    }

    /// The config file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes the next [`WebConfigFile::reload_if_changed`] read the files even if they seem
    /// unchanged.
    pub fn request_reload(&self) {
        self.reload_requested.store(true, Ordering::Relaxed);
    }

    /// The files of the settings in force, for the server process, as last read.
    pub fn bundle(&self) -> Arc<WebConfigBundle> {
        Arc::clone(&self.lock().bundle)
    }

    /// The file that a look at, by [`WebConfigFile::reload_if_changed`], has waited for
    /// `limit` or more, if any.
    pub fn stuck(&self, limit: Duration) -> Option<PathBuf> {
        self.reading.stuck(limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<WebConfig, WebConfigError> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("web.yml");
        std::fs::write(&path, text).expect("write config");
        load(&path, &Reading::default()).map(|(config, _)| config)
    }

    #[test]
    fn a_bundle_gives_the_settings_its_files_gave() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("web.yml");
        std::fs::write(
            &path,
            "http_server_config:\n  headers:\n    X-Frame-Options: deny\n",
        )
        .expect("write config");
        let file = WebConfigFile::open(path.clone()).expect("loads");
        let bundle = (*file.bundle()).clone();
        assert_eq!(bundle.files.len(), 1);
        // The server never reads the file itself.
        std::fs::remove_file(&path).expect("remove");
        let pushed = WebConfigFile::from_bundle(bundle).expect("loads from the bundle");
        assert_eq!(pushed.current().headers[0].0.as_str(), "x-frame-options");
        let broken = WebConfigBundle {
            path: path.clone(),
            files: vec![(path, b"tls_server_config:\n  cert_file: a\n".to_vec())],
        };
        assert!(pushed.replace(broken).is_err());
        assert_eq!(
            pushed.current().headers.len(),
            1,
            "the last good settings stay"
        );
    }

    #[test]
    fn files_that_are_not_regular_are_refused_at_once_naming_the_setting() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let fifo = dir.path().join("cert.pem");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("run mkfifo");
        assert!(made.success());
        for (cert, kind) in [
            (fifo.display().to_string(), "FIFO"),
            ("/dev/null".to_owned(), "character device"),
            (dir.path().display().to_string(), "directory"),
        ] {
            let text = format!("tls_server_config:\n  cert_file: {cert}\n  key_file: k\n");
            // On a thread, so that a read that blocks fails the test instead of hanging it.
            let (sender, receiver) = std::sync::mpsc::channel();
            std::thread::spawn(move || sender.send(load_text(&text).map(drop)));
            let err = receiver
                .recv_timeout(Duration::from_secs(10))
                .expect("returns at once")
                .expect_err("refused")
                .to_string();
            assert!(
                err.contains(&format!(
                    "{cert} (cert_file) is not a regular file but a {kind}"
                )),
                "{err}"
            );
        }
    }

    #[test]
    fn a_look_at_a_file_that_lasts_is_named() {
        let reading = Reading::default();
        let path = Path::new("/mnt/hung/cert.pem");
        reading.at(path, || {
            assert_eq!(reading.stuck(Duration::ZERO).as_deref(), Some(path));
            assert_eq!(reading.stuck(Duration::from_secs(3600)), None);
        });
        assert_eq!(reading.stuck(Duration::ZERO), None, "done");
    }

    #[test]
    fn an_empty_file_serves_plain_http_without_auth() {
        let config = load_text("").expect("loads");
        assert!(config.tls.is_none() && config.users.is_empty() && config.headers.is_empty());
    }

    #[test]
    fn users_and_headers_are_read() {
        let config = load_text(
            "basic_auth_users:\n  alice: $2y$10$mDwo.lAisC94iLAyP81MCesa29IzH37oigHC/42V2pdJlUprsJPze\n\
             http_server_config:\n  headers:\n    X-Frame-Options: deny\n",
        )
        .expect("loads");
        assert_eq!(config.users.len(), 1);
        assert_eq!(config.headers[0].0.as_str(), "x-frame-options");
    }

    #[test]
    fn bad_settings_are_named() {
        for (text, setting) in [
            ("basic_auth_users:\n  alice: plain\n", "basic_auth_users"),
            (
                "http_server_config:\n  headers:\n    Server: x\n",
                "http_server_config.headers",
            ),
            ("tls_server_config:\n  cert_file: a\n", "tls_server_config"),
            (
                "tls_server_config:\n  curve_preferences: [X25519]\n",
                "curve_preferences",
            ),
            ("unknown: 1\n", "unknown"),
        ] {
            let err = Chain(&load_text(text).expect_err(text)).to_string();
            assert!(err.contains(setting), "{text}: {err}");
            assert!(err.contains("web.yml"), "{text}: {err}");
        }
    }
}
