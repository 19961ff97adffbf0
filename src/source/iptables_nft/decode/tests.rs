use proptest::prelude::*;

use super::*;
use crate::source::netlink::consts::list;
use crate::source::netlink::push;

/// An expression element: its name and its data attributes.
fn expression(name: &str, data: &[u8]) -> Vec<u8> {
    let mut element = Vec::new();
    crate::source::netlink::push_str(&mut element, expr::NAME, name);
    push(&mut element, expr::DATA | 0x8000, data);
    element
}

fn be32(kind: u16, value: u32) -> Vec<u8> {
    let mut out = Vec::new();
    push(&mut out, kind, &value.to_be_bytes());
    out
}

fn value(kind: u16, bytes: &[u8]) -> Vec<u8> {
    let mut inner = Vec::new();
    push(&mut inner, data::VALUE, bytes);
    let mut out = Vec::new();
    push(&mut out, kind | 0x8000, &inner);
    out
}

/// A rule message's attributes holding `expressions`.
fn rule_attrs(expressions: &[Vec<u8>]) -> Vec<u8> {
    let mut list_buf = Vec::new();
    for e in expressions {
        push(&mut list_buf, list::ELEM | 0x8000, e);
    }
    let mut out = Vec::new();
    push(&mut out, rule::EXPRESSIONS | 0x8000, &list_buf);
    out
}

fn meta_load(key: u32) -> Vec<u8> {
    expression(
        "meta",
        &[be32(meta::DREG, 1), be32(meta::KEY, key)].concat(),
    )
}

fn payload_load(base: u32, offset: u32, len: u32) -> Vec<u8> {
    let data = [
        be32(payload::DREG, 1),
        be32(payload::BASE, base),
        be32(payload::OFFSET, offset),
        be32(payload::LEN, len),
    ];
    expression("payload", &data.concat())
}

fn cmp_expr(op: u32, bytes: &[u8]) -> Vec<u8> {
    expression(
        "cmp",
        &[be32(cmp::OP, op), value(cmp::DATA, bytes)].concat(),
    )
}

fn jump(chain: &str) -> Vec<u8> {
    let mut verdict = be32(verdict_attr::CODE, verdict_attr::JUMP as u32);
    crate::source::netlink::push_str(&mut verdict, verdict_attr::CHAIN, chain);
    let mut data_attr = Vec::new();
    push(&mut data_attr, data::VERDICT | 0x8000, &verdict);
    let mut data = be32(immediate::DREG, 0);
    push(&mut data, immediate::DATA | 0x8000, &data_attr);
    expression("immediate", &data)
}

#[test]
fn native_expressions_print_in_iptables_save_order() {
    // As iptables-nft writes `-A KUBE-SVC -d 10.96.0.1/32 ! -i eth+ -p tcp -m tcp
    // --dport 443 -j KUBE-SEP`: interface first, then protocol, address, port.
    let attrs = rule_attrs(&[
        meta_load(meta::IIFNAME),
        cmp_expr(cmp::NEQ, b"eth"),
        meta_load(meta::L4PROTO),
        cmp_expr(cmp::EQ, &[6]),
        payload_load(payload::NETWORK_HEADER, 16, 4),
        cmp_expr(cmp::EQ, &[10, 96, 0, 1]),
        payload_load(payload::TRANSPORT_HEADER, 2, 2),
        cmp_expr(cmp::EQ, &443u16.to_be_bytes()),
        expression("counter", &[]),
        jump("KUBE-SEP"),
    ]);
    let decoded =
        rule(Family::Ipv4, "KUBE-SVC", Attrs::new(&attrs), &mut |_| None).expect("decoded");
    assert_eq!(
        decoded.line,
        "-A KUBE-SVC -d 10.96.0.1/32 ! -i eth+ -p tcp -m tcp --dport 443 -j KUBE-SEP"
    );
    assert_eq!(
        *decoded.extensions,
        [Extension::Native("ip"), Extension::Native("tcp")]
    );
}

