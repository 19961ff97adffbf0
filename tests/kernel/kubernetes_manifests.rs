//! deploy/kubernetes/ as a cluster would take it: the DaemonSet's arguments accepted by the
//! program, the capabilities exactly those it needs, the allowlist ConfigMaps mounted where
//! the arguments read them, and the ClusterRole granting exactly the requests the client
//! makes (from its own list of operations, so that the two cannot drift apart).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use netfilter_exporter::audit::kube::Operation;
use netfilter_exporter::config::{Config, Mode};
use serde::Deserialize;
use serde_norway::Value;

use crate::common::{EXPORTER, spawn_logged};
use crate::harness::{Netns, require_command, require_kernel};

/// This module's label in the names of its namespaces (see [`Netns::new`]).
const NETNS_LABEL: &str = "k8s";

fn documents(file: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/kubernetes")
        .join(file);
    let text = std::fs::read_to_string(&path).expect("manifest");
    serde_norway::Deserializer::from_str(&text)
        .map(|document| Value::deserialize(document).expect("YAML"))
        .collect()
}

fn of_kind<'a>(documents: &'a [Value], kind: &str) -> Vec<&'a Value> {
    documents
        .iter()
        .filter(|d| d["kind"].as_str() == Some(kind))
        .collect()
}

fn one<'a>(documents: &'a [Value], kind: &str) -> &'a Value {
    match of_kind(documents, kind)[..] {
        [document] => document,
        ref found => panic!("{} documents of kind {kind}", found.len()),
    }
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn str_of<'a>(value: &'a Value, what: &str) -> &'a str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {value:?}"))
}

#[test]
fn the_cluster_role_grants_exactly_the_clients_requests() {
    let rbac = documents("rbac.yaml");
    let role = one(&rbac, "ClusterRole");
    let mut granted = BTreeSet::new();
    for rule in role["rules"].as_sequence().expect("rules") {
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                for verb in strings(&rule["verbs"]) {
                    granted.insert((group.clone(), resource.clone(), verb));
                }
            }
        }
        assert!(rule["resourceNames"].is_null(), "node names differ per pod");
    }
    let used: BTreeSet<(String, String, String)> = Operation::ALL
        .iter()
        .map(|o| o.permission())
        .map(|p| {
            (
                p.api_group.to_owned(),
                p.resource.to_owned(),
                p.verb.to_owned(),
            )
        })
        .collect();
    assert_eq!(granted, used);

    let account = one(&rbac, "ServiceAccount");
    let binding = one(&rbac, "ClusterRoleBinding");
    assert_eq!(binding["roleRef"]["kind"].as_str(), Some("ClusterRole"));
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    let subjects = binding["subjects"].as_sequence().expect("subjects");
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects[0]["kind"].as_str(), Some("ServiceAccount"));
    assert_eq!(subjects[0]["name"], account["metadata"]["name"]);
    assert_eq!(subjects[0]["namespace"], account["metadata"]["namespace"]);

    let daemonset = documents("daemonset.yaml");
    let pod = &one(&daemonset, "DaemonSet")["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], account["metadata"]["name"]);
}

/// The container's arguments, validated by the program itself, with the node name and
/// API server a pod gets from Kubernetes.
fn validated(args: &[String]) -> Config {
    let command = netfilter_exporter::cli::parse(
        std::iter::once("netfilter_exporter".to_owned())
            .chain(args.iter().cloned())
            .chain([
                "--kubernetes.node-name=node-1".to_owned(),
                "--kubernetes.api-server=https://10.0.0.1:443".to_owned(),
            ])
            .map(Into::into)
            .collect(),
    )
    .unwrap_or_else(|e| panic!("the DaemonSet's arguments do not parse: {e}"));
    Config::from_args(&command).unwrap_or_else(|e| panic!("the DaemonSet's arguments: {e}"))
}

