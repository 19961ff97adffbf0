//! The kernel's numbers, named as the kernel names them.

/// `include/uapi/linux/netlink.h`.
pub mod netlink {
    /// `NLM_F_REQUEST`: a request.
    pub const NLM_F_REQUEST: u16 = 0x1;
    /// `NLM_F_ACK`: answer with an acknowledgement (an `NLMSG_ERROR` of 0).
    pub const NLM_F_ACK: u16 = 0x4;
    /// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`): every object the request selects.
    pub const NLM_F_DUMP: u16 = 0x300;
    /// `NLM_F_DUMP_INTR`: the dump was interrupted by a change, its parts may disagree.
    pub const NLM_F_DUMP_INTR: u16 = 0x10;
    /// `NLMSG_ERROR`: an error, or with error 0 an acknowledgement.
    pub const NLMSG_ERROR: u16 = 2;
    /// `NLMSG_DONE`: the end of a dump.
    pub const NLMSG_DONE: u16 = 3;
    /// `NLA_TYPE_MASK`: an attribute's type without the nested and byte-order flags.
    pub const NLA_TYPE_MASK: u16 = 0x3fff;
}

/// `include/uapi/linux/netfilter/nfnetlink.h`.
pub mod nfnetlink {
    /// `NFNL_SUBSYS_IPSET`: the subsystem of ipset messages.
    pub const NFNL_SUBSYS_IPSET: u16 = 6;
    /// `NFNL_SUBSYS_NFTABLES`: the subsystem of nf_tables messages.
    pub const NFNL_SUBSYS_NFTABLES: u16 = 10;
    /// `NFNETLINK_V0`: the only version of the nfnetlink header.
    pub const NFNETLINK_V0: u8 = 0;
    /// `NFPROTO_UNSPEC`: every family, in a dump request.
    pub const NFPROTO_UNSPEC: u8 = 0;
}

/// `enum nf_tables_msg_types`, `include/uapi/linux/netfilter/nf_tables.h`. Only the GET
/// requests: the reader never sends a request that changes or resets anything.
pub mod msg {
    /// `NFT_MSG_NEWTABLE`: a table (the reply to a table dump).
    pub const NEWTABLE: u16 = 0;
    /// `NFT_MSG_GETTABLE`.
    pub const GETTABLE: u16 = 1;
    /// `NFT_MSG_NEWCHAIN`.
    pub const NEWCHAIN: u16 = 3;
    /// `NFT_MSG_GETCHAIN`.
    pub const GETCHAIN: u16 = 4;
    /// `NFT_MSG_NEWRULE`.
    pub const NEWRULE: u16 = 6;
    /// `NFT_MSG_GETRULE` (not `NFT_MSG_GETRULE_RESET`, which zeroes counters).
    pub const GETRULE: u16 = 7;
    /// `NFT_MSG_NEWSET`.
    pub const NEWSET: u16 = 9;
    /// `NFT_MSG_GETSET`.
    pub const GETSET: u16 = 10;
    /// `NFT_MSG_NEWSETELEM`.
    pub const NEWSETELEM: u16 = 12;
    /// `NFT_MSG_GETSETELEM` (not `NFT_MSG_GETSETELEM_RESET`).
    pub const GETSETELEM: u16 = 13;
    /// `NFT_MSG_NEWGEN`: the generation (the reply to `NFT_MSG_GETGEN`).
    pub const NEWGEN: u16 = 15;
    /// `NFT_MSG_GETGEN`.
    pub const GETGEN: u16 = 16;
    /// `NFT_MSG_NEWOBJ`.
    pub const NEWOBJ: u16 = 18;
    /// `NFT_MSG_GETOBJ` (not `NFT_MSG_GETOBJ_RESET`, which zeroes counters and quotas).
    pub const GETOBJ: u16 = 19;
}

/// `enum nft_table_attributes`.
pub mod table {
    /// `NFTA_TABLE_NAME` (string).
    pub const NAME: u16 = 1;
    /// `NFTA_TABLE_FLAGS` (u32, big endian; [`super::table_flags`]).
    pub const FLAGS: u16 = 2;
}

