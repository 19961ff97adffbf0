//! Generates kube-proxy-style `iptables-save --counters` dumps of a chosen size, so that the
//! benchmarks and the memory/latency script measure the shape of input the exporter meets on
//! a Kubernetes node (the DESIGN's scale target) rather than a toy. Deterministic: the same
//! size always gives the same bytes, with no dependency on a random-number crate.
//!
//! The shape is kube-proxy's in iptables mode, as a node with a few thousand services shows
//! it: per service port a KUBE-SVC-… chain and one KUBE-SEP-… chain per endpoint, a
//! KUBE-EXT-… chain for NodePort and LoadBalancer services, a KUBE-SVL-… chain for those
//! with `externalTrafficPolicy: Local`, session affinity for a few, REJECTs in filter for
//! the ports without endpoints. That is about one chain per three rules, as on real nodes.
//! The text is laid out as iptables-nft-save prints it: tables in mangle, filter, nat order,
//! built-in chains first, user chains sorted by name, rules grouped by chain.
//!
//! The dump is loadable with `iptables-restore --counters` inside a network namespace: every
//! target it jumps to is declared, and it uses only modules kube-proxy itself uses (comment,
//! tcp/udp, statistic, recent, mark, conntrack, addrtype, DNAT, MASQUERADE, MARK, REJECT).

use std::collections::BTreeMap;
use std::fmt::{Display, Write};

#[allow(dead_code)]
mod nft;
#[allow(unused_imports)]
pub(crate) use nft::nftables_ruleset;

/// Rules written whatever the requested size: the fixed plumbing kube-proxy installs.
pub(crate) const BASE_RULES: usize = FILTER_PLUMBING.len() + NAT_PLUMBING.len() + 1;

/// Service namespaces, cycled through.
const NAMESPACES: [&str; 10] = [
    "default",
    "kube-system",
    "monitoring",
    "ingress-nginx",
    "payments",
    "checkout",
    "search",
    "identity",
    "team-a",
    "data-platform",
];

/// The first halves of service names, picked at random.
const NAME_HEADS: [&str; 12] = [
    "user", "order", "payment", "cart", "catalog", "auth", "session", "shipping", "pricing",
    "ledger", "media", "gateway",
];
/// Their second halves.
const NAME_TAILS: [&str; 8] = [
    "api", "backend", "frontend", "worker", "grpc", "cache", "db", "proxy",
];

/// Service ports: (name, protocol, service port, container port).
const PORTS: [(&str, &str, u16, u16); 8] = [
    ("http", "tcp", 80, 8080),
    ("https", "tcp", 443, 8443),
    ("grpc", "tcp", 9090, 9090),
    ("metrics", "tcp", 9100, 9100),
    ("postgres", "tcp", 5432, 5432),
    ("redis", "tcp", 6379, 6379),
    ("dns", "udp", 53, 53),
    ("syslog", "udp", 514, 5514),
];

/// Endpoints per service and how many services in a thousand have that many: most have one
/// to three, a few have dozens. The many endpoints are what make as many chains as rules
/// over three.
const ENDPOINTS: [(usize, u64); 13] = [
    (0, 30),
    (1, 220),
    (2, 260),
    (3, 180),
    (4, 70),
    (5, 50),
    (6, 50),
    (8, 40),
    (10, 40),
    (15, 30),
    (25, 20),
    (40, 7),
    (80, 3),
];

/// The pod network: where endpoints live, and what is not masqueraded.
const CLUSTER_CIDR: &str = "10.244.0.0/16";

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

    /// True with probability `per_mille` / 1000.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    /// A 16-character chain-name suffix in kube-proxy's alphabet (base32 of a hash). Distinct
    /// draws give distinct names: the first 13 characters hold all 64 bits of the draw.
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

/// One table as iptables-save prints it: the built-in chains in hook order, then the user
/// chains sorted by name, each chain's rules together.
struct Table {
    name: &'static str,
    builtins: Vec<Builtin>,
    /// User chains and their rules' lines.
    chains: BTreeMap<String, String>,
}

/// A built-in chain: its policy, the policy's counters, its rules' lines.
struct Builtin {
    name: &'static str,
    policy: &'static str,
    counters: String,
    rules: String,
}

