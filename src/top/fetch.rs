//! Reading a running exporter's /metrics for `top --url`: the URL, the
//! `--http.config.file` in Prometheus' http_config format (as promtool takes it, so that
//! the settings Prometheus scrapes with work here), and one GET per reading, over TLS with
//! basic authentication when the file says so, gzip accepted.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::{Request, header};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};

/// An exporter's metrics URL: `http://` or `https://`, a host, an optional port, a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    https: bool,
    host: String,
    port: u16,
    path: String,
}

impl Url {
    /// Reads `text`; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<Url, String> {
        let uri: hyper::Uri = text.parse().map_err(|e| format!("{text:?}: {e}"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => {
                return Err(format!(
                    "{text:?} is not http://HOST[:PORT]/PATH or https://…"
                ));
            }
        };
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("{text:?} has no host"))?;
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err(format!(
                "{text:?}: give the user and password in --http.config.file (basic_auth), not in the URL"
            ));
        }
        Ok(Url {
            https,
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port: uri.port_u16().unwrap_or(if https { 443 } else { 80 }),
            path: uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        })
    }

    /// `host:port`, an IPv6 address in brackets: what the Host header and messages say.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", self.authority(), self.path)
    }
}

/// `--http.config.file` as written: the part of Prometheus' http_config that a scrape of
/// the exporter needs. Anything else is refused, naming it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpConfigFile {
    tls_config: Option<TlsConfigFile>,
    basic_auth: Option<BasicAuthFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsConfigFile {
    ca_file: Option<PathBuf>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    server_name: Option<String>,
    #[serde(default)]
    insecure_skip_verify: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BasicAuthFile {
    username: String,
    password: Option<String>,
    password_file: Option<PathBuf>,
}

/// Where the CA bundle of the system is on the common distributions, as Go looks for it
/// when a tls_config names no `ca_file`.
const SYSTEM_CA_FILES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// `--http.config.file` that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HttpConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid YAML of the format.
    #[error("{path} is not a Prometheus http_config")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with where.
        #[source]
        source: serde_norway::Error,
    },
    /// A setting that cannot be used.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file the config names cannot be used.
    #[error("{setting} {path}: {reason}")]
    File {
        /// The setting that names it.
        setting: &'static str,
        /// The file, resolved.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// An https URL, no `ca_file`, and no CA bundle where the system keeps one.
    #[error("no CA to verify {0} with: give tls_config.ca_file in --http.config.file")]
    NoCa(String),
}

