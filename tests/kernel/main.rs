//! The integration tests of every area with a test that needs root: real netfilter, ipset
//! and nftables in throwaway network namespaces, privilege separation, the deployed units
//! and manifests, Prometheus and Munin driving the binary. Without root those tests skip,
//! or fail under `CI=true`; the others run anyway. One module per area; `cargo test --test
//! kernel AREA::` runs one.

#[path = "../common/mod.rs"]
mod common;
mod harness;

/// The benchmarks' kube-proxy-style ruleset generator.
#[path = "../../benches/generate/mod.rs"]
mod generator;

mod accounting_netns;
mod audit_netns;
mod deploy;
mod fleet;
mod generate;
mod ipset_netns;
mod iptables_decode;
mod iptables_decode_matches;
mod iptables_decode_props;
mod iptables_decode_targets;
mod iptables_nft_netns;
mod kubernetes_client;
mod kubernetes_manifests;
mod munin;
mod netns;
mod nftables_netns;
mod privsep;
mod prometheus;
mod top;
mod web_config;