#[test]
fn what_iptables_does_not_write_names_itself() {
    let attrs = rule_attrs(&[expression("fib", &[]), jump("X")]);
    assert_eq!(
        rule(Family::Ipv4, "X", Attrs::new(&attrs), &mut |_| None),
        Err(Extension::Expression("fib".to_owned()))
    );
    // A port compared without a protocol to say which header it is in.
    let attrs = rule_attrs(&[
        payload_load(payload::TRANSPORT_HEADER, 2, 2),
        cmp_expr(cmp::EQ, &[0, 80]),
    ]);
    assert_eq!(
        rule(Family::Ipv4, "X", Attrs::new(&attrs), &mut |_| None),
        Err(Extension::Expression("cmp".to_owned()))
    );
}

#[test]
fn masks_print_as_prefix_lengths_when_contiguous() {
    assert_eq!(prefix_len(&[0xff, 0xff, 0xf0, 0]), Some(20));
    assert_eq!(prefix_len(&[0; 16]), Some(0));
    assert_eq!(prefix_len(&[0xff, 0, 0xff, 0]), None);
    assert_eq!(prefix_len(&[0x0f, 0, 0, 0]), None);
}

#[test]
fn strings_are_quoted_as_iptables_saves_them() {
    let quoted = |s: &str| {
        let mut text = Text::default();
        text.quoted(s);
        text.line
    };
    assert_eq!(quoted("plain_NAME-1"), " plain_NAME-1");
    assert_eq!(quoted(""), " \"\"");
    assert_eq!(quoted("a b"), " \"a b\"");
    assert_eq!(quoted("q\"b\\s'"), " \"q\\\"b\\\\s\\'\"");
    assert_eq!(quoted("ns/svc:http"), " \"ns/svc:http\"");
}

#[test]
fn tcp_flags_print_by_name() {
    let text = |flags| {
        let mut out = String::new();
        info::tcp_flags(&mut out, flags);
        out
    };
    assert_eq!(text(0x17), "FIN,SYN,RST,ACK");
    assert_eq!(text(0), "NONE");
    assert_eq!(text(0x3f), "FIN,SYN,RST,PSH,ACK,URG");
}

#[test]
fn ipv6_addresses_read_as_inet_ntop_writes_them() {
    let cases = [
        ("::", "::"),
        ("::1", "::1"),
        ("::2", "::2"),
        ("1::", "1::"),
        ("::1.2.3.4", "::1.2.3.4"),
        ("::1:0", "::0.1.0.0"),
        ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
        ("::ffff:0:1", "::ffff:0.0.0.1"),
        ("::fffe:1.2.3.4", "::fffe:102:304"),
        ("1::1.2.3.4", "1::102:304"),
        ("2001:db8::1", "2001:db8::1"),
        ("2001:db8:0:1::1", "2001:db8:0:1::1"),
        ("1:0:0:1:0:0:0:1", "1:0:0:1::1"),
        ("1:0:0:2:0:0:3:4", "1::2:0:0:3:4"),
        ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
        ("0:1:2:3:4:5:6:7", "0:1:2:3:4:5:6:7"),
        ("1:2:3:4:5:6:7:0", "1:2:3:4:5:6:7:0"),
        ("fe80::", "fe80::"),
        ("::ffff:0:102:304", "::ffff:0:102:304"),
    ];
    for (address, text) in cases {
        let address: std::net::Ipv6Addr = address.parse().expect("address");
        assert_eq!(ipv6_text(address.octets()), text, "{address:?}");
    }
}

proptest! {
    /// Whatever the bytes, a rule decodes or names what stopped it: never a panic.
    #[test]
    fn any_rule_message_decodes_or_declines(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = rule(Family::Ipv4, "X", Attrs::new(&bytes), &mut |_| None);
        let _ = rule(Family::Ipv6, "X", Attrs::new(&bytes), &mut |_| None);
    }
}