impl Table {
    /// A table with these built-in chains (name, policy) and kube-proxy's two canaries.
    fn new(
        rng: &mut SplitMix,
        name: &'static str,
        builtins: &[(&'static str, &'static str)],
    ) -> Self {
        let builtins = builtins
            .iter()
            .map(|&(name, policy)| Builtin {
                name,
                policy,
                counters: rng.counters(),
                rules: String::new(),
            })
            .collect();
        let mut table = Table {
            name,
            builtins,
            chains: BTreeMap::new(),
        };
        // kube-proxy and the kubelet create these, empty, to notice that something flushed
        // the tables.
        for chain in ["KUBE-KUBELET-CANARY", "KUBE-PROXY-CANARY"] {
            table.declare(chain);
        }
        table
    }

    /// Declares a user chain, which may stay empty.
    fn declare(&mut self, chain: &str) {
        if !self.chains.contains_key(chain) {
            self.chains.insert(chain.to_owned(), String::new());
        }
    }

    /// Appends a rule to `chain`, with counters of its own; a user chain is declared by its
    /// first rule.
    fn add(&mut self, rng: &mut SplitMix, chain: &str, rule: impl Display) {
        let rules = match self.builtins.iter_mut().find(|b| b.name == chain) {
            Some(builtin) => &mut builtin.rules,
            None => self.chains.entry(chain.to_owned()).or_default(),
        };
        // Writing into a String cannot fail.
        let _ = writeln!(rules, "{} -A {chain} {rule}", rng.counters());
    }

    fn write(&self, out: &mut String) {
        const STAMP: &str = "Tue Mar 11 14:02:33 2025";
        // Writing into a String cannot fail.
        let _ = writeln!(
            out,
            "# Generated by iptables-save v1.8.9 (nf_tables) on {STAMP}"
        );
        let _ = writeln!(out, "*{}", self.name);
        for b in &self.builtins {
            let _ = writeln!(out, ":{} {} {}", b.name, b.policy, b.counters);
        }
        for chain in self.chains.keys() {
            let _ = writeln!(out, ":{chain} - [0:0]");
        }
        for b in &self.builtins {
            out.push_str(&b.rules);
        }
        for rules in self.chains.values() {
            out.push_str(rules);
        }
        let _ = writeln!(out, "COMMIT\n# Completed on {STAMP}");
    }
}

/// What kind of service, which decides the chains and rules its ports get.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Reachable on its cluster IP only.
    ClusterIp,
    /// Also on a port of every node, through a KUBE-EXT-… chain.
    NodePort,
    /// A node port, and a load balancer's IP that KUBE-SERVICES sends to KUBE-EXT-….
    LoadBalancer,
}

/// One service, drawn before it is written so that its rules can be counted first.
struct Service {
    kind: Kind,
    /// `externalTrafficPolicy: Local`: external traffic goes to this node's endpoints only,
    /// through a KUBE-SVL-… chain, and a health check port tells load balancers which nodes have endpoints.
    local: bool,
    /// `sessionAffinity: ClientIP`: one `recent` rule more per endpoint.
    affinity: bool,
    ports: Vec<(&'static str, &'static str, u16, u16)>,
    endpoints: usize,
}

impl Service {
    fn draw(rng: &mut SplitMix) -> Self {
        let kind = match rng.below(100) {
            0..80 => Kind::ClusterIp,
            80..95 => Kind::NodePort,
            _ => Kind::LoadBalancer,
        };
        let local = kind != Kind::ClusterIp && rng.chance(300);
        let affinity = rng.chance(30);
        let port_count = match rng.below(100) {
            0..70 => 1,
            70..95 => 2,
            _ => 3,
        };
        let first = rng.below(PORTS.len() as u64) as usize;
        let ports = (0..port_count)
            .map(|i| PORTS[(first + i) % PORTS.len()])
            .collect();
        let mut draw = rng.below(1000);
        let mut endpoints = 1;
        for (n, weight) in ENDPOINTS {
            if draw < weight {
                endpoints = n;
                break;
            }
            draw -= weight;
        }
        Service {
            kind,
            local,
            affinity,
            ports,
            endpoints,
        }
    }

    /// The simplest service with at most `budget` rules (at least 1) and at most as many
    /// endpoints as this one: one port, cluster IP only.
    fn shrunk(&self, budget: usize) -> Self {
        // Each endpoint costs three rules: a jump and its chain's two.
        let endpoints = if budget >= 5 {
            self.endpoints.min((budget - 2) / 3)
        } else {
            0
        };
        Service {
            kind: Kind::ClusterIp,
            local: false,
            affinity: false,
            ports: self.ports[..1].to_vec(),
            endpoints,
        }
    }

