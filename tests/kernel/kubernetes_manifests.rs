//! deploy/kubernetes/ as a cluster would take it: the DaemonSet's arguments accepted by the
//! program, the capabilities exactly those it needs, the allowlist ConfigMaps mounted where
//! the arguments read them, and the ClusterRole granting exactly the requests the client
//! makes (from its own list of operations, so that the two cannot drift apart). The folder
//! holds only kinds every cluster has, which pass kubernetes-validate's schemas; the
//! PodMonitor beside it scrapes the DaemonSet's pods, and its sample limit is above what the
//! DaemonSet's arguments make the exporter write on a kube-proxy node.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use netfilter_exporter::audit::kube::Operation;
use netfilter_exporter::config::{Config, Mode};
use netfilter_exporter::ruleset::Family;
use netfilter_exporter::source::iptables_save;
use serde::Deserialize;
use serde_norway::Value;

use crate::common::{EXPORTER, Exposition, spawn_logged};
use crate::generator::kube_proxy_dump;
use crate::harness::{Netns, cannot_run, require_command, require_kernel, which};

/// This module's label in the names of its namespaces (see [`Netns::new`]).
const NETNS_LABEL: &str = "k8s";

/// The folder `kubectl apply -f deploy/kubernetes/` applies.
fn manifests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes")
}

/// The PodMonitor, in a folder of its own below [`manifests_dir`].
const POD_MONITOR: &str = "prometheus-operator/podmonitor.yaml";

/// The files `kubectl apply -f` takes from [`manifests_dir`]: its own (not its
/// subfolders'), by their extensions, as names relative to it.
fn applied_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(manifests_dir())
        .expect("deploy/kubernetes")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file())
        .filter(|path| {
            path.extension()
                .is_some_and(|e| ["yaml", "yml", "json"].iter().any(|known| e == *known))
        })
        .map(|path| {
            let name = path.file_name().expect("a file name");
            name.to_str().expect("a UTF-8 name").to_owned()
        })
        .collect();
    files.sort();
    files
}