/// `enum nft_table_flags`.
pub mod table_flags {
    /// `NFT_TABLE_F_DORMANT`: the table's base chains are not attached to their hooks, so
    /// no packet reaches its rules.
    pub const DORMANT: u32 = 0x1;
}

/// `enum nft_chain_attributes`.
pub mod chain {
    /// `NFTA_CHAIN_TABLE` (string).
    pub const TABLE: u16 = 1;
    /// `NFTA_CHAIN_NAME` (string).
    pub const NAME: u16 = 3;
    /// `NFTA_CHAIN_HOOK` (nested, [`super::hook`]).
    pub const HOOK: u16 = 4;
    /// `NFTA_CHAIN_POLICY` (u32, big endian: `NF_DROP` 0, `NF_ACCEPT` 1).
    pub const POLICY: u16 = 5;
    /// `NFTA_CHAIN_TYPE` (string: filter, nat, route).
    pub const TYPE: u16 = 7;
    /// `NFTA_CHAIN_COUNTERS` (nested, [`super::counter`]).
    pub const COUNTERS: u16 = 8;
}

/// Verdicts of a base chain's policy (`linux/netfilter.h`).
pub mod verdict {
    /// `NF_DROP`.
    pub const NF_DROP: u32 = 0;
    /// `NF_ACCEPT`.
    pub const NF_ACCEPT: u32 = 1;
    /// `NF_QUEUE`.
    pub const NF_QUEUE: u32 = 3;
}

/// Hook numbers (`linux/netfilter.h`: `enum nf_inet_hooks`, `enum nf_dev_hooks`;
/// `linux/netfilter_arp.h`: `NF_ARP_*`). The same number names another hook in each
/// family's enum.
pub mod hooks {
    /// `NF_INET_PRE_ROUTING`.
    pub const NF_INET_PRE_ROUTING: u32 = 0;
    /// `NF_INET_LOCAL_IN`.
    pub const NF_INET_LOCAL_IN: u32 = 1;
    /// `NF_INET_FORWARD`.
    pub const NF_INET_FORWARD: u32 = 2;
    /// `NF_INET_LOCAL_OUT`.
    pub const NF_INET_LOCAL_OUT: u32 = 3;
    /// `NF_INET_POST_ROUTING`.
    pub const NF_INET_POST_ROUTING: u32 = 4;
    /// `NF_INET_INGRESS`.
    pub const NF_INET_INGRESS: u32 = 5;
    /// `NF_NETDEV_INGRESS`.
    pub const NF_NETDEV_INGRESS: u32 = 0;
    /// `NF_NETDEV_EGRESS`.
    pub const NF_NETDEV_EGRESS: u32 = 1;
    /// `NF_ARP_IN`.
    pub const NF_ARP_IN: u32 = 0;
    /// `NF_ARP_OUT`.
    pub const NF_ARP_OUT: u32 = 1;
    /// `NF_ARP_FORWARD`.
    pub const NF_ARP_FORWARD: u32 = 2;
}

/// `enum nft_hook_attributes`.
pub mod hook {
    /// `NFTA_HOOK_HOOKNUM` (u32, big endian).
    pub const HOOKNUM: u16 = 1;
    /// `NFTA_HOOK_PRIORITY` (i32, big endian).
    pub const PRIORITY: u16 = 2;
}

/// `enum nft_rule_attributes`.
pub mod rule {
    /// `NFTA_RULE_TABLE` (string).
    pub const TABLE: u16 = 1;
    /// `NFTA_RULE_CHAIN` (string).
    pub const CHAIN: u16 = 2;
    /// `NFTA_RULE_HANDLE` (u64, big endian).
    pub const HANDLE: u16 = 3;
    /// `NFTA_RULE_EXPRESSIONS` (nested list of [`super::list::ELEM`]).
    pub const EXPRESSIONS: u16 = 4;
    /// `NFTA_RULE_USERDATA` (bytes: libnftnl's TLVs, [`super::udata`]).
    pub const USERDATA: u16 = 7;
}