#[test]
fn the_daemonset_runs_the_exporter_and_the_audit_on_the_host_network() {
    let daemonset = documents("daemonset.yaml");
    let pod = &one(&daemonset, "DaemonSet")["spec"]["template"]["spec"];
    assert_eq!(pod["hostNetwork"].as_bool(), Some(true));
    let containers = pod["containers"].as_sequence().expect("containers");
    assert_eq!(containers.len(), 1, "one process reads netfilter");
    let container = &containers[0];

    let capabilities = &container["securityContext"]["capabilities"];
    assert_eq!(strings(&capabilities["drop"]), ["ALL"]);
    let added: BTreeSet<String> = strings(&capabilities["add"]).into_iter().collect();
    let needed: BTreeSet<String> = ["NET_ADMIN", "NET_RAW", "BPF", "SETUID", "SETGID", "SETPCAP"]
        .map(str::to_owned)
        .into();
    assert_eq!(added, needed);
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"].as_bool(),
        Some(false)
    );
    assert!(container["securityContext"]["privileged"].is_null());

    let args = strings(&container["args"]);
    let config = validated(&args);
    let Mode::Serve(serve) = config.mode else {
        panic!("not serve: {:?}", config.mode)
    };
    let audit = serve.audit.expect("the audit runs inside serve");
    assert!(audit.events && audit.kubernetes.is_some());
    let port = serve.listen[0].port();
    let ports = container["ports"].as_sequence().expect("ports");
    assert_eq!(ports[0]["containerPort"].as_u64(), Some(u64::from(port)));

    // NODE_NAME from the pod's node.
    let env = container["env"].as_sequence().expect("env");
    let node_name = env
        .iter()
        .find(|e| e["name"].as_str() == Some("NODE_NAME"))
        .expect("NODE_NAME");
    assert_eq!(
        node_name["valueFrom"]["fieldRef"]["fieldPath"].as_str(),
        Some("spec.nodeName")
    );

    // Every directory the audit reads is a mounted volume: the allowlists from their
    // ConfigMaps, the BPF map's directory from the host.
    let mounts = container["volumeMounts"].as_sequence().expect("mounts");
    let volumes = pod["volumes"].as_sequence().expect("volumes");
    let volume_at = |dir: &Path| -> &Value {
        let mount = mounts
            .iter()
            .find(|m| Path::new(str_of(&m["mountPath"], "mountPath")) == dir)
            .unwrap_or_else(|| panic!("nothing mounted at {}", dir.display()));
        assert_eq!(mount["readOnly"].as_bool(), Some(true), "{mount:?}");
        volumes
            .iter()
            .find(|v| v["name"] == mount["name"])
            .unwrap_or_else(|| panic!("no volume {:?}", mount["name"]))
    };
    let allowlists = documents("allowlists.yaml");
    let maps = of_kind(&allowlists, "ConfigMap");
    assert_eq!(audit.families.len(), 2, "IPv4 and IPv6");
    for family in &audit.families {
        let volume = volume_at(&family.allowlist);
        let name = str_of(&volume["configMap"]["name"], "configMap name");
        let map = maps
            .iter()
            .find(|m| m["metadata"]["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("no ConfigMap {name}"));
        assert_eq!(map["metadata"]["namespace"], pod_namespace(&daemonset));
        let files: BTreeSet<String> = map["data"]
            .as_mapping()
            .expect("data")
            .keys()
            .filter_map(|k| k.as_str().map(str::to_owned))
            .collect();
        let expected: BTreeSet<String> = ["global", "filter", "nat", "mangle", "raw", "security"]
            .map(str::to_owned)
            .into();
        assert_eq!(files, expected, "ConfigMap {name}");
    }
    let map_path: PathBuf = audit.map_path.expect("--audit.check-map");
    let volume = volume_at(map_path.parent().expect("map directory"));
    assert!(volume["hostPath"]["path"].as_str().is_some(), "{volume:?}");
}

/// The capabilities the DaemonSet's container adds, as `setpriv` names them.
fn container_capabilities() -> Vec<String> {
    let daemonset = documents("daemonset.yaml");
    let pod = &one(&daemonset, "DaemonSet")["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    strings(&container["securityContext"]["capabilities"]["add"])
        .iter()
        .map(|c| c.to_lowercase())
        .collect()
}

#[test]
fn the_containers_capabilities_are_enough_to_collect_and_to_split() {
    if !require_kernel() || !require_command("setpriv") {
        return;
    }
    let ns = Netns::new(NETNS_LABEL);
    ns.run(
        "iptables",
        &[
            "-A",
            "INPUT",
            "-m",
            "comment",
            "--comment",
            "k8s",
            "-j",
            "ACCEPT",
        ],
    );
    // Root with the container's bounding set and nothing else, as the runtime starts it.
    let bounding: Vec<String> = container_capabilities()
        .iter()
        .map(|c| format!("+{c}"))
        .collect();
    let mut command = ns.command("setpriv");
    command
        .arg(format!("--bounding-set=-all,{}", bounding.join(",")))
        .args(["--inh-caps=-all", "--", EXPORTER])
        .args(["-t", "iptables", "--web.listen-address", "127.0.0.1:9455"]);
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut process = spawn_logged(command, &dir.path().join("log"));
    ns.wait_for_http(
        "http://127.0.0.1:9455/metrics",
        std::time::Duration::from_secs(30),
    );
    // The server answers before the first collection is published: wait for it.
    let series = "iptables_comment_packets_total{table=\"filter\",chain=\"INPUT\",comment=\"k8s\"}";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let text = ns.curl(&["-s", "http://127.0.0.1:9455/metrics"]);
        if text.contains(series) {
            break;
        }
        process.assert_running();
        assert!(
            std::time::Instant::now() < deadline,
            "{text}\n{}",
            process.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    process.assert_running();
    process.terminate(std::time::Duration::from_secs(10));
}

fn pod_namespace(daemonset: &[Value]) -> Value {
    one(daemonset, "DaemonSet")["metadata"]["namespace"].clone()
}

#[test]
fn the_allowlists_are_valid_patterns() {
    let allowlists = documents("allowlists.yaml");
    for map in of_kind(&allowlists, "ConfigMap") {
        let dir = tempfile::tempdir().expect("tempdir");
        for (file, text) in map["data"].as_mapping().expect("data") {
            let (file, text) = (str_of(file, "file"), str_of(text, "text"));
            std::fs::write(dir.path().join(file), text).expect("write");
        }
        let list = netfilter_exporter::audit::Allowlist::load(dir.path());
        assert!(list.is_ok(), "{:?}: {list:?}", map["metadata"]["name"]);
        let list = list.expect("loaded");
        for (table, line) in [
            (
                "nat",
                "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports\" -j KUBE-NODEPORTS",
            ),
            ("filter", "-P INPUT ACCEPT"),
            ("filter", "-N CILIUM_INPUT"),
        ] {
            assert!(list.allows(table, line), "{table} {line}");
        }
        assert!(!list.allows("filter", "-A INPUT -p tcp -m tcp --dport 22 -j DROP"));
    }
}
