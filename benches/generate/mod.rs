//! Generates kube-proxy-style `iptables-save --counters` dumps of a chosen size, so that the
//! benchmarks and the memory/latency script measure the shape of input the exporter meets on
//! a Kubernetes node (the DESIGN's scale target) rather than a toy. Deterministic: the same
//! size always gives the same bytes, with no dependency on a random-number crate.
//!
//! The dump is loadable with `iptables-restore --counters` inside a network namespace: every
//! target it jumps to is declared, and it uses only modules kube-proxy itself uses (comment,
//! tcp/udp, statistic, mark, conntrack, addrtype, DNAT, MASQUERADE, REJECT).

use std::fmt::Write;

/// Rules written whatever the requested size: the fixed plumbing kube-proxy installs.
const BASE_RULES: usize = 18;

/// Service namespaces, cycled through.
const NAMESPACES: [&str; 6] = [
    "default",
    "kube-system",
    "monitoring",
    "payments",
    "team-a",
    "ingress-nginx",
];

/// Port names and numbers of services, cycled through: (name, protocol, service port,
/// container port).
const PORTS: [(&str, &str, u16, u16); 5] = [
    ("http", "tcp", 80, 8080),
    ("https", "tcp", 443, 8443),
    ("grpc", "tcp", 9090, 9090),
    ("metrics", "tcp", 9100, 9100),
    ("dns", "udp", 53, 53),
];

/// A small, fast, deterministic generator (SplitMix64).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A 16-character chain-name suffix in kube-proxy's alphabet (base32 of a hash).
    fn chain_hash(&mut self) -> String {
        const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let mut bits = self.next();
        (0..16)
            .map(|_| {
                let c = ALPHABET[(bits & 31) as usize] as char;
                bits = bits.rotate_right(5);
                c
            })
            .collect()
    }

    /// `[packets:bytes]` as a busy node shows them: many rules never matched, the others
    /// spread over several orders of magnitude.
    fn counters(&mut self) -> String {
        if self.below(10) < 3 {
            return "[0:0]".to_owned();
        }
        let magnitude = 10u64.pow(1 + self.below(8) as u32);
        let packets = self.below(magnitude);
        let bytes = packets * (60 + self.below(1400));
        format!("[{packets}:{bytes}]")
    }
}

/// One service and its endpoints, planned before writing since iptables-save lists all
/// chain declarations before any rule.
struct Service {
    namespace: &'static str,
    index: usize,
    port: (&'static str, &'static str, u16, u16),
    cluster_ip: String,
    chain: String,
    endpoints: Vec<(String, String)>,
}

impl Service {
    fn comment(&self) -> String {
        format!("{}/svc-{}:{}", self.namespace, self.index, self.port.0)
    }

    /// Rules this service contributes: none in nat without endpoints (one REJECT in filter
    /// instead), else the KUBE-SERVICES jump, the masquerade mark, one jump per endpoint
    /// and two rules per endpoint chain.
    fn rules(endpoints: usize) -> usize {
        if endpoints == 0 { 1 } else { 2 + 3 * endpoints }
    }
}

/// A kube-proxy-style dump (`*nat` then `*filter`) with exactly `rules` rules (or
/// [`BASE_RULES`] when fewer are asked for), about 130 bytes per line.
pub(crate) fn kube_proxy_dump(rules: usize) -> String {
    let mut rng = SplitMix(0x6E66_655F_6265_6E63 ^ rules as u64);
    let services = plan(&mut rng, rules.saturating_sub(BASE_RULES));
    let mut out = String::with_capacity(rules * 140 + 4096);
    write_nat(&mut out, &mut rng, &services);
    write_filter(&mut out, &mut rng, &services);
    out
}

/// Chooses services and endpoint counts (0 to 4, mostly 1 to 3) adding up to `budget` rules.
fn plan(rng: &mut SplitMix, mut budget: usize) -> Vec<Service> {
    let mut services = Vec::new();
    while budget > 0 {
        let mut endpoints = match rng.below(20) {
            0 => 0,
            1..=7 => 1,
            8..=13 => 2,
            14..=17 => 3,
            _ => 4,
        };
        if Service::rules(endpoints) > budget {
            // Fill the remainder exactly: as many endpoints as fit, else a service without.
            endpoints = budget.saturating_sub(2) / 3;
        }
        budget -= Service::rules(endpoints);
        let index = services.len();
        let port = PORTS[index % PORTS.len()];
        let endpoints = (0..endpoints)
            .map(|_| {
                let pod = format!(
                    "10.244.{}.{}:{}",
                    rng.below(256),
                    1 + rng.below(254),
                    port.3
                );
                (rng.chain_hash(), pod)
            })
            .collect();
        services.push(Service {
            namespace: NAMESPACES[index % NAMESPACES.len()],
            index,
            port,
            cluster_ip: format!(
                "10.{}.{}.{}",
                96 + ((index >> 16) & 15),
                (index >> 8) & 255,
                index & 255
            ),
            chain: rng.chain_hash(),
            endpoints,
        });
    }
    services
}

fn write_nat(out: &mut String, rng: &mut SplitMix, services: &[Service]) {
    // Writing into a String cannot fail.
    let _ = write_nat_inner(out, rng, services);
}