/// `enum nft_list_attributes`.
pub mod list {
    /// `NFTA_LIST_ELEM` (nested).
    pub const ELEM: u16 = 1;
}

/// `enum nft_expr_attributes`.
pub mod expr {
    /// `NFTA_EXPR_NAME` (string).
    pub const NAME: u16 = 1;
    /// `NFTA_EXPR_DATA` (nested, by expression).
    pub const DATA: u16 = 2;
}

/// `enum nft_data_attributes`: a value or a verdict, in `cmp`, `range`, `bitwise` and
/// `immediate` expressions.
pub mod data {
    /// `NFTA_DATA_VALUE` (bytes).
    pub const VALUE: u16 = 1;
    /// `NFTA_DATA_VERDICT` (nested, [`super::verdict_attr`]).
    pub const VERDICT: u16 = 2;
}

/// `enum nft_verdict_attributes`, and the verdict codes of rules (`NF_*`, `enum
/// nft_verdicts`).
pub mod verdict_attr {
    /// `NFTA_VERDICT_CODE` (i32, big endian).
    pub const CODE: u16 = 1;
    /// `NFTA_VERDICT_CHAIN` (string).
    pub const CHAIN: u16 = 2;
    /// `NF_DROP`.
    pub const DROP: i32 = 0;
    /// `NF_ACCEPT`.
    pub const ACCEPT: i32 = 1;
    /// `NFT_JUMP`.
    pub const JUMP: i32 = -3;
    /// `NFT_GOTO`.
    pub const GOTO: i32 = -4;
    /// `NFT_RETURN`.
    pub const RETURN: i32 = -5;
}

/// `enum nft_meta_attributes` and the keys iptables-nft loads (`enum nft_meta_keys`).
pub mod meta {
    /// `NFTA_META_DREG` (u32, big endian): set on a load, absent on a write.
    pub const DREG: u16 = 1;
    /// `NFTA_META_KEY` (u32, big endian).
    pub const KEY: u16 = 2;
    /// `NFT_META_MARK`.
    pub const MARK: u32 = 3;
    /// `NFT_META_IIFNAME`.
    pub const IIFNAME: u32 = 6;
    /// `NFT_META_OIFNAME`.
    pub const OIFNAME: u32 = 7;
    /// `NFT_META_NFTRACE`.
    pub const NFTRACE: u32 = 12;
    /// `NFT_META_L4PROTO`.
    pub const L4PROTO: u32 = 16;
}

/// `enum nft_payload_attributes` and `enum nft_payload_bases`.
pub mod payload {
    /// `NFTA_PAYLOAD_DREG` (u32, big endian): set on a load, absent on a write.
    pub const DREG: u16 = 1;
    /// `NFTA_PAYLOAD_BASE` (u32, big endian).
    pub const BASE: u16 = 2;
    /// `NFTA_PAYLOAD_OFFSET` (u32, big endian).
    pub const OFFSET: u16 = 3;
    /// `NFTA_PAYLOAD_LEN` (u32, big endian).
    pub const LEN: u16 = 4;
    /// `NFT_PAYLOAD_NETWORK_HEADER`.
    pub const NETWORK_HEADER: u32 = 1;
    /// `NFT_PAYLOAD_TRANSPORT_HEADER`.
    pub const TRANSPORT_HEADER: u32 = 2;
}

/// `enum nft_cmp_attributes` and `enum nft_cmp_ops`.
pub mod cmp {
    /// `NFTA_CMP_OP` (u32, big endian).
    pub const OP: u16 = 2;
    /// `NFTA_CMP_DATA` (nested, [`super::data`]).
    pub const DATA: u16 = 3;
    /// `NFT_CMP_EQ`.
    pub const EQ: u32 = 0;
    /// `NFT_CMP_NEQ`.
    pub const NEQ: u32 = 1;
    /// `NFT_CMP_LTE`.
    pub const LTE: u32 = 3;
    /// `NFT_CMP_GTE`.
    pub const GTE: u32 = 5;
}