fn documents(file: &str) -> Vec<Value> {
    let path = manifests_dir().join(file);
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

/// Writes the files of ConfigMap `map` into `dir`, as a volume of it mounts them.
fn write_config_map(map: &Value, dir: &Path) {
    for (file, text) in map["data"].as_mapping().expect("data") {
        let (file, text) = (str_of(file, "file"), str_of(text, "text"));
        std::fs::write(dir.join(file), text).expect("write");
    }
}

#[test]
fn the_allowlists_are_valid_patterns() {
    let allowlists = documents("allowlists.yaml");
    for map in of_kind(&allowlists, "ConfigMap") {
        let dir = tempfile::tempdir().expect("tempdir");
        write_config_map(map, dir.path());
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

/// The API groups of the kinds a cluster serves without any CustomResourceDefinition.
const BUILT_IN_GROUPS: &[&str] = &[
    "",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "apiregistration.k8s.io",
    "apps",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "networking.k8s.io",
    "node.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "resource.k8s.io",
    "scheduling.k8s.io",
    "storage.k8s.io",
];

/// Whether the kind of `document` is one of Kubernetes' own.
fn is_built_in(document: &Value) -> bool {
    let api_version = str_of(&document["apiVersion"], "apiVersion");
    let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
    BUILT_IN_GROUPS.contains(&group)
}

#[test]
fn the_folder_applies_on_a_cluster_without_crds() {
    // `kubectl apply -f deploy/kubernetes/` fails as a whole on a document whose kind the
    // cluster does not know; it does not descend into prometheus-operator/.
    let files = applied_files();
    assert!(files.len() >= 3, "{files:?}");
    for file in &files {
        for document in documents(file) {
            assert!(
                is_built_in(&document),
                "{file}: {:?} is not a built-in kind",
                document["kind"]
            );
        }
    }
    let monitors = documents(POD_MONITOR);
    assert!(!is_built_in(one(&monitors, "PodMonitor")));
}

/// The DaemonSet's pod template.
fn pod_template(daemonset: &[Value]) -> &Value {
    &one(daemonset, "DaemonSet")["spec"]["template"]
}

#[test]
fn the_pod_monitor_scrapes_the_daemonsets_metrics_port_as_the_alerts_job() {
    let daemonset = documents("daemonset.yaml");
    let template = pod_template(&daemonset);
    let monitors = documents(POD_MONITOR);
    let monitor = one(&monitors, "PodMonitor");

    // Without a namespaceSelector a PodMonitor looks in its own namespace only.
    assert!(monitor["spec"]["namespaceSelector"].is_null());
    assert_eq!(monitor["metadata"]["namespace"], pod_namespace(&daemonset));
    let selector = &monitor["spec"]["selector"];
    assert!(selector["matchExpressions"].is_null(), "{selector:?}");
    let wanted = selector["matchLabels"].as_mapping().expect("matchLabels");
    assert!(!wanted.is_empty(), "an empty selector takes every pod");
    let labels = template["metadata"]["labels"].as_mapping().expect("labels");
    for (key, value) in wanted {
        assert_eq!(labels.get(key), Some(value), "pod label {key:?}");
    }

    // The endpoint is the container's port by name, on the exporter's path.
    let container = &template["spec"]["containers"][0];
    let Mode::Serve(serve) = validated(&strings(&container["args"])).mode else {
        panic!("not serve")
    };
    let endpoints = monitor["spec"]["podMetricsEndpoints"]
        .as_sequence()
        .expect("podMetricsEndpoints");
    let [endpoint] = endpoints.as_slice() else {
        panic!("one endpoint expected: {endpoints:?}")
    };
    let port = container["ports"]
        .as_sequence()
        .expect("ports")
        .iter()
        .find(|port| port["name"] == endpoint["port"])
        .unwrap_or_else(|| panic!("no container port {:?}", endpoint["port"]));
    let number = port["containerPort"].as_u64().expect("containerPort");
    assert_eq!(number, u64::from(serve.listen[0].port()));
    let path = str_of(&endpoint["path"], "path");
    assert_eq!(path, serve.telemetry_path.as_str());

    // The annotations say the same to a Prometheus that discovers pods by them.
    let annotations = &template["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"].as_str(), Some("true"));
    assert_eq!(
        annotations["prometheus.io/port"].as_str(),
        Some(number.to_string().as_str())
    );
    assert_eq!(annotations["prometheus.io/path"].as_str(), Some(path));

    // The job is the one deploy/prometheus's alerts watch.
    let relabelings = endpoint["relabelings"].as_sequence().expect("relabelings");
    let job = relabelings
        .iter()
        .find(|r| r["targetLabel"].as_str() == Some("job"))
        .map(|r| str_of(&r["replacement"], "the job"))
        .expect("a relabeling that names the job");
    let alerts = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/alerts.yml");
    let alerts = std::fs::read_to_string(alerts).expect("read alerts.yml");
    assert!(alerts.contains(&format!("up{{job=\"{job}\"}}")), "{job}");
}

/// Rules of the kube-proxy ruleset the sample-limit test loads: a node whose kube-proxy
/// chains alone pass the DaemonSet's --max-series.
const KUBE_PROXY_RULES: usize = 10_000;

/// `args` with every path under a volume mount of `container` moved to a directory of
/// `root` holding what the volume holds: a ConfigMap's files, or nothing.
fn on_mounted_volumes(pod: &Value, container: &Value, args: &[String], root: &Path) -> Vec<String> {
    let allowlists = documents("allowlists.yaml");
    let maps = of_kind(&allowlists, "ConfigMap");
    let volumes = pod["volumes"].as_sequence().expect("volumes");
    let mounts: Vec<(PathBuf, PathBuf)> = container["volumeMounts"]
        .as_sequence()
        .expect("volumeMounts")
        .iter()
        .map(|mount| {
            let name = str_of(&mount["name"], "mount name");
            let dir = root.join(name);
            std::fs::create_dir(&dir).expect("create a volume's directory");
            let volume = volumes
                .iter()
                .find(|v| v["name"].as_str() == Some(name))
                .unwrap_or_else(|| panic!("no volume {name}"));
            if let Some(map_name) = volume["configMap"]["name"].as_str() {
                let map = maps
                    .iter()
                    .find(|m| m["metadata"]["name"].as_str() == Some(map_name))
                    .unwrap_or_else(|| panic!("no ConfigMap {map_name}"));
                write_config_map(map, &dir);
            }
            (PathBuf::from(str_of(&mount["mountPath"], "mountPath")), dir)
        })
        .collect();
    args.iter()
        .map(|arg| {
            let Some((flag, value)) = arg.split_once('=') else {
                return arg.clone();
            };
            mounts
                .iter()
                .find_map(|(mount, dir)| {
                    let rest = Path::new(value).strip_prefix(mount).ok()?;
                    Some(format!("{flag}={}", dir.join(rest).display()))
                })
                .unwrap_or_else(|| arg.clone())
        })
        .collect()
}

#[test]
fn the_daemonsets_arguments_keep_a_kube_proxy_node_within_the_sample_limit() {
    if !require_kernel() || !require_command("curl") {
        return;
    }
    let daemonset = documents("daemonset.yaml");
    let pod = &pod_template(&daemonset)["spec"];
    let container = &pod["containers"][0];
    let args = strings(&container["args"]);
    let config = validated(&args);
    let max_series = config.collect.metrics.max_series;
    assert!(max_series > 0, "the DaemonSet sets no --max-series");
    let sources = config.collect.selection.sources().len();
    let monitors = documents(POD_MONITOR);
    let sample_limit = one(&monitors, "PodMonitor")["spec"]["sampleLimit"]
        .as_u64()
        .and_then(|limit| usize::try_from(limit).ok())
        .expect("sampleLimit");

    // Every chain kube-proxy makes (all the user-defined chains of the generated ruleset)
    // is left without rule and comment series; every built-in chain keeps them.
    let dump = kube_proxy_dump(KUBE_PROXY_RULES);
    let filters = &config.collect.metrics;
    assert!(filters.rule_series && filters.comment_series);
    for (table, chain) in iptables_save::parse(Family::Ipv4, &dump).chains() {
        assert!(filters.tables.allows(&table.name), "{}", table.name);
        let built_in = chain.base.is_some();
        assert_eq!(
            filters.chains.allows(&chain.name),
            built_in,
            "{}",
            chain.name
        );
    }

    // The pod's own command line, on a node of kube-proxy's rules; the Kubernetes API it
    // tells of unexpected rules cannot be reached here, which the audit only counts.
    let ns = Netns::new(NETNS_LABEL);
    ns.restore("iptables-restore", &dump);
    let dir = tempfile::tempdir().expect("temporary directory");
    let volumes = dir.path().join("volumes");
    std::fs::create_dir(&volumes).expect("create the volumes' directory");
    let mut command = ns.command(EXPORTER);
    command
        .args(on_mounted_volumes(pod, container, &args, &volumes))
        .arg("--kubernetes.api-server=https://127.0.0.1:1")
        .env("NODE_NAME", "node-1");
    let mut exporter = spawn_logged(command, &dir.path().join("log"));
    let port = config_port(&config);
    let url = format!("http://127.0.0.1:{port}/metrics");
    let deadline = Instant::now() + Duration::from_secs(60);
    let metrics = loop {
        exporter.assert_running();
        let metrics = ns.try_curl(&[&url]).map(|body| Exposition::parse(&body));
        let complete = |m: &Exposition| {
            !m.find("netfilter_exporter_series", &[("source", "iptables")])
                .is_empty()
                && !m.find("netfilter_audit_check_success", &[]).is_empty()
        };
        if let Some(metrics) = metrics.filter(complete) {
            break metrics;
        }
        assert!(
            Instant::now() < deadline,
            "no collection and audit within 60 s:\n{}",
            exporter.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let log = exporter.log();
    drop(exporter);

    let value = |name: &str| metrics.value(name, &[("source", "iptables")]);
    assert_eq!(value("netfilter_exporter_collection_success"), 1.0, "{log}");
    assert!(value("netfilter_exporter_series_dropped") > 0.0, "{log}");
    let kept = metrics.sum("netfilter_exporter_series", &[]) as usize;
    assert!(kept <= max_series, "{kept} series kept");
    // Over the limit, the built-in chains' own series stay.
    metrics.value(
        "iptables_chain_packets_total",
        &[("table", "filter"), ("chain", "INPUT")],
    );

    // What no limit drops (health, built-in chains, the audit, the process) is taken for
    // every source the selection may read, on top of each one's --max-series.
    let total = metrics.samples.len();
    let never_dropped = total - kept;
    let needed = sources * (max_series + never_dropped);
    println!(
        "{total} samples, {kept} kept under --max-series={max_series}, {never_dropped} never \
         dropped; {sources} sources need {needed}, sampleLimit {sample_limit}"
    );
    assert!(
        sample_limit >= needed,
        "sampleLimit {sample_limit} < {sources} sources × ({max_series} + {never_dropped})"
    );
}

/// The port the exporter of `config` listens on.
fn config_port(config: &Config) -> u16 {
    let Mode::Serve(serve) = &config.mode else {
        panic!("not serve: {:?}", config.mode)
    };
    serve.listen[0].port()
}

/// kubernetes-validate: `$KUBERNETES_VALIDATE` (scripts/test.sh installs it in a virtual
/// environment of its own and sets it), else the one in `PATH`.
fn kubernetes_validate() -> Option<PathBuf> {
    std::env::var_os("KUBERNETES_VALIDATE")
        .map(PathBuf::from)
        .filter(|path| path.is_file())
        .or_else(|| which("kubernetes-validate"))
}

#[test]
fn the_folders_manifests_pass_kubernetes_validate_strict() {
    let Some(validate) = kubernetes_validate() else {
        cannot_run("kubernetes-validate is not installed (scripts/test.sh installs it)");
        return;
    };
    let run = |path: &Path| {
        let out = Command::new(&validate)
            .arg("--strict")
            .arg(path)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", validate.display()));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    for file in applied_files() {
        let (passed, text) = run(&manifests_dir().join(&file));
        assert!(passed, "{file}:\n{text}");
        // A kind without a schema is only warned about: each document must have passed.
        for document in documents(&file) {
            let kind = str_of(&document["kind"], "kind").to_lowercase();
            let name = str_of(&document["metadata"]["name"], "name");
            assert!(
                text.contains(&format!("passed for resource {kind}/{name} ")),
                "{file}: {kind}/{name}:\n{text}"
            );
        }
    }

    // Strict: a field the schema does not have fails.
    let dir = tempfile::tempdir().expect("temporary directory");
    let misspelt = dir.path().join("daemonset.yaml");
    let text = std::fs::read_to_string(manifests_dir().join("daemonset.yaml")).expect("read");
    let broken = text.replace("hostNetwork:", "hostNetwrk:");
    assert_ne!(broken, text);
    std::fs::write(&misspelt, broken).expect("write");
    let (passed, text) = run(&misspelt);
    assert!(
        !passed && text.contains("'hostNetwrk' was unexpected"),
        "{text}"
    );
}