fn write_nat_inner(out: &mut String, rng: &mut SplitMix, services: &[Service]) -> std::fmt::Result {
    writeln!(out, "# Generated by iptables-save v1.8.9 (nf_tables)")?;
    writeln!(out, "*nat")?;
    for builtin in ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"] {
        writeln!(out, ":{builtin} ACCEPT {}", rng.counters())?;
    }
    for chain in [
        "KUBE-MARK-MASQ",
        "KUBE-NODEPORTS",
        "KUBE-POSTROUTING",
        "KUBE-SERVICES",
    ] {
        writeln!(out, ":{chain} - [0:0]")?;
    }
    let active = || services.iter().filter(|s| !s.endpoints.is_empty());
    for s in active() {
        writeln!(out, ":KUBE-SVC-{} - [0:0]", s.chain)?;
        for (sep, _) in &s.endpoints {
            writeln!(out, ":KUBE-SEP-{sep} - [0:0]")?;
        }
    }
    let c = |rng: &mut SplitMix| rng.counters();
    writeln!(
        out,
        "{} -A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
        c(rng)
    )?;
    writeln!(
        out,
        "{} -A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
        c(rng)
    )?;
    writeln!(
        out,
        "{} -A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING",
        c(rng)
    )?;
    writeln!(
        out,
        "{} -A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
        c(rng)
    )?;
    writeln!(
        out,
        "{} -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
        c(rng)
    )?;
    writeln!(
        out,
        "{} -A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0",
        c(rng)
    )?;
    writeln!(
        out,
        "{} -A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully",
        c(rng)
    )?;
    for s in active() {
        let (_, proto, port, _) = s.port;
        writeln!(
            out,
            "{} -A KUBE-SERVICES -d {}/32 -p {proto} -m comment --comment \"{} cluster IP\" -m {proto} --dport {port} -j KUBE-SVC-{}",
            c(rng),
            s.cluster_ip,
            s.comment(),
            s.chain
        )?;
    }
    writeln!(
        out,
        "{} -A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS",
        c(rng)
    )?;
    for s in active() {
        let (_, proto, port, _) = s.port;
        let comment = s.comment();
        writeln!(
            out,
            "{} -A KUBE-SVC-{} ! -s 10.244.0.0/16 -d {}/32 -p {proto} -m comment --comment \"{comment} cluster IP\" -m {proto} --dport {port} -j KUBE-MARK-MASQ",
            c(rng),
            s.chain,
            s.cluster_ip
        )?;
        let n = s.endpoints.len();
        for (i, (sep, pod)) in s.endpoints.iter().enumerate() {
            let statistic = if i + 1 < n {
                // Stored by the kernel as a fraction of 2^31 and printed back with 11
                // decimals, as iptables-save does.
                let fixed = (2_147_483_648.0 / (n - i) as f64).round();
                format!(
                    " -m statistic --mode random --probability {:.11}",
                    fixed / 2_147_483_648.0
                )
            } else {
                String::new()
            };
            writeln!(
                out,
                "{} -A KUBE-SVC-{} -m comment --comment \"{comment} -> {pod}\"{statistic} -j KUBE-SEP-{sep}",
                c(rng),
                s.chain
            )?;
        }
    }
    for s in active() {
        let (_, proto, _, _) = s.port;
        let comment = s.comment();
        for (sep, pod) in &s.endpoints {
            let ip = pod.split(':').next().unwrap_or(pod);
            writeln!(
                out,
                "{} -A KUBE-SEP-{sep} -s {ip}/32 -m comment --comment \"{comment}\" -j KUBE-MARK-MASQ",
                c(rng)
            )?;
            writeln!(
                out,
                "{} -A KUBE-SEP-{sep} -p {proto} -m comment --comment \"{comment}\" -m {proto} -j DNAT --to-destination {pod}",
                c(rng)
            )?;
        }
    }
    writeln!(out, "COMMIT")
}

fn write_filter(out: &mut String, rng: &mut SplitMix, services: &[Service]) {
    // Writing into a String cannot fail.
    let _ = write_filter_inner(out, rng, services);
}

fn write_filter_inner(
    out: &mut String,
    rng: &mut SplitMix,
    services: &[Service],
) -> std::fmt::Result {
    writeln!(out, "*filter")?;
    for builtin in ["INPUT", "FORWARD", "OUTPUT"] {
        writeln!(out, ":{builtin} ACCEPT {}", rng.counters())?;
    }
    for chain in ["KUBE-FIREWALL", "KUBE-FORWARD", "KUBE-SERVICES"] {
        writeln!(out, ":{chain} - [0:0]")?;
    }
    let c = |rng: &mut SplitMix| rng.counters();
    writeln!(
        out,
        "{} -A INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
        c(rng)
    )?;
    writeln!(out, "{} -A INPUT -j KUBE-FIREWALL", c(rng))?;
    writeln!(
        out,
        "{} -A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD",
        c(rng)
    )?;
    writeln!(
        out,
        "{} -A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
        c(rng)
    )?;
    writeln!(
        out,
        "{} -A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
        c(rng)
    )?;
    writeln!(out, "{} -A OUTPUT -j KUBE-FIREWALL", c(rng))?;
    writeln!(
        out,
        "{} -A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment \"block incoming localnet connections\" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP",
        c(rng)
    )?;
    writeln!(
        out,
        "{} -A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
        c(rng)
    )?;
    writeln!(
        out,
        "{} -A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark --mark 0x4000/0x4000 -j ACCEPT",
        c(rng)
    )?;
    writeln!(
        out,
        "{} -A KUBE-FORWARD -m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        c(rng)
    )?;
    for s in services.iter().filter(|s| s.endpoints.is_empty()) {
        let (_, proto, port, _) = s.port;
        writeln!(
            out,
            "{} -A KUBE-SERVICES -d {}/32 -p {proto} -m comment --comment \"{} has no endpoints\" -m {proto} --dport {port} -j REJECT --reject-with icmp-port-unreachable",
            c(rng),
            s.cluster_ip,
            s.comment()
        )?;
    }
    writeln!(out, "COMMIT")
}