/// `enum nft_range_attributes` (its ops are `NFT_RANGE_EQ` 0 and `NFT_RANGE_NEQ` 1).
pub mod range {
    /// `NFTA_RANGE_OP` (u32, big endian).
    pub const OP: u16 = 2;
    /// `NFTA_RANGE_FROM_DATA` (nested, [`super::data`]).
    pub const FROM_DATA: u16 = 3;
    /// `NFTA_RANGE_TO_DATA` (nested, [`super::data`]).
    pub const TO_DATA: u16 = 4;
}

/// `enum nft_bitwise_attributes`.
pub mod bitwise {
    /// `NFTA_BITWISE_MASK` (nested, [`super::data`]).
    pub const MASK: u16 = 4;
    /// `NFTA_BITWISE_XOR` (nested, [`super::data`]).
    pub const XOR: u16 = 5;
    /// `NFTA_BITWISE_OP` (u32, big endian; 0 is `NFT_BITWISE_BOOL`, mask and xor).
    pub const OP: u16 = 6;
}

/// `enum nft_immediate_attributes`.
pub mod immediate {
    /// `NFTA_IMMEDIATE_DREG` (u32, big endian; 0 is the verdict register).
    pub const DREG: u16 = 1;
    /// `NFTA_IMMEDIATE_DATA` (nested, [`super::data`]).
    pub const DATA: u16 = 2;
}

/// `enum nft_match_attributes` and `enum nft_target_attributes`: an x_tables extension run
/// by nf_tables, with the extension's own structure as its info.
pub mod xt {
    /// `NFTA_MATCH_NAME`, `NFTA_TARGET_NAME` (string).
    pub const NAME: u16 = 1;
    /// `NFTA_MATCH_REV`, `NFTA_TARGET_REV` (u32, big endian).
    pub const REV: u16 = 2;
    /// `NFTA_MATCH_INFO`, `NFTA_TARGET_INFO` (the extension's structure, host byte order).
    pub const INFO: u16 = 3;
}

/// `enum nft_limit_attributes`.
pub mod limit {
    /// `NFTA_LIMIT_RATE` (u64, big endian).
    pub const RATE: u16 = 1;
    /// `NFTA_LIMIT_UNIT` (u64, big endian: seconds).
    pub const UNIT: u16 = 2;
    /// `NFTA_LIMIT_BURST` (u32, big endian).
    pub const BURST: u16 = 3;
    /// `NFTA_LIMIT_TYPE` (u32, big endian: 0 packets, 1 bytes).
    pub const TYPE: u16 = 4;
    /// `NFTA_LIMIT_FLAGS` (u32, big endian: 1 inverted).
    pub const FLAGS: u16 = 5;
}

/// `enum nft_log_attributes`.
pub mod log {
    /// `NFTA_LOG_GROUP` (u16, big endian): logging to a netlink group, as NFLOG does.
    pub const GROUP: u16 = 1;
    /// `NFTA_LOG_PREFIX` (string).
    pub const PREFIX: u16 = 2;
    /// `NFTA_LOG_SNAPLEN` (u32, big endian): sent only when a size was given.
    pub const SNAPLEN: u16 = 3;
    /// `NFTA_LOG_QTHRESHOLD` (u16, big endian).
    pub const QTHRESHOLD: u16 = 4;
}

/// `enum nft_counter_attributes`, of `counter` expressions, named counters and chain
/// counters.
pub mod counter {
    /// `NFTA_COUNTER_BYTES` (u64, big endian).
    pub const BYTES: u16 = 1;
    /// `NFTA_COUNTER_PACKETS` (u64, big endian).
    pub const PACKETS: u16 = 2;
}

/// The TLVs libnftnl and nft write into a rule's user data (`enum nftnl_udata_rule_types`,
/// libnftnl's `include/libnftnl/udata.h`): one byte of type, one of length, the value.
pub mod udata {
    /// `NFTNL_UDATA_RULE_COMMENT`: the comment, NUL-terminated.
    pub const RULE_COMMENT: u8 = 0;
}

