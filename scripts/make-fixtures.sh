#!/usr/bin/env bash
# Regenerates tests/fixtures/<case>.rules from real iptables-save output.
#
# For each case the script writes the rules as iptables-restore input
# (tests/fixtures/<case>.input), loads them into a throwaway network namespace with
# iptables-restore --counters (or ip6tables-restore), adds the rules that restore input
# cannot express (a comment holding a newline), sends a few pings over lo when `ping`
# exists, and saves `iptables-save --counters` as tests/fixtures/<case>.rules.
# Afterwards run `UPDATE_GOLDEN=1 cargo test --test offline golden` to refresh the .prom files.
#
# Needs root (ip netns). Never touches the host's firewall: every command runs inside the
# namespace, which is deleted on exit, also on failure.
#
# The rulesets imitate what docker, ufw, kube-proxy, libvirt and firewalld install; they
# were written for these tests, not copied from those projects.
set -euo pipefail

cd "$(dirname "$0")/.."
out=tests/fixtures
mkdir -p "$out"
ns="nfe-fix-$$"

cleanup() { ip netns del "$ns" 2>/dev/null || true; }
trap cleanup EXIT

in_ns() { ip netns exec "$ns" "$@"; }

# run_case CASE FAMILY [EXTRA_COMMAND...]: FAMILY is ipv4, ipv6 or ipv6-legacy. Loads
# tests/fixtures/CASE.input, runs the extra command (if any) inside the namespace, pings,
# saves.
run_case() {
    local case=$1 family=$2
    shift 2
    local cmd=iptables ping_dst=127.0.0.1
    case $family in
        ipv4) ;;
        ipv6) cmd=ip6tables ping_dst=::1 ;;
        ipv6-legacy) cmd=ip6tables-legacy ping_dst=::1 ;;
        *) echo "unknown family $family" >&2; return 1 ;;
    esac
    local save=$cmd-save restore=$cmd-restore
    cleanup
    ip netns add "$ns"
    in_ns ip link set lo up
    in_ns "$restore" --counters < "$out/$case.input"
    if (($#)); then
        in_ns "$@"
    fi
    if command -v ping > /dev/null; then
        in_ns ping -c 3 -i 0.2 -q "$ping_dst" > /dev/null || true
    fi
    in_ns "$save" --counters > "$out/$case.rules"
    echo "wrote $out/$case.rules ($(grep -c -- '-A ' "$out/$case.rules") rules)"
}

cat > "$out/docker.input" <<'EOF'
*nat
:PREROUTING ACCEPT [1204:77056]
:INPUT ACCEPT [310:18600]
:OUTPUT ACCEPT [5521:331260]
:POSTROUTING ACCEPT [5530:331800]
:DOCKER - [0:0]
[880:52800] -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
[12:720] -A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
[97:6130] -A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
[0:0] -A POSTROUTING -s 172.18.0.0/16 ! -o br-3f1c2a9d8e7b -j MASQUERADE
[0:0] -A POSTROUTING -s 172.17.0.2/32 -d 172.17.0.2/32 -p tcp -m tcp --dport 80 -j MASQUERADE
[0:0] -A DOCKER -i docker0 -j RETURN
[0:0] -A DOCKER -i br-3f1c2a9d8e7b -j RETURN
[41:2460] -A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80
COMMIT
*filter
:INPUT ACCEPT [223344:998877665]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [112233:44556677]
:DOCKER - [0:0]
:DOCKER-ISOLATION-STAGE-1 - [0:0]
:DOCKER-ISOLATION-STAGE-2 - [0:0]
:DOCKER-USER - [0:0]
[5012:4410220] -A FORWARD -j DOCKER-USER
[5012:4410220] -A FORWARD -j DOCKER-ISOLATION-STAGE-1
[2671:3800120] -A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
[41:2460] -A FORWARD -o docker0 -j DOCKER
[2300:607640] -A FORWARD -i docker0 ! -o docker0 -j ACCEPT
[0:0] -A FORWARD -i docker0 -o docker0 -j ACCEPT
[0:0] -A FORWARD -o br-3f1c2a9d8e7b -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
[0:0] -A FORWARD -o br-3f1c2a9d8e7b -j DOCKER
[0:0] -A FORWARD -i br-3f1c2a9d8e7b ! -o br-3f1c2a9d8e7b -j ACCEPT
[0:0] -A FORWARD -i br-3f1c2a9d8e7b -o br-3f1c2a9d8e7b -j ACCEPT
[41:2460] -A DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT
[2300:607640] -A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2
[0:0] -A DOCKER-ISOLATION-STAGE-1 -i br-3f1c2a9d8e7b ! -o br-3f1c2a9d8e7b -j DOCKER-ISOLATION-STAGE-2
[5012:4410220] -A DOCKER-ISOLATION-STAGE-1 -j RETURN
[0:0] -A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP
[0:0] -A DOCKER-ISOLATION-STAGE-2 -o br-3f1c2a9d8e7b -j DROP
[2300:607640] -A DOCKER-ISOLATION-STAGE-2 -j RETURN
[5012:4410220] -A DOCKER-USER -j RETURN
COMMIT
EOF
run_case docker ipv4

cat > "$out/ufw.input" <<'EOF'
*filter
:INPUT DROP [1187:68922]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [90210:12345678]
:ufw-after-forward - [0:0]
:ufw-after-input - [0:0]
:ufw-after-logging-forward - [0:0]
:ufw-after-logging-input - [0:0]
:ufw-after-output - [0:0]
:ufw-before-forward - [0:0]
:ufw-before-input - [0:0]
:ufw-before-logging-input - [0:0]
:ufw-before-output - [0:0]
:ufw-logging-allow - [0:0]
:ufw-logging-deny - [0:0]
:ufw-not-local - [0:0]
:ufw-reject-input - [0:0]
:ufw-skip-to-policy-input - [0:0]
:ufw-track-output - [0:0]
:ufw-user-input - [0:0]
:ufw-user-limit - [0:0]
:ufw-user-limit-accept - [0:0]
:ufw-user-output - [0:0]
[95432:101234567] -A INPUT -j ufw-before-logging-input
[95432:101234567] -A INPUT -j ufw-before-input
[1300:80100] -A INPUT -j ufw-after-input
[1187:68922] -A INPUT -j ufw-after-logging-input
[1187:68922] -A INPUT -j ufw-reject-input
[0:0] -A FORWARD -j ufw-before-forward
[0:0] -A FORWARD -j ufw-after-forward
[0:0] -A FORWARD -j ufw-after-logging-forward
[90210:12345678] -A OUTPUT -j ufw-before-output
[0:0] -A ufw-after-input -p udp -m udp --dport 137 -j ufw-skip-to-policy-input
[0:0] -A ufw-after-input -p udp -m udp --dport 138 -j ufw-skip-to-policy-input
[3:180] -A ufw-after-input -p tcp -m tcp --dport 139 -j ufw-skip-to-policy-input
[5:300] -A ufw-after-input -p tcp -m tcp --dport 445 -j ufw-skip-to-policy-input
[0:0] -A ufw-after-input -p udp -m udp --dport 67 -j ufw-skip-to-policy-input
[0:0] -A ufw-after-input -p udp -m udp --dport 68 -j ufw-skip-to-policy-input
[105:20790] -A ufw-after-input -m addrtype --dst-type BROADCAST -j ufw-skip-to-policy-input
[120:7200] -A ufw-after-logging-input -m limit --limit 3/min --limit-burst 10 -j LOG --log-prefix "[UFW BLOCK] "
[80000:99000000] -A ufw-before-input -i lo -j ACCEPT
[14000:2100000] -A ufw-before-input -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
[12:480] -A ufw-before-input -m conntrack --ctstate INVALID -j ufw-logging-deny
[12:480] -A ufw-before-input -m conntrack --ctstate INVALID -j DROP
[0:0] -A ufw-before-input -p icmp -m icmp --icmp-type 3 -j ACCEPT
[0:0] -A ufw-before-input -p icmp -m icmp --icmp-type 11 -j ACCEPT
[0:0] -A ufw-before-input -p icmp -m icmp --icmp-type 12 -j ACCEPT
[7:588] -A ufw-before-input -p icmp -m icmp --icmp-type 8 -j ACCEPT
[0:0] -A ufw-before-input -p udp -m udp --sport 67 --dport 68 -j ACCEPT
[1420:1006677] -A ufw-before-input -j ufw-not-local
[0:0] -A ufw-before-input -d 224.0.0.251/32 -p udp -m udp --dport 5353 -j ACCEPT
[0:0] -A ufw-before-input -d 239.255.255.250/32 -p udp -m udp --dport 1900 -j ACCEPT
[1300:80100] -A ufw-before-input -j ufw-user-input
[0:0] -A ufw-before-output -o lo -j ACCEPT
[60000:9000000] -A ufw-before-output -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
[30210:3345678] -A ufw-before-output -j ufw-user-output
[0:0] -A ufw-logging-deny -m conntrack --ctstate INVALID -m limit --limit 3/min --limit-burst 10 -j RETURN
[12:480] -A ufw-logging-deny -m limit --limit 3/min --limit-burst 10 -j LOG --log-prefix "[UFW BLOCK] "
[1300:80100] -A ufw-not-local -m addrtype --dst-type LOCAL -j RETURN
[0:0] -A ufw-not-local -m addrtype --dst-type MULTICAST -j RETURN
[120:926577] -A ufw-not-local -m addrtype --dst-type BROADCAST -j RETURN
[0:0] -A ufw-not-local -m limit --limit 3/min --limit-burst 10 -j ufw-logging-deny
[0:0] -A ufw-not-local -j DROP
[8:480] -A ufw-skip-to-policy-input -j DROP
[30210:3345678] -A ufw-track-output -p tcp -m conntrack --ctstate NEW -j ACCEPT
[0:0] -A ufw-track-output -p udp -m conntrack --ctstate NEW -j ACCEPT
[33:1980] -A ufw-user-input -p tcp -m tcp --dport 22 -m comment --comment "\'dapp_OpenSSH\'" -j ACCEPT
[9:540] -A ufw-user-input -p tcp -m tcp --dport 443 -j ACCEPT
[2:120] -A ufw-user-input -s 192.0.2.0/24 -p tcp -m multiport --dports 80,443,8000:8100 -j ACCEPT
[1:60] -A ufw-user-input -p tcp -m tcp --dport 2222 -m conntrack --ctstate NEW -m recent --set --name DEFAULT --mask 255.255.255.255 --rsource
[1:60] -A ufw-user-input -p tcp -m tcp --dport 2222 -m conntrack --ctstate NEW -m recent --update --seconds 30 --hitcount 6 --name DEFAULT --mask 255.255.255.255 --rsource -j ufw-user-limit
[1:60] -A ufw-user-input -p tcp -m tcp --dport 2222 -j ufw-user-limit-accept
[0:0] -A ufw-user-limit -m limit --limit 3/min -j LOG --log-prefix "[UFW LIMIT BLOCK] "
[0:0] -A ufw-user-limit -j REJECT --reject-with icmp-port-unreachable
[1:60] -A ufw-user-limit-accept -j ACCEPT
COMMIT
EOF
run_case ufw ipv4

cat > "$out/kube-proxy.input" <<'EOF'
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-IPTABLES-HINT - [0:0]
:KUBE-KUBELET-CANARY - [0:0]
:KUBE-PROXY-CANARY - [0:0]
COMMIT
*filter
:INPUT ACCEPT [812345:612345678]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [798765:298765432]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FIREWALL - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-KUBELET-CANARY - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-PROXY-CANARY - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-SERVICES - [0:0]
[41230:3300112] -A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
[812345:612345678] -A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS
[41230:3300112] -A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
[812345:612345678] -A INPUT -j KUBE-FIREWALL
[0:0] -A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
[0:0] -A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
[0:0] -A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
[0:0] -A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
[39001:2400110] -A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
[39001:2400110] -A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
[798765:298765432] -A OUTPUT -j KUBE-FIREWALL
[0:0] -A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
[0:0] -A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
[0:0] -A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
[0:0] -A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
[0:0] -A KUBE-SERVICES -d 10.96.201.17/32 -p tcp -m comment --comment "default/broken:http has no endpoints" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable
COMMIT
*nat
:PREROUTING ACCEPT [5123:310456]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [40112:2412345]
:POSTROUTING ACCEPT [40200:2418000]
:KUBE-EXT-XPJMXCOFCMWYJHSU - [0:0]
:KUBE-KUBELET-CANARY - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-PROXY-CANARY - [0:0]
:KUBE-SEP-2ZQ3CYW5LCHRCV2Q - [0:0]
:KUBE-SEP-6E7XQMQ4RAYOWTTM - [0:0]
:KUBE-SEP-IT2ZTR26TO4XFPTO - [0:0]
:KUBE-SEP-N4G2XR5TDX7PQE7P - [0:0]
:KUBE-SEP-YIL6JZP7A3QYXJU2 - [0:0]
:KUBE-SEP-ZP3FB6NMPNCO4VBJ - [0:0]
:KUBE-SEP-ZXMNUKOKXUTL2MK2 - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-ERIFXISQEP7F7OF4 - [0:0]
:KUBE-SVC-JD5MR3NA4I4DYORP - [0:0]
:KUBE-SVC-NPX46M4PTMTKRN6Y - [0:0]
:KUBE-SVC-TCOU7JCQXEZGVUNU - [0:0]
:KUBE-SVC-XPJMXCOFCMWYJHSU - [0:0]
[5123:310456] -A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
[40112:2412345] -A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
[40200:2418000] -A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
[3:180] -A KUBE-EXT-XPJMXCOFCMWYJHSU -m comment --comment "masquerade traffic for default/web:http external destinations" -j KUBE-MARK-MASQ
[3:180] -A KUBE-EXT-XPJMXCOFCMWYJHSU -j KUBE-SVC-XPJMXCOFCMWYJHSU
[120:7200] -A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
[3:180] -A KUBE-NODEPORTS -p tcp -m comment --comment "default/web:http" -m tcp --dport 30080 -j KUBE-EXT-XPJMXCOFCMWYJHSU
[40080:2405000] -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
[120:7200] -A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0
[120:7200] -A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
[0:0] -A KUBE-SEP-2ZQ3CYW5LCHRCV2Q -s 10.244.0.3/32 -m comment --comment "kube-system/kube-dns:dns" -j KUBE-MARK-MASQ
[811:61234] -A KUBE-SEP-2ZQ3CYW5LCHRCV2Q -p udp -m comment --comment "kube-system/kube-dns:dns" -m udp -j DNAT --to-destination 10.244.0.3:53
[0:0] -A KUBE-SEP-6E7XQMQ4RAYOWTTM -s 10.244.0.4/32 -m comment --comment "kube-system/kube-dns:dns" -j KUBE-MARK-MASQ
[799:60345] -A KUBE-SEP-6E7XQMQ4RAYOWTTM -p udp -m comment --comment "kube-system/kube-dns:dns" -m udp -j DNAT --to-destination 10.244.0.4:53
[0:0] -A KUBE-SEP-IT2ZTR26TO4XFPTO -s 10.244.0.3/32 -m comment --comment "kube-system/kube-dns:dns-tcp" -j KUBE-MARK-MASQ
[4:240] -A KUBE-SEP-IT2ZTR26TO4XFPTO -p tcp -m comment --comment "kube-system/kube-dns:dns-tcp" -m tcp -j DNAT --to-destination 10.244.0.3:53
[117:7020] -A KUBE-SEP-N4G2XR5TDX7PQE7P -s 172.18.0.2/32 -m comment --comment "default/kubernetes:https" -j KUBE-MARK-MASQ
[2210:132600] -A KUBE-SEP-N4G2XR5TDX7PQE7P -p tcp -m comment --comment "default/kubernetes:https" -m tcp -j DNAT --to-destination 172.18.0.2:6443
[0:0] -A KUBE-SEP-YIL6JZP7A3QYXJU2 -s 10.244.1.7/32 -m comment --comment "default/web:http" -j KUBE-MARK-MASQ
[14:840] -A KUBE-SEP-YIL6JZP7A3QYXJU2 -p tcp -m comment --comment "default/web:http" -m tcp -j DNAT --to-destination 10.244.1.7:8080
[0:0] -A KUBE-SEP-ZP3FB6NMPNCO4VBJ -s 10.244.2.9/32 -m comment --comment "default/web:http" -j KUBE-MARK-MASQ
[13:780] -A KUBE-SEP-ZP3FB6NMPNCO4VBJ -p tcp -m comment --comment "default/web:http" -m tcp -j DNAT --to-destination 10.244.2.9:8080
[0:0] -A KUBE-SEP-ZXMNUKOKXUTL2MK2 -s 10.244.3.2/32 -m comment --comment "default/web:http" -j KUBE-MARK-MASQ
[12:720] -A KUBE-SEP-ZXMNUKOKXUTL2MK2 -p tcp -m comment --comment "default/web:http" -m tcp -j DNAT --to-destination 10.244.3.2:8080
[1610:121579] -A KUBE-SERVICES -d 10.96.0.10/32 -p udp -m comment --comment "kube-system/kube-dns:dns cluster IP" -m udp --dport 53 -j KUBE-SVC-TCOU7JCQXEZGVUNU
[4:240] -A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment "kube-system/kube-dns:dns-tcp cluster IP" -m tcp --dport 53 -j KUBE-SVC-ERIFXISQEP7F7OF4
[2210:132600] -A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m comment --comment "default/kubernetes:https cluster IP" -m tcp --dport 443 -j KUBE-SVC-NPX46M4PTMTKRN6Y
[36:2160] -A KUBE-SERVICES -d 10.96.143.88/32 -p tcp -m comment --comment "default/web:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-XPJMXCOFCMWYJHSU
[0:0] -A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment "kube-system/kube-dns:metrics cluster IP" -m tcp --dport 9153 -j KUBE-SVC-JD5MR3NA4I4DYORP
[3:180] -A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
[0:0] -A KUBE-SVC-ERIFXISQEP7F7OF4 ! -s 10.244.0.0/16 -d 10.96.0.10/32 -p tcp -m comment --comment "kube-system/kube-dns:dns-tcp cluster IP" -m tcp --dport 53 -j KUBE-MARK-MASQ
[2:120] -A KUBE-SVC-ERIFXISQEP7F7OF4 -m comment --comment "kube-system/kube-dns:dns-tcp -> 10.244.0.3:53" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-IT2ZTR26TO4XFPTO
[2:120] -A KUBE-SVC-ERIFXISQEP7F7OF4 -m comment --comment "kube-system/kube-dns:dns-tcp -> 10.244.0.4:53" -j KUBE-SEP-IT2ZTR26TO4XFPTO
[0:0] -A KUBE-SVC-JD5MR3NA4I4DYORP ! -s 10.244.0.0/16 -d 10.96.0.10/32 -p tcp -m comment --comment "kube-system/kube-dns:metrics cluster IP" -m tcp --dport 9153 -j KUBE-MARK-MASQ
[117:7020] -A KUBE-SVC-NPX46M4PTMTKRN6Y ! -s 10.244.0.0/16 -d 10.96.0.1/32 -p tcp -m comment --comment "default/kubernetes:https cluster IP" -m tcp --dport 443 -j KUBE-MARK-MASQ
[2210:132600] -A KUBE-SVC-NPX46M4PTMTKRN6Y -m comment --comment "default/kubernetes:https -> 172.18.0.2:6443" -j KUBE-SEP-N4G2XR5TDX7PQE7P
[0:0] -A KUBE-SVC-TCOU7JCQXEZGVUNU ! -s 10.244.0.0/16 -d 10.96.0.10/32 -p udp -m comment --comment "kube-system/kube-dns:dns cluster IP" -m udp --dport 53 -j KUBE-MARK-MASQ
[811:61234] -A KUBE-SVC-TCOU7JCQXEZGVUNU -m comment --comment "kube-system/kube-dns:dns -> 10.244.0.3:53" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-2ZQ3CYW5LCHRCV2Q
[799:60345] -A KUBE-SVC-TCOU7JCQXEZGVUNU -m comment --comment "kube-system/kube-dns:dns -> 10.244.0.4:53" -j KUBE-SEP-6E7XQMQ4RAYOWTTM
[0:0] -A KUBE-SVC-XPJMXCOFCMWYJHSU ! -s 10.244.0.0/16 -d 10.96.143.88/32 -p tcp -m comment --comment "default/web:http cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ
[14:840] -A KUBE-SVC-XPJMXCOFCMWYJHSU -m comment --comment "default/web:http -> 10.244.1.7:8080" -m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-YIL6JZP7A3QYXJU2
[13:780] -A KUBE-SVC-XPJMXCOFCMWYJHSU -m comment --comment "default/web:http -> 10.244.2.9:8080" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-ZP3FB6NMPNCO4VBJ
[12:720] -A KUBE-SVC-XPJMXCOFCMWYJHSU -m comment --comment "default/web:http -> 10.244.3.2:8080" -j KUBE-SEP-ZXMNUKOKXUTL2MK2
COMMIT
EOF
run_case kube-proxy ipv4

cat > "$out/libvirt.input" <<'EOF'
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:LIBVIRT_PRT - [0:0]
[77231:51234567] -A POSTROUTING -j LIBVIRT_PRT
[4:1312] -A LIBVIRT_PRT -o virbr0 -p udp -m udp --dport 68 -j CHECKSUM --checksum-fill
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:LIBVIRT_PRT - [0:0]
[2990:190044] -A POSTROUTING -j LIBVIRT_PRT
[2:152] -A LIBVIRT_PRT -s 192.168.122.0/24 -d 224.0.0.0/24 -j RETURN
[0:0] -A LIBVIRT_PRT -s 192.168.122.0/24 -d 255.255.255.255/32 -j RETURN
[310:18600] -A LIBVIRT_PRT -s 192.168.122.0/24 ! -d 192.168.122.0/24 -p tcp -j MASQUERADE --to-ports 1024-65535
[95:7220] -A LIBVIRT_PRT -s 192.168.122.0/24 ! -d 192.168.122.0/24 -p udp -j MASQUERADE --to-ports 1024-65535
[3:252] -A LIBVIRT_PRT -s 192.168.122.0/24 ! -d 192.168.122.0/24 -j MASQUERADE
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:LIBVIRT_FWI - [0:0]
:LIBVIRT_FWO - [0:0]
:LIBVIRT_FWX - [0:0]
:LIBVIRT_INP - [0:0]
:LIBVIRT_OUT - [0:0]
[501234:400123456] -A INPUT -j LIBVIRT_INP
[88123:61234567] -A FORWARD -j LIBVIRT_FWX
[88123:61234567] -A FORWARD -j LIBVIRT_FWI
[31000:2100000] -A FORWARD -j LIBVIRT_FWO
[412345:90123456] -A OUTPUT -j LIBVIRT_OUT
[57123:59134567] -A LIBVIRT_FWI -d 192.168.122.0/24 -o virbr0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
[0:0] -A LIBVIRT_FWI -o virbr0 -j REJECT --reject-with icmp-port-unreachable
[31000:2100000] -A LIBVIRT_FWO -s 192.168.122.0/24 -i virbr0 -j ACCEPT
[0:0] -A LIBVIRT_FWO -i virbr0 -j REJECT --reject-with icmp-port-unreachable
[0:0] -A LIBVIRT_FWX -i virbr0 -o virbr0 -j ACCEPT
[0:0] -A LIBVIRT_INP -i virbr0 -p udp -m udp --dport 53 -j ACCEPT
[41:3012] -A LIBVIRT_INP -i virbr0 -p tcp -m tcp --dport 53 -j ACCEPT
[12:3936] -A LIBVIRT_INP -i virbr0 -p udp -m udp --dport 67 -j ACCEPT
[0:0] -A LIBVIRT_INP -i virbr0 -p tcp -m tcp --dport 67 -j ACCEPT
[0:0] -A LIBVIRT_OUT -o virbr0 -p udp -m udp --dport 53 -j ACCEPT
[0:0] -A LIBVIRT_OUT -o virbr0 -p tcp -m tcp --dport 53 -j ACCEPT
[12:3936] -A LIBVIRT_OUT -o virbr0 -p udp -m udp --dport 68 -j ACCEPT
[0:0] -A LIBVIRT_OUT -o virbr0 -p tcp -m tcp --dport 68 -j ACCEPT
COMMIT
EOF
run_case libvirt ipv4

# firewalld's iptables backend (FirewallBackend=iptables) on an iptables-nft system: its
# zone chains live in nf_tables tables that iptables-save still prints.
cat > "$out/firewalld.input" <<'EOF'
*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:OUTPUT_direct - [0:0]
:PREROUTING_ZONES - [0:0]
:PREROUTING_direct - [0:0]
:PRE_public - [0:0]
:PRE_public_allow - [0:0]
:PRE_public_deny - [0:0]
:PRE_public_log - [0:0]
:PRE_public_post - [0:0]
:PRE_public_pre - [0:0]
[60012:51234567] -A PREROUTING -j PREROUTING_direct
[60012:51234567] -A PREROUTING -j PREROUTING_ZONES
[41000:3000000] -A OUTPUT -j OUTPUT_direct
[60012:51234567] -A PREROUTING_ZONES -g PRE_public
[60012:51234567] -A PRE_public -j PRE_public_pre
[60012:51234567] -A PRE_public -j PRE_public_log
[60012:51234567] -A PRE_public -j PRE_public_deny
[60012:51234567] -A PRE_public -j PRE_public_allow
[60012:51234567] -A PRE_public -j PRE_public_post
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [41000:3000000]
:FORWARD_IN_ZONES - [0:0]
:FORWARD_OUT_ZONES - [0:0]
:FORWARD_direct - [0:0]
:FWD_public - [0:0]
:FWD_public_allow - [0:0]
:FWD_public_deny - [0:0]
:FWD_public_log - [0:0]
:FWD_public_post - [0:0]
:FWD_public_pre - [0:0]
:INPUT_ZONES - [0:0]
:INPUT_direct - [0:0]
:IN_public - [0:0]
:IN_public_allow - [0:0]
:IN_public_deny - [0:0]
:IN_public_log - [0:0]
:IN_public_post - [0:0]
:IN_public_pre - [0:0]
:OUTPUT_direct - [0:0]
[55001:50000000] -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT
[800:48000] -A INPUT -i lo -j ACCEPT
[4211:1186567] -A INPUT -j INPUT_direct
[4211:1186567] -A INPUT -j INPUT_ZONES
[3:120] -A INPUT -m conntrack --ctstate INVALID -j DROP
[97:5820] -A INPUT -j REJECT --reject-with icmp-host-prohibited
[0:0] -A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT
[0:0] -A FORWARD -i lo -j ACCEPT
[0:0] -A FORWARD -j FORWARD_direct
[0:0] -A FORWARD -j FORWARD_IN_ZONES
[0:0] -A FORWARD -j FORWARD_OUT_ZONES
[0:0] -A FORWARD -m conntrack --ctstate INVALID -j DROP
[0:0] -A FORWARD -j REJECT --reject-with icmp-host-prohibited
[41000:3000000] -A OUTPUT -j OUTPUT_direct
[0:0] -A FORWARD_IN_ZONES -g FWD_public
[0:0] -A FORWARD_OUT_ZONES -g FWD_public
[0:0] -A FWD_public -j FWD_public_pre
[0:0] -A FWD_public -j FWD_public_log
[0:0] -A FWD_public -j FWD_public_deny
[0:0] -A FWD_public -j FWD_public_allow
[0:0] -A FWD_public -j FWD_public_post
[4211:1186567] -A INPUT_ZONES -g IN_public
[4211:1186567] -A IN_public -j IN_public_pre
[4211:1186567] -A IN_public -j IN_public_log
[4211:1186567] -A IN_public -j IN_public_deny
[4211:1186567] -A IN_public -j IN_public_allow
[97:5820] -A IN_public -j IN_public_post
[0:0] -A IN_public -p icmp -j ACCEPT
[4003:1170000] -A IN_public_allow -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW,UNTRACKED -j ACCEPT
[0:0] -A IN_public_allow -d 224.0.0.251/32 -p udp -m udp --dport 5353 -m conntrack --ctstate NEW,UNTRACKED -j ACCEPT
[111:10747] -A IN_public_allow -p udp -m udp --dport 546 -m conntrack --ctstate NEW,UNTRACKED -j ACCEPT
[0:0] -A IN_public_allow -p tcp -m tcp --dport 9090 -m conntrack --ctstate NEW,UNTRACKED -j ACCEPT
[0:0] -A IN_public_allow -s 198.51.100.7/32 -p tcp -m tcp --dport 5432 -m conntrack --ctstate NEW,UNTRACKED -j ACCEPT
COMMIT
EOF
run_case firewalld ipv4

cat > "$out/ipv6.input" <<'EOF'
*filter
:INPUT DROP [42:3360]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [12034:1456789]
:icmp6 - [0:0]
:services - [0:0]
[9001:1200345] -A INPUT -i lo -j ACCEPT
[2890:401234] -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
[0:0] -A INPUT -m conntrack --ctstate INVALID -j DROP
[0:0] -A INPUT -m rt --rt-type 0 -j DROP
[211:15192] -A INPUT -p ipv6-icmp -j icmp6
[37:2960] -A INPUT -j services
[0:0] -A icmp6 -p ipv6-icmp -m icmp6 --icmpv6-type 1 -j ACCEPT
[0:0] -A icmp6 -p ipv6-icmp -m icmp6 --icmpv6-type 2 -j ACCEPT
[0:0] -A icmp6 -p ipv6-icmp -m icmp6 --icmpv6-type 3 -j ACCEPT
[3:192] -A icmp6 -p ipv6-icmp -m icmp6 --icmpv6-type 128 -m limit --limit 10/sec -j ACCEPT
[101:7272] -A icmp6 -s fe80::/10 -p ipv6-icmp -m icmp6 --icmpv6-type 135 -m hl --hl-eq 255 -j ACCEPT
[98:7056] -A icmp6 -s fe80::/10 -p ipv6-icmp -m icmp6 --icmpv6-type 136 -m hl --hl-eq 255 -j ACCEPT
[9:672] -A icmp6 -d ff02::1/128 -p ipv6-icmp -m icmp6 --icmpv6-type 134 -m hl --hl-eq 255 -j ACCEPT
[12:960] -A services -d 2001:db8::10/128 -p tcp -m tcp --dport 443 -m comment --comment "https on the service address" -j ACCEPT
[5:400] -A services -s 2001:db8:100::/48 -p tcp -m tcp --dport 22 -m comment --comment "ssh from the office" -j ACCEPT
[0:0] -A services ! -s 2001:db8:100::/48 -p tcp -m tcp --dport 22 -j REJECT --reject-with icmp6-adm-prohibited
[20:1600] -A services -p udp -m multiport --dports 53,123 -j ACCEPT
COMMIT
EOF
run_case ipv6 ipv6

# The same rules through the legacy ip6_tables backend: its save output differs in the
# header, and (unlike ip6tables-nft 1.8.9, which drops them) it keeps restored rule counters.
cp "$out/ipv6.input" "$out/ipv6-legacy.input"
run_case ipv6-legacy ipv6-legacy

# Comments iptables-save has to quote, escape or print across two lines; rules that
# differ only by comment; the same rule twice; negations.
cat > "$out/nasty-comments.input" <<'EOF'
*filter
:INPUT ACCEPT [100:10000]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [200:20000]
:ACCT - [0:0]
:NASTY - [0:0]
[10:1000] -A INPUT -j NASTY
[11:1100] -A INPUT -j ACCT
[1:100] -A NASTY -s 10.0.0.1/32 -m comment --comment "say \"hi\"" -j ACCEPT
[2:200] -A NASTY -s 10.0.0.2/32 -m comment --comment "C:\\path\\to" -j ACCEPT
[3:300] -A NASTY -s 10.0.0.3/32 -m comment --comment "it\'s single" -j ACCEPT
[4:400] -A NASTY -s 10.0.0.4/32 -m comment --comment "grüße aus Köln ✓" -j ACCEPT
[5:500] -A NASTY -s 10.0.0.5/32 -m comment --comment "" -j ACCEPT
[6:600] -A NASTY -m comment --comment first -s 10.0.0.6/32 -m comment --comment "second one" -j ACCEPT
[7:700] -A NASTY -m comment --comment "--comment -s 1.2.3.4" -j RETURN
[8:800] -A NASTY ! -s 10.1.0.0/16 ! -d 10.2.0.0/16 -p tcp -m tcp ! --dport 22 -j DROP
[9:900] -A NASTY ! -i lo -p udp -m udp ! --sport 53 -j DROP
[10:1000] -A NASTY -p tcp -m tcp --dport 8080 -j ACCEPT
[20:2000] -A NASTY -p tcp -m tcp --dport 8080 -j ACCEPT
[1:10] -A NASTY -p tcp -m tcp --dport 9090 -m comment --comment "web one" -j ACCEPT
[2:20] -A NASTY -p tcp -m tcp --dport 9090 -m comment --comment "web two" -j ACCEPT
[3:30] -A NASTY -p tcp -m tcp --dport 9091 -m comment --comment tagged -j ACCEPT
[4:40] -A NASTY -p tcp -m tcp --dport 9092 -m comment --comment tagged -j ACCEPT
[5:50] -A NASTY -m comment --comment "=web= tab	inside" -m comment --comment "$HOME `id` {braces}" -j RETURN
[100:150000] -A ACCT -d 192.0.2.10/32 -m comment --comment "=srv1_up= uplink of srv1" -j RETURN
[200:250000] -A ACCT -s 192.0.2.10/32 -m comment --comment "=srv1_down= downlink of srv1" -j RETURN
COMMIT
EOF
# iptables-restore reads one line per rule, so a comment with a newline can only be set
# from the command line.
run_case nasty-comments ipv4 \
    iptables -t filter -A NASTY -s 10.0.0.7/32 -m comment --comment $'first line\nsecond "line"' -j ACCEPT

# A native nftables table named like an xtables one, with a base chain iptables-nft would
# not make: iptables-save (1.8.9) warns that it is incompatible and still prints its
# built-in chains, which exist only in its output.
cat > "$out/incompatible-nat.input" <<'EOF'
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
[7:700] -A INPUT -i lo -j ACCEPT
COMMIT
EOF
run_case incompatible-nat ipv4 \
    nft 'add table ip nat; add chain ip nat postrouting { type nat hook postrouting priority 100; }'