    fn external(&self) -> bool {
        self.kind != Kind::ClusterIp
    }

    /// Endpoints on this node, which a KUBE-SVL-… chain jumps to.
    fn local_endpoints(&self) -> usize {
        (self.endpoints / 4).max(1)
    }

    /// The rules [`write_service`] writes for this service.
    fn rules(&self) -> usize {
        let health_check = usize::from(self.local);
        let per_port = if self.endpoints == 0 {
            // A REJECT for the cluster IP, and one for the node port.
            1 + usize::from(self.external())
        } else {
            let e = self.endpoints;
            // KUBE-SERVICES' jump, the masquerade mark, a jump per endpoint (two with
            // affinity) and each endpoint chain's two rules.
            let mut rules = 2 + e * if self.affinity { 4 } else { 3 };
            if self.external() {
                // KUBE-NODEPORTS' jump and the KUBE-EXT-… chain.
                rules += 1 + if self.local { 4 } else { 2 };
            }
            if self.kind == Kind::LoadBalancer {
                rules += 1;
            }
            if self.local {
                rules += self.local_endpoints();
            }
            rules
        };
        health_check + per_port * self.ports.len()
    }
}

/// Running numbers, from which the cluster IPs and service names are made, so that none
/// repeats, and the node ports, which go round kube-proxy's range (30000-32767).
#[derive(Default)]
struct Numbering {
    services: usize,
    node_ports: usize,
}

/// A kube-proxy-style dump (`*mangle`, `*filter`, `*nat`) with exactly `rules` rules (or
/// [`BASE_RULES`] when fewer are asked for), about 130 bytes per line.
pub(crate) fn kube_proxy_dump(rules: usize) -> String {
    let mut rng = SplitMix(0x6E66_655F_6265_6E63 ^ rules as u64);
    let mut mangle = Table::new(
        &mut rng,
        "mangle",
        &[
            ("PREROUTING", "ACCEPT"),
            ("INPUT", "ACCEPT"),
            ("FORWARD", "ACCEPT"),
            ("OUTPUT", "ACCEPT"),
            ("POSTROUTING", "ACCEPT"),
        ],
    );
    mangle.declare("KUBE-IPTABLES-HINT");
    let mut filter = Table::new(
        &mut rng,
        "filter",
        &[
            ("INPUT", "ACCEPT"),
            ("FORWARD", "ACCEPT"),
            ("OUTPUT", "ACCEPT"),
        ],
    );
    let mut nat = Table::new(
        &mut rng,
        "nat",
        &[
            ("PREROUTING", "ACCEPT"),
            ("INPUT", "ACCEPT"),
            ("OUTPUT", "ACCEPT"),
            ("POSTROUTING", "ACCEPT"),
        ],
    );
    // Chains that may stay empty.
    for chain in [
        "KUBE-EXTERNAL-SERVICES",
        "KUBE-NODEPORTS",
        "KUBE-PROXY-FIREWALL",
        "KUBE-SERVICES",
    ] {
        filter.declare(chain);
    }
    nat.declare("KUBE-NODEPORTS");
    for (chain, rule) in FILTER_PLUMBING {
        filter.add(&mut rng, chain, rule);
    }
    for (chain, rule) in NAT_PLUMBING {
        nat.add(&mut rng, chain, rule);
    }
    let mut budget = rules.saturating_sub(BASE_RULES);
    let mut numbering = Numbering::default();
    while budget > 0 {
        let mut service = Service::draw(&mut rng);
        if service.rules() > budget {
            service = service.shrunk(budget);
        }
        budget -= service.rules();
        write_service(&mut rng, &mut filter, &mut nat, &mut numbering, &service);
    }
    nat.add(&mut rng, "KUBE-SERVICES", NAT_SERVICES_LAST);
    let mut out = String::with_capacity(rules * 140 + 4096);
    mangle.write(&mut out);
    filter.write(&mut out);
    nat.write(&mut out);
    out
}

