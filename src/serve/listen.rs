//! Where the server listens, as the user names it, and binding it. A port alone (`:9455`,
//! and the default) means every address of both IP versions, as Go servers take it; a host
//! name means every address it resolves to, so `localhost:9455` answers on 127.0.0.1 and
//! ::1 alike.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::net::TcpSocket;

/// Connections the kernel queues before the server accepts them.
const BACKLOG: u32 = 1024;

/// An address to listen on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ListenAddress {
    /// Every address, IPv6 and IPv4 on one socket (IPv4 alone where IPv6 is off).
    Any(u16),
    /// One address.
    Socket(SocketAddr),
    /// Every address a host name resolves to, resolved when binding.
    Host(String, u16),
}

/// An address that is none of `:port`, `host:port`, `ip:port` or `[ipv6]:port`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not host:port, [v6]:port or :port")]
pub struct BadListenAddress(pub String);

impl ListenAddress {
    /// Reads `address` as `--web.listen-address` takes it.
    pub fn parse(address: &str) -> Result<ListenAddress, BadListenAddress> {
        let bad = || BadListenAddress(address.to_owned());
        if let Ok(socket) = address.parse::<SocketAddr>() {
            return Ok(ListenAddress::Socket(socket));
        }
        let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        if host.is_empty() {
            return Ok(ListenAddress::Any(port));
        }
        // What is left is a name: a bracketed or bare IP would have parsed above.
        let name_like = host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if !name_like {
            return Err(bad());
        }
        Ok(ListenAddress::Host(host.to_owned(), port))
    }

    /// The port.
    pub fn port(&self) -> u16 {
        match self {
            ListenAddress::Any(port) | ListenAddress::Host(_, port) => *port,
            ListenAddress::Socket(address) => address.port(),
        }
    }

    /// Binds every socket this address stands for.
    pub async fn bind(&self) -> io::Result<Vec<std::net::TcpListener>> {
        match self {
            // `[::]:PORT` takes IPv4 too, as a port alone does.
            ListenAddress::Socket(address) => {
                Ok(vec![listen(*address, address.ip().is_unspecified())?])
            }
            ListenAddress::Any(port) => {
                match listen(SocketAddr::from((Ipv6Addr::UNSPECIFIED, *port)), true) {
                    Ok(listener) => Ok(vec![listener]),
                    // A kernel without IPv6 (ipv6.disable=1) cannot make the socket at all.
                    Err(e) if e.raw_os_error() == Some(libc::EAFNOSUPPORT) => Ok(vec![listen(
                        SocketAddr::from((Ipv4Addr::UNSPECIFIED, *port)),
                        false,
                    )?]),
                    Err(e) => Err(e),
                }
            }
            ListenAddress::Host(host, port) => {
                let mut addresses: Vec<SocketAddr> =
                    tokio::net::lookup_host((host.as_str(), *port))
                        .await?
                        .collect();
                addresses.sort();
                addresses.dedup();
                addresses
                    .into_iter()
                    .map(|address| listen(address, false))
                    .collect()
            }
        }
    }
}

/// A listening socket on `address`; `dual_stack` takes IPv4 too on an IPv6 socket, whatever
/// the system's `bindv6only` default says.
fn listen(address: SocketAddr, dual_stack: bool) -> io::Result<std::net::TcpListener> {
    let socket = match address {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if address.is_ipv6() {
        rustix::net::sockopt::set_ipv6_v6only(&socket, !dual_stack)?;
    }
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(BACKLOG)?.into_std()
}

impl fmt::Display for ListenAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddress::Any(port) => write!(f, ":{port}"),
            ListenAddress::Socket(address) => write!(f, "{address}"),
            ListenAddress::Host(host, port) => write!(f, "{host}:{port}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_as_users_write_them() {
        let parse = ListenAddress::parse;
        assert_eq!(parse(":9830"), Ok(ListenAddress::Any(9830)));
        assert_eq!(
            parse("127.0.0.1:1"),
            Ok(ListenAddress::Socket("127.0.0.1:1".parse().expect("addr")))
        );
        assert_eq!(
            parse("[::1]:2"),
            Ok(ListenAddress::Socket("[::1]:2".parse().expect("addr")))
        );
        assert_eq!(
            parse("localhost:9455"),
            Ok(ListenAddress::Host("localhost".to_owned(), 9455))
        );
        for bad in [
            "localhost",
            ":x",
            "9455",
            "",
            "::1:80",
            "a b:1",
            "[::1]",
            "host:",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn a_port_alone_takes_ipv4_and_ipv6_and_a_name_every_address() {
        let any = ListenAddress::Any(0).bind().await.expect("bind");
        assert_eq!(any.len(), 1);
        let port = any[0].local_addr().expect("address").port();
        for address in [format!("127.0.0.1:{port}"), format!("[::1]:{port}")] {
            std::net::TcpStream::connect(&address).unwrap_or_else(|e| panic!("{address}: {e}"));
        }
        let localhost = ListenAddress::Host("localhost".to_owned(), 0)
            .bind()
            .await
            .expect("bind");
        assert!(!localhost.is_empty());
        for listener in &localhost {
            let address = listener.local_addr().expect("address");
            assert!(address.ip().is_loopback(), "{address}");
            std::net::TcpStream::connect(address).unwrap_or_else(|e| panic!("{address}: {e}"));
        }
    }
}