/// `enum nft_set_attributes`.
pub mod set {
    /// `NFTA_SET_TABLE` (string).
    pub const TABLE: u16 = 1;
    /// `NFTA_SET_NAME` (string).
    pub const NAME: u16 = 2;
    /// `NFTA_SET_FLAGS` (u32, big endian; [`super::set_flags`]).
    pub const FLAGS: u16 = 3;
    /// `NFTA_SET_COUNT` (u32, big endian): elements, an interval counted once; sent by
    /// recent kernels only.
    pub const COUNT: u16 = 20;
}

/// `enum nft_set_flags`.
pub mod set_flags {
    /// `NFT_SET_ANONYMOUS`: a set nft made for one rule (`{ 22, 80 }`).
    pub const ANONYMOUS: u32 = 0x1;
    /// `NFT_SET_MAP`: a verdict or data map.
    pub const MAP: u32 = 0x8;
    /// `NFT_SET_OBJECT`: an object map.
    pub const OBJECT: u32 = 0x40;
}

/// `enum nft_set_elem_list_attributes` and `enum nft_set_elem_attributes`.
pub mod set_elem {
    /// `NFTA_SET_ELEM_LIST_TABLE` (string).
    pub const LIST_TABLE: u16 = 1;
    /// `NFTA_SET_ELEM_LIST_SET` (string).
    pub const LIST_SET: u16 = 2;
    /// `NFTA_SET_ELEM_LIST_ELEMENTS` (nested list of [`super::list::ELEM`]).
    pub const LIST_ELEMENTS: u16 = 3;
    /// `NFTA_SET_ELEM_FLAGS` (u32, big endian).
    pub const FLAGS: u16 = 3;
    /// `NFT_SET_ELEM_INTERVAL_END`: the element ends an interval, it is not one.
    pub const F_INTERVAL_END: u32 = 0x1;
}

/// `enum nft_object_attributes`.
pub mod obj {
    /// `NFTA_OBJ_TABLE` (string).
    pub const TABLE: u16 = 1;
    /// `NFTA_OBJ_NAME` (string).
    pub const NAME: u16 = 2;
    /// `NFTA_OBJ_TYPE` (u32, big endian).
    pub const TYPE: u16 = 3;
    /// `NFTA_OBJ_DATA` (nested, by type).
    pub const DATA: u16 = 4;
    /// `NFT_OBJECT_COUNTER`.
    pub const TYPE_COUNTER: u32 = 1;
    /// `NFT_OBJECT_QUOTA`.
    pub const TYPE_QUOTA: u32 = 2;
}

/// `enum nft_quota_attributes`.
pub mod quota {
    /// `NFTA_QUOTA_BYTES` (u64, big endian): the limit.
    pub const BYTES: u16 = 1;
    /// `NFTA_QUOTA_CONSUMED` (u64, big endian).
    pub const CONSUMED: u16 = 4;
}

/// `enum nft_gen_attributes`.
pub mod generation {
    /// `NFTA_GEN_ID` (u32, big endian).
    pub const ID: u16 = 1;
}

/// `include/uapi/linux/netfilter/ipset/ip_set.h`, named as there. The attribute numbers
/// repeat from one level of nesting to the next (`IPSET_ATTR_PROTOCOL` and `IPSET_ATTR_IP`
/// are both 1): each constant says at which level it is read. Only what a reader sends and
/// reads: no command that changes a set.
pub mod ipset {
    /// `IPSET_PROTOCOL`: the newest protocol version the reader speaks.
    pub const IPSET_PROTOCOL: u8 = 7;
    /// `IPSET_PROTOCOL_MIN`: the oldest one (protocol 7 adds the set index in listings and
    /// [`IPSET_CMD_GET_BYINDEX`], asked only when the kernel speaks 7).
    pub const IPSET_PROTOCOL_MIN: u8 = 6;

