//! `--web.config.file`, in the format of the Prometheus exporter-toolkit, so that a file
//! written for node_exporter works here: TLS (`tls_server_config`), basic authentication
//! (`basic_auth_users`, bcrypt hashes) and extra response headers (`http_server_config`).
//! What rustls cannot do (TLS 1.0 and 1.1, client certificates taken without being
//! verified, Go's curve names) is refused with an error naming the setting, never ignored.
//!
//! The file, and the certificate files it names, are re-read when one of them changes: a
//! [`WebConfigFile`] is asked for the current settings once per connection, as the toolkit
//! does. When the server runs in a process of its own, the collector reads the files (the
//! key may be readable by root only) and sends their contents, a [`WebConfigBundle`], which
//! the server builds the same settings from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use axum::http::{HeaderName, HeaderValue};
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

/// Why a web config file cannot be used; the message names the file.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    /// A file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The YAML does not have the toolkit's shape.
    #[error("{path}: {source}")]
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
/// bundle received.
trait Files {
    fn read(&mut self, path: &Path) -> Result<Vec<u8>, WebConfigError>;
}

/// The file system, noting each file's modification time and contents.
#[derive(Default)]
struct FileSystem {
    stamps: Vec<Stamp>,
    bundle: WebConfigBundle,
}

impl Files for FileSystem {
    fn read(&mut self, path: &Path) -> Result<Vec<u8>, WebConfigError> {
        self.stamps.push(stamp(path));
        let bytes = std::fs::read(path).map_err(|source| WebConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        self.bundle.files.push((path.to_owned(), bytes.clone()));
        Ok(bytes)
    }
}

impl Files for &WebConfigBundle {
    fn read(&mut self, path: &Path) -> Result<Vec<u8>, WebConfigError> {
        self.files
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, bytes)| bytes.clone())
            .ok_or_else(|| WebConfigError::Read {
                path: path.to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "not among the files the collector sent",
                ),
            })
    }
}

/// Reads the settings from the file system, with what it read.
fn load(path: &Path) -> Result<(WebConfig, FileSystem), WebConfigError> {
    let mut files = FileSystem::default();
    files.bundle.path = path.to_owned();
    let config = load_from(path, &mut files)?;
    Ok((config, files))
}

/// Reads and checks the file at `path`, and the files it names (relative to its
/// directory), through `files`.
fn load_from(path: &Path, files: &mut dyn Files) -> Result<WebConfig, WebConfigError> {
    let text = String::from_utf8(files.read(path)?).map_err(|e| WebConfigError::Read {
        path: path.to_owned(),
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
    let certs = CertificateDer::pem_slice_iter(&files.read(&cert_path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error("cert_file", &cert_path, e))?;
    if certs.is_empty() {
        return Err(invalid(
            "cert_file",
            format!("{}: no certificate in it", cert_path.display()),
        ));
    }
    let key_path = dir.join(key_file);
    let key = PrivateKeyDer::from_pem_slice(&files.read(&key_path)?)
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
            for cert in CertificateDer::pem_slice_iter(&files.read(&ca_path)?) {
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
        let (config, files) = load(&path)?;
        Ok(Self {
            path,
            reads_files: true,
            last: Mutex::new(Last {
                stamps: files.stamps,
                config: Arc::new(config),
                bundle: Arc::new(files.bundle),
            }),
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
        })
    }

    /// Puts the settings of `bundle` in force; if they do not load, the last good ones
    /// stay and the error is returned.
    pub fn replace(&self, bundle: WebConfigBundle) -> Result<(), WebConfigError> {
        let config = load_from(&bundle.path.clone(), &mut &bundle)?;
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        last.config = Arc::new(config);
        last.bundle = Arc::new(bundle);
        Ok(())
    }

    /// The current settings: re-read when the file or one it names changed since the last
    /// read. A file that no longer loads keeps the last good settings, and is logged
    /// until it is fixed.
    pub fn current(&self) -> Arc<WebConfig> {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let changed = last
            .stamps
            .iter()
            .any(|(path, modified)| stamp(path).1 != *modified);
        if self.reads_files && changed {
            match load(&self.path) {
                Ok((config, files)) => {
                    tracing::info!(file = %self.path.display(), "web config reloaded");
                    *last = Last {
                        stamps: files.stamps,
                        config: Arc::new(config),
                        bundle: Arc::new(files.bundle),
                    };
                }
                Err(e) => {
                    tracing::error!(error = %e, "web config not reloaded, the last good one stays");
                    // Logged once per change, not per connection.
                    last.stamps = last.stamps.iter().map(|(path, _)| stamp(path)).collect();
                }
            }
        }
        Arc::clone(&last.config)
    }

    /// The files of the current settings, for the server process; re-read as
    /// [`WebConfigFile::current`] does.
    pub fn bundle(&self) -> Arc<WebConfigBundle> {
        self.current();
        let last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(&last.bundle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<WebConfig, WebConfigError> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("web.yml");
        std::fs::write(&path, text).expect("write config");
        load(&path).map(|(config, _)| config)
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
            let err = load_text(text).expect_err(text).to_string();
            assert!(err.contains(setting), "{text}: {err}");
            assert!(err.contains("web.yml"), "{text}: {err}");
        }
    }
}