/// A reading of the URL that failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// No TCP connection.
    #[error("cannot connect to {address}")]
    Connect {
        /// host:port.
        address: String,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The TLS handshake failed (an unknown CA, a name the certificate does not hold, a
    /// client certificate refused).
    #[error("TLS with {address} failed")]
    Tls {
        /// host:port.
        address: String,
        /// rustls's reason.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP exchange failed.
    #[error("HTTP exchange with {address} failed")]
    Http {
        /// host:port.
        address: String,
        /// hyper's reason.
        #[source]
        source: hyper::Error,
    },
    /// The response body could not be read (a connection closed, more than the limit).
    #[error("reading the response of {address} failed")]
    Body {
        /// host:port.
        address: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An answer other than 200.
    #[error("{url} answered {status}: {body}")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// A gzip body that does not decompress, or decompresses to more than the limit.
    #[error("the gzip response of {url} does not decompress")]
    Gzip {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No answer within the deadline.
    #[error("no answer from {url} within {timeout:?}")]
    Timeout {
        /// The URL.
        url: String,
        /// The deadline (`--collect-timeout`).
        timeout: Duration,
    },
}

/// Fetches one URL the way its http_config says.
#[derive(Debug)]
pub struct Client {
    url: Url,
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    authorization: Option<String>,
    timeout: Duration,
    max_bytes: usize,
}

impl Client {
    /// A client of `url` set up by `http_config_file`; each reading may take `timeout`
    /// and bring `max_bytes` of exposition, decompressed.
    pub fn new(
        url: Url,
        http_config_file: Option<&Path>,
        timeout: Duration,
        max_bytes: usize,
    ) -> Result<Client, HttpConfigError> {
        let (config, place) = match http_config_file {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| HttpConfigError::Read {
                        path: path.to_owned(),
                        source,
                    })?;
                let config: Option<HttpConfigFile> =
                    serde_norway::from_str(&text).map_err(|source| HttpConfigError::Parse {
                        path: path.to_owned(),
                        source,
                    })?;
                (config.unwrap_or_default(), Place::of(path))
            }
            None => (HttpConfigFile::default(), Place::default()),
        };
        let authorization = config
            .basic_auth
            .map(|auth| basic_auth(auth, &place))
            .transpose()?;
        let tls = match (url.https, config.tls_config) {
            (false, Some(_)) => return Err(place.invalid("tls_config is for an https:// URL")),
            (false, None) => None,
            (true, tls) => Some(tls_config(&url, tls.unwrap_or_default(), &place)?),
        };
        Ok(Client {
            url,
            tls,
            authorization,
            timeout,
            max_bytes,
        })
    }

    /// The URL read.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// One reading: the exposition's text.
    pub async fn get(&self) -> Result<String, FetchError> {
        tokio::time::timeout(self.timeout, self.exchange())
            .await
            .unwrap_or_else(|_| {
                Err(FetchError::Timeout {
                    url: self.url.to_string(),
                    timeout: self.timeout,
                })
            })
    }

    async fn exchange(&self) -> Result<String, FetchError> {
        let address = self.url.authority();
        let tcp = tokio::net::TcpStream::connect((self.url.host.as_str(), self.url.port))
            .await
            .map_err(|source| FetchError::Connect {
                address: address.clone(),
                source,
            })?;
        let (encoding, body) = match &self.tls {
            Some((config, name)) => {
                let stream = tokio_rustls::TlsConnector::from(Arc::clone(config))
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|source| FetchError::Tls {
                        address: address.clone(),
                        source,
                    })?;
                self.request(stream).await?
            }
            None => self.request(tcp).await?,
        };
        let text = if encoding.as_deref() == Some("gzip") {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .take(self.max_bytes as u64 + 1)
                .read_to_end(&mut plain)
                .and_then(|_| {
                    if plain.len() > self.max_bytes {
                        Err(std::io::Error::other(format!(
                            "more than {} bytes (--collect-max-output-bytes)",
                            self.max_bytes
                        )))
                    } else {
                        Ok(())
                    }
                })
                .map_err(|source| FetchError::Gzip {
                    url: self.url.to_string(),
                    source,
                })?;
            plain
        } else {
            body.to_vec()
        };
        // The exporter writes UTF-8; anything else is shown, not refused.
        Ok(String::from_utf8(text)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }

    /// Sends the GET over `stream`: the response's content encoding and body.
    async fn request<S>(&self, stream: S) -> Result<(Option<String>, Bytes), FetchError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let address = self.url.authority();
        let http = |source| FetchError::Http {
            address: address.clone(),
            source,
        };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(http)?;
        let mut request = Request::get(self.url.path.as_str())
            .header(header::HOST, &address)
            // The text format, not OpenMetrics: the one the interpretation reads.
            .header(header::ACCEPT, "text/plain;version=0.0.4")
            .header(header::ACCEPT_ENCODING, "gzip")
            .header(
                header::USER_AGENT,
                concat!("netfilter_exporter/", env!("CARGO_PKG_VERSION"), " top"),
            );
        if let Some(authorization) = &self.authorization {
            request = request.header(header::AUTHORIZATION, authorization);
        }
        let request = request
            .body(Empty::<Bytes>::new())
            .expect("a GET of a parsed URL is a valid request");
        let exchange = async {
            let response = sender.send_request(request).await.map_err(http)?;
            let status = response.status();
            let encoding = response
                .headers()
                .get(header::CONTENT_ENCODING)
                .and_then(|v| v.to_str().ok())
                .map(str::to_ascii_lowercase);
            let body = Limited::new(response.into_body(), self.max_bytes)
                .collect()
                .await
                .map_err(|source| FetchError::Body {
                    address: address.clone(),
                    source,
                })?
                .to_bytes();
            if status != hyper::StatusCode::OK {
                let start = String::from_utf8_lossy(&body[..body.len().min(200)]);
                return Err(FetchError::Status {
                    url: self.url.to_string(),
                    status: status.as_u16(),
                    body: start.trim().to_owned(),
                });
            }
            Ok((encoding, body))
        };
        // Driven here rather than in a task of its own, so that the deadline ends both.
        let mut connection = std::pin::pin!(connection);
        tokio::select! {
            exchanged = exchange => exchanged,
            closed = &mut connection => Err(match closed {
                Ok(()) => FetchError::Body {
                    address: address.clone(),
                    source: "the connection closed before the answer".into(),
                },
                Err(source) => http(source),
            }),
        }
    }
}

/// Where an http_config file is: what its settings' messages name, and the directory its
/// relative paths are relative to (as Prometheus reads them).
#[derive(Default)]
struct Place {
    file: PathBuf,
    dir: PathBuf,
}

impl Place {
    fn of(file: &Path) -> Place {
        Place {
            file: file.to_owned(),
            dir: file.parent().map(Path::to_owned).unwrap_or_default(),
        }
    }

    fn invalid(&self, reason: &str) -> HttpConfigError {
        HttpConfigError::Invalid {
            path: self.file.clone(),
            reason: reason.to_owned(),
        }
    }
}

fn file_error(setting: &'static str, path: &Path, reason: impl ToString) -> HttpConfigError {
    HttpConfigError::File {
        setting,
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// The `Authorization` header of `auth`, its password read from `password_file` when
/// given.
fn basic_auth(auth: BasicAuthFile, place: &Place) -> Result<String, HttpConfigError> {
    use base64::Engine;
    let password = match (auth.password, auth.password_file) {
        (Some(_), Some(_)) => {
            return Err(place.invalid("basic_auth takes password or password_file, not both"));
        }
        (Some(password), None) => password,
        (None, Some(file)) => {
            let path = place.dir.join(file);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| file_error("basic_auth.password_file", &path, e))?;
            // As Prometheus reads it: the file's content without surrounding white space.
            text.trim().to_owned()
        }
        (None, None) => String::new(),
    };
    let credentials = format!("{}:{password}", auth.username);
    let header = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    );
    Ok(header)
}

/// The TLS settings of `url` from `tls`: without a `ca_file`, the system's CAs.
fn tls_config(
    url: &Url,
    tls: TlsConfigFile,
    place: &Place,
) -> Result<(Arc<rustls::ClientConfig>, ServerName<'static>), HttpConfigError> {
    if tls.insecure_skip_verify {
        return Err(place.invalid(
            "insecure_skip_verify is not supported: give the exporter's CA as tls_config.ca_file",
        ));
    }
    let ca = match &tls.ca_file {
        Some(file) => place.dir.join(file),
        None => SYSTEM_CA_FILES
            .iter()
            .map(PathBuf::from)
            .find(|path| path.is_file())
            .ok_or_else(|| HttpConfigError::NoCa(url.to_string()))?,
    };
    let mut roots = rustls::RootCertStore::empty();
    let certificates =
        CertificateDer::pem_file_iter(&ca).map_err(|e| file_error("tls_config.ca_file", &ca, e))?;
    for certificate in certificates {
        let certificate = certificate.map_err(|e| file_error("tls_config.ca_file", &ca, e))?;
        // A system bundle may hold a certificate rustls cannot use; the others still count.
        let added = roots.add(certificate);
        if tls.ca_file.is_some() {
            added.map_err(|e| file_error("tls_config.ca_file", &ca, e))?;
        }
    }
    if roots.is_empty() {
        return Err(file_error(
            "tls_config.ca_file",
            &ca,
            "no certificate in it",
        ));
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| place.invalid(&e.to_string()))?
    .with_root_certificates(roots);
    let config = match (&tls.cert_file, &tls.key_file) {
        (Some(cert_file), Some(key_file)) => {
            let (cert_file, key_file) = (place.dir.join(cert_file), place.dir.join(key_file));
            let chain = CertificateDer::pem_file_iter(&cert_file)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| file_error("tls_config.cert_file", &cert_file, e))?;
            if chain.is_empty() {
                return Err(file_error(
                    "tls_config.cert_file",
                    &cert_file,
                    "no certificate in it",
                ));
            }
            let key = PrivateKeyDer::from_pem_file(&key_file)
                .map_err(|e| file_error("tls_config.key_file", &key_file, e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| file_error("tls_config.key_file", &key_file, e))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err(place.invalid("tls_config takes cert_file and key_file together")),
    };
    let host = tls.server_name.as_deref().unwrap_or(&url.host);
    let name = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ServerName::IpAddress(ip.into()),
        Err(_) => ServerName::try_from(host.to_owned())
            .map_err(|e| place.invalid(&format!("server name {host:?}: {e}")))?,
    };
    Ok((Arc::new(config), name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let url = Url::parse("https://[::1]:9455/metrics?x=1").expect("valid");
        assert_eq!(url.authority(), "[::1]:9455");
        assert_eq!(url.to_string(), "https://[::1]:9455/metrics?x=1");
        assert_eq!(
            Url::parse("http://h").expect("valid").to_string(),
            "http://h:80/"
        );
        for bad in ["ftp://h/", "h:9455/metrics", "/metrics", "http://u:p@h/"] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    fn client(url: &str, config: &str) -> Result<Client, HttpConfigError> {
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::write(dir.path().join("password"), "s3cret\n").expect("write");
        let path = dir.path().join("http.yml");
        std::fs::write(&path, config).expect("write");
        let url = Url::parse(url).expect("valid");
        Client::new(url, Some(&path), Duration::from_secs(1), 1 << 20)
    }

    #[test]
    fn basic_auth_with_a_password_or_a_password_file_beside_the_config() {
        let header = |config| client("http://h/", config).expect("valid").authorization;
        assert_eq!(
            header("basic_auth:\n  username: prometheus\n  password: change me\n"),
            Some("Basic cHJvbWV0aGV1czpjaGFuZ2UgbWU=".to_owned())
        );
        assert_eq!(
            header("basic_auth:\n  username: u\n  password_file: password\n"),
            Some("Basic dTpzM2NyZXQ=".to_owned())
        );
        assert_eq!(header(""), None);
    }

    #[test]
    fn refusals_name_the_setting() {
        for (url, config, expected) in [
            (
                "http://h/",
                "bearer_token: x\n",
                "unknown field `bearer_token`",
            ),
            (
                "http://h/",
                "tls_config:\n  ca_file: ca.crt\n",
                "tls_config is for an https:// URL",
            ),
            (
                "http://h/",
                "basic_auth:\n  username: u\n  password: p\n  password_file: password\n",
                "not both",
            ),
            (
                "http://h/",
                "basic_auth:\n  username: u\n  password_file: missing\n",
                "basic_auth.password_file",
            ),
            (
                "https://h/",
                "tls_config:\n  ca_file: missing.crt\n",
                "tls_config.ca_file",
            ),
            (
                "https://h/",
                "tls_config:\n  ca_file: password\n",
                "no certificate",
            ),
            (
                "https://h/",
                "tls_config:\n  insecure_skip_verify: true\n",
                "insecure_skip_verify",
            ),
        ] {
            let err = client(url, config).expect_err(config);
            let message = crate::error_chain::Chain(&err).to_string();
            assert!(message.contains(expected), "{config}: {message}");
        }
    }
}