    /// `IPSET_CMD_PROTOCOL`: the kernel's protocol versions.
    pub const IPSET_CMD_PROTOCOL: u16 = 1;
    /// `IPSET_CMD_LIST`: every set, or the one named, with its members unless
    /// [`IPSET_FLAG_LIST_HEADER`] asks for headers only.
    pub const IPSET_CMD_LIST: u16 = 7;
    /// `IPSET_CMD_GET_BYINDEX` (protocol 7): the name of the set of an index.
    pub const IPSET_CMD_GET_BYINDEX: u16 = 15;

    /// `IPSET_ATTR_PROTOCOL` (u8, in every message): the protocol version.
    pub const IPSET_ATTR_PROTOCOL: u16 = 1;
    /// `IPSET_ATTR_SETNAME` (string).
    pub const IPSET_ATTR_SETNAME: u16 = 2;
    /// `IPSET_ATTR_TYPENAME` (string: `hash:ip`, …).
    pub const IPSET_ATTR_TYPENAME: u16 = 3;
    /// `IPSET_ATTR_FAMILY` (u8, `NFPROTO_*`; `NFPROTO_UNSPEC` for sets of no address
    /// family, such as `bitmap:port` and `list:set`).
    pub const IPSET_ATTR_FAMILY: u16 = 5;
    /// `IPSET_ATTR_FLAGS` (u32, big endian): command flags ([`IPSET_FLAG_LIST_HEADER`]).
    pub const IPSET_ATTR_FLAGS: u16 = 6;
    /// `IPSET_ATTR_DATA` (nested): a set's header at command level, one member inside
    /// [`IPSET_ATTR_ADT`].
    pub const IPSET_ATTR_DATA: u16 = 7;
    /// `IPSET_ATTR_ADT` (nested list of [`IPSET_ATTR_DATA`]): members.
    pub const IPSET_ATTR_ADT: u16 = 8;
    /// `IPSET_ATTR_PROTOCOL_MIN` (u8): the oldest protocol version the kernel speaks.
    pub const IPSET_ATTR_PROTOCOL_MIN: u16 = 10;
    /// `IPSET_ATTR_INDEX` (u16, big endian): a set's index, which x_tables' `set` match and
    /// target hold instead of its name.
    pub const IPSET_ATTR_INDEX: u16 = 11;

    /// `IPSET_ATTR_IP` (nested, [`IPSET_ATTR_IPADDR_IPV4`] or [`IPSET_ATTR_IPADDR_IPV6`]),
    /// in a member: its first address.
    pub const IPSET_ATTR_IP: u16 = 1;
    /// `IPSET_ATTR_CIDR` (u8), in a member: the prefix length of [`IPSET_ATTR_IP`].
    pub const IPSET_ATTR_CIDR: u16 = 3;
    /// `IPSET_ATTR_PORT` (u16, big endian), in a member: a port, or an ICMP type and code.
    pub const IPSET_ATTR_PORT: u16 = 4;
    /// `IPSET_ATTR_PROTO` (u8), in a member: the protocol of [`IPSET_ATTR_PORT`].
    pub const IPSET_ATTR_PROTO: u16 = 7;
    /// `IPSET_ATTR_CADT_FLAGS` (u32, big endian): in a header, the set's extensions
    /// ([`IPSET_FLAG_WITH_COUNTERS`]); in a member, its flags ([`IPSET_FLAG_PHYSDEV`]).
    pub const IPSET_ATTR_CADT_FLAGS: u16 = 8;
    /// `IPSET_ATTR_MARK` (u32, big endian), in a member.
    pub const IPSET_ATTR_MARK: u16 = 10;
    /// `IPSET_ATTR_MAXELEM` (u32, big endian), in a hash set's header.
    pub const IPSET_ATTR_MAXELEM: u16 = 19;
    /// `IPSET_ATTR_SIZE` (u32, big endian), in a `list:set` header: most members.
    pub const IPSET_ATTR_SIZE: u16 = 23;
    /// `IPSET_ATTR_ELEMENTS` (u32, big endian), in a header: members now.
    pub const IPSET_ATTR_ELEMENTS: u16 = 24;
    /// `IPSET_ATTR_REFERENCES` (u32, big endian), in a header: rules and `list:set` sets
    /// that use the set.
    pub const IPSET_ATTR_REFERENCES: u16 = 25;
    /// `IPSET_ATTR_MEMSIZE` (u32, big endian), in a header: kernel memory the set takes.
    pub const IPSET_ATTR_MEMSIZE: u16 = 26;