/// The rules kube-proxy installs in filter whatever the services: jumps from the built-in
/// chains to its own, and what those do for every service.
const FILTER_PLUMBING: [(&str, &str); 15] = [
    (
        "INPUT",
        "-m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL",
    ),
    (
        "INPUT",
        "-m comment --comment \"kubernetes health check service ports\" -j KUBE-NODEPORTS",
    ),
    (
        "INPUT",
        "-m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES",
    ),
    ("INPUT", "-j KUBE-FIREWALL"),
    (
        "FORWARD",
        "-m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL",
    ),
    (
        "FORWARD",
        "-m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD",
    ),
    (
        "FORWARD",
        "-m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
    ),
    (
        "FORWARD",
        "-m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES",
    ),
    (
        "OUTPUT",
        "-m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL",
    ),
    (
        "OUTPUT",
        "-m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
    ),
    ("OUTPUT", "-j KUBE-FIREWALL"),
    (
        "KUBE-FIREWALL",
        "! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment \"block incoming localnet connections\" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP",
    ),
    ("KUBE-FORWARD", "-m conntrack --ctstate INVALID -j DROP"),
    (
        "KUBE-FORWARD",
        "-m comment --comment \"kubernetes forwarding rules\" -m mark --mark 0x4000/0x4000 -j ACCEPT",
    ),
    (
        "KUBE-FORWARD",
        "-m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    ),
];

/// The same in nat, but for the last rule of KUBE-SERVICES, written after the services.
const NAT_PLUMBING: [(&str, &str); 7] = [
    (
        "PREROUTING",
        "-m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
    ),
    (
        "OUTPUT",
        "-m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
    ),
    (
        "POSTROUTING",
        "-m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING",
    ),
    ("KUBE-MARK-MASQ", "-j MARK --set-xmark 0x4000/0x4000"),
    (
        "KUBE-POSTROUTING",
        "-m mark ! --mark 0x4000/0x4000 -j RETURN",
    ),
    ("KUBE-POSTROUTING", "-j MARK --set-xmark 0x4000/0x0"),
    (
        "KUBE-POSTROUTING",
        "-m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully",
    ),
];

/// KUBE-SERVICES' last rule: it matches any local address, so it must come after the
/// services' cluster IPs.
const NAT_SERVICES_LAST: &str = "-m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS";

/// `-m statistic` for the `i`-th of `n` jumps sharing traffic evenly (none for the last),
/// with the probability stored by the kernel as a fraction of 2^31 and printed back with
/// 11 decimals, as iptables-save does.
fn statistic(i: usize, n: usize) -> String {
    if i + 1 == n {
        return String::new();
    }
    let fixed = (2_147_483_648.0 / (n - i) as f64).round();
    format!(
        " -m statistic --mode random --probability {:.11}",
        fixed / 2_147_483_648.0
    )
}

/// Writes `service`'s [`Service::rules`] rules, in new chains of its own.
fn write_service(
    rng: &mut SplitMix,
    filter: &mut Table,
    nat: &mut Table,
    numbering: &mut Numbering,
    service: &Service,
) {
    let index = numbering.services;
    numbering.services += 1;
    let namespace = NAMESPACES[index % NAMESPACES.len()];
    let name = format!(
        "{}-{}-{index:x}",
        rng.pick(&NAME_HEADS),
        rng.pick(&NAME_TAILS)
    );
    let cluster_ip = format!(
        "10.{}.{}.{}",
        96 + ((index >> 16) & 15),
        (index >> 8) & 255,
        index & 255
    );
    let pods: Vec<String> = (0..service.endpoints)
        .map(|_| format!("10.244.{}.{}", rng.below(256), 1 + rng.below(254)))
        .collect();
    if service.local {
        filter.add(
            rng,
            "KUBE-NODEPORTS",
            format_args!(
                "-p tcp -m comment --comment \"{namespace}/{name} health check node port\" -m tcp --dport {} -j ACCEPT",
                32_000 + index % 700
            ),
        );
    }
    for &(port_name, proto, port, target_port) in &service.ports {
        let spn = format!("{namespace}/{name}:{port_name}");
        let node_port = service.external().then(|| {
            numbering.node_ports += 1;
            30_000 + numbering.node_ports % 2_768
        });
        if pods.is_empty() {
            filter.add(
                rng,
                "KUBE-SERVICES",
                format_args!(
                    "-d {cluster_ip}/32 -p {proto} -m comment --comment \"{spn} has no endpoints\" -m {proto} --dport {port} -j REJECT --reject-with icmp-port-unreachable"
                ),
            );
            if let Some(node_port) = node_port {
                filter.add(
                    rng,
                    "KUBE-EXTERNAL-SERVICES",
                    format_args!(
                        "-p {proto} -m comment --comment \"{spn} has no endpoints\" -m addrtype --dst-type LOCAL -m {proto} --dport {node_port} -j REJECT --reject-with icmp-port-unreachable"
                    ),
                );
            }
            continue;
        }
        let svc = format!("KUBE-SVC-{}", rng.chain_hash());
        let seps: Vec<(String, String)> = pods
            .iter()
            .map(|pod| {
                (
                    format!("KUBE-SEP-{}", rng.chain_hash()),
                    format!("{pod}:{target_port}"),
                )
            })
            .collect();
        nat.add(
            rng,
            "KUBE-SERVICES",
            format_args!(
                "-d {cluster_ip}/32 -p {proto} -m comment --comment \"{spn} cluster IP\" -m {proto} --dport {port} -j {svc}"
            ),
        );
        nat.add(
            rng,
            &svc,
            format_args!(
                "! -s {CLUSTER_CIDR} -d {cluster_ip}/32 -p {proto} -m comment --comment \"{spn} cluster IP\" -m {proto} --dport {port} -j KUBE-MARK-MASQ"
            ),
        );
        if service.affinity {
            for (sep, endpoint) in &seps {
                nat.add(
                    rng,
                    &svc,
                    format_args!(
                        "-m comment --comment \"{spn} -> {endpoint}\" -m recent --rcheck --seconds 10800 --reap --name {sep} --mask 255.255.255.255 --rsource -j {sep}"
                    ),
                );
            }
        }
        for (i, (sep, endpoint)) in seps.iter().enumerate() {
            let statistic = statistic(i, seps.len());
            nat.add(
                rng,
                &svc,
                format_args!("-m comment --comment \"{spn} -> {endpoint}\"{statistic} -j {sep}"),
            );
        }
        for ((sep, endpoint), pod) in seps.iter().zip(&pods) {
            nat.add(
                rng,
                sep,
                format_args!("-s {pod}/32 -m comment --comment \"{spn}\" -j KUBE-MARK-MASQ"),
            );
            let recent = if service.affinity {
                format!(" -m recent --set --name {sep} --mask 255.255.255.255 --rsource")
            } else {
                String::new()
            };
            nat.add(
                rng,
                sep,
                format_args!(
                    "-p {proto} -m comment --comment \"{spn}\"{recent} -m {proto} -j DNAT --to-destination {endpoint}"
                ),
            );
        }
        let Some(node_port) = node_port else {
            continue;
        };
        let ext = format!("KUBE-EXT-{}", rng.chain_hash());
        nat.add(
            rng,
            "KUBE-NODEPORTS",
            format_args!(
                "-p {proto} -m comment --comment \"{spn}\" -m {proto} --dport {node_port} -j {ext}"
            ),
        );
        if service.kind == Kind::LoadBalancer {
            nat.add(
                rng,
                "KUBE-SERVICES",
                format_args!(
                    "-d 203.0.{}.{}/32 -p {proto} -m comment --comment \"{spn} loadbalancer IP\" -m {proto} --dport {port} -j {ext}",
                    113 + (index / 254) % 7,
                    1 + index % 254
                ),
            );
        }
        if !service.local {
            nat.add(
                rng,
                &ext,
                format_args!(
                    "-m comment --comment \"masquerade traffic for {spn} external destinations\" -j KUBE-MARK-MASQ"
                ),
            );
            nat.add(rng, &ext, format_args!("-j {svc}"));
            continue;
        }
        let svl = format!("KUBE-SVL-{}", rng.chain_hash());
        nat.add(
            rng,
            &ext,
            format_args!(
                "-s {CLUSTER_CIDR} -m comment --comment \"pod traffic for {spn} external destinations\" -j {svc}"
            ),
        );
        nat.add(
            rng,
            &ext,
            format_args!(
                "-m comment --comment \"masquerade LOCAL traffic for {spn} external destinations\" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ"
            ),
        );
        nat.add(
            rng,
            &ext,
            format_args!(
                "-m comment --comment \"route LOCAL traffic for {spn} external destinations\" -m addrtype --src-type LOCAL -j {svc}"
            ),
        );
        nat.add(rng, &ext, format_args!("-j {svl}"));
        let local = &seps[..service.local_endpoints()];
        for (i, (sep, endpoint)) in local.iter().enumerate() {
            let statistic = statistic(i, local.len());
            nat.add(
                rng,
                &svl,
                format_args!("-m comment --comment \"{spn} -> {endpoint}\"{statistic} -j {sep}"),
            );
        }
    }
}