    /// `IPSET_ATTR_ETHER` (6 bytes), in a member.
    pub const IPSET_ATTR_ETHER: u16 = 17;
    /// `IPSET_ATTR_NAME` (string), in a `list:set` member: the member set's name.
    pub const IPSET_ATTR_NAME: u16 = 18;
    /// `IPSET_ATTR_IP2` (nested, like [`IPSET_ATTR_IP`]), in a member: its second address.
    pub const IPSET_ATTR_IP2: u16 = 20;
    /// `IPSET_ATTR_CIDR2` (u8), in a member: the prefix length of [`IPSET_ATTR_IP2`].
    pub const IPSET_ATTR_CIDR2: u16 = 21;
    /// `IPSET_ATTR_IFACE` (string), in a member.
    pub const IPSET_ATTR_IFACE: u16 = 23;
    /// `IPSET_ATTR_BYTES` (u64, big endian), in a member of a set with counters.
    pub const IPSET_ATTR_BYTES: u16 = 24;
    /// `IPSET_ATTR_PACKETS` (u64, big endian), in a member of a set with counters.
    pub const IPSET_ATTR_PACKETS: u16 = 25;

    /// `IPSET_ATTR_IPADDR_IPV4` (4 bytes, network order), in [`IPSET_ATTR_IP`].
    pub const IPSET_ATTR_IPADDR_IPV4: u16 = 1;
    /// `IPSET_ATTR_IPADDR_IPV6` (16 bytes, network order), in [`IPSET_ATTR_IP`].
    pub const IPSET_ATTR_IPADDR_IPV6: u16 = 2;

    /// `IPSET_FLAG_LIST_HEADER` (`enum ipset_cmd_flags`): list headers, no member.
    pub const IPSET_FLAG_LIST_HEADER: u32 = 1 << 2;
    /// `IPSET_FLAG_PHYSDEV` (`enum ipset_cadt_flags`): the interface of a `hash:net,iface`
    /// member is a bridge port (`physdev:`).
    pub const IPSET_FLAG_PHYSDEV: u32 = 1 << 1;
    /// `IPSET_FLAG_WITH_COUNTERS` (`enum ipset_cadt_flags`): the set was created with
    /// `counters`, each member counts packets and bytes.
    pub const IPSET_FLAG_WITH_COUNTERS: u32 = 1 << 3;
}

/// `IPPROTO_*`: `include/uapi/linux/in.h` and, for ICMPv6, `include/uapi/linux/in6.h`.
pub mod ipproto {
    /// `IPPROTO_ICMP`.
    pub const IPPROTO_ICMP: u8 = 1;
    /// `IPPROTO_ICMPV6`.
    pub const IPPROTO_ICMPV6: u8 = 58;
}

/// `include/uapi/linux/netfilter.h`: `NFPROTO_*`.
pub mod nfproto {
    /// `NFPROTO_UNSPEC`.
    pub const UNSPEC: u8 = 0;
    /// `NFPROTO_INET`.
    pub const INET: u8 = 1;
    /// `NFPROTO_IPV4`.
    pub const IPV4: u8 = 2;
    /// `NFPROTO_ARP`.
    pub const ARP: u8 = 3;
    /// `NFPROTO_NETDEV`.
    pub const NETDEV: u8 = 5;
    /// `NFPROTO_BRIDGE`.
    pub const BRIDGE: u8 = 7;
    /// `NFPROTO_IPV6`.
    pub const IPV6: u8 = 10;
}
