use super::*;

fn counters(packets: u64, bytes: u64) -> Counters {
    Counters { packets, bytes }
}

fn entity(family: Family, tag: &str, description: &str, traffic: Traffic) -> TagEntity {
    TagEntity {
        family,
        tag: tag.to_owned(),
        description: description.to_owned(),
        traffic,
    }
}

fn view(entities: Vec<TagEntity>) -> TagView {
    TagView {
        entities,
        problems: Vec::new(),
    }
}

fn single(tag: &str) -> Layout {
    Layout::Single {
        family: Family::Ipv4,
        tag: tag.to_owned(),
    }
}

fn both(view: &TagView, unit: Unit, layout: &Layout) -> (String, String) {
    let graphs = graphs(view, unit, layout);
    (config(&graphs), fetch(&graphs))
}

#[test]
fn single_tag_graph() {
    let view = view(vec![entity(
        Family::Ipv4,
        "unauthssh",
        "Unauthorized SSH traffic received",
        Traffic::Single(counters(3, 180)),
    )]);
    let (config, fetch) = both(&view, Unit::Bytes, &single("unauthssh"));
    assert_eq!(
        config,
        "graph_title Unauthorized SSH traffic received\n\
         graph_args --base 1000\n\
         graph_vlabel bytes per ${graph_period}\n\
         graph_category network\n\
         unauthssh.label Unauthorized SSH traffic received\n\
         unauthssh.type DERIVE\n\
         unauthssh.min 0\n"
    );
    assert_eq!(fetch, "unauthssh.value 180\n");
}

#[test]
fn pair_is_one_sent_received_graph() {
    let view = view(vec![entity(
        Family::Ipv4,
        "web4",
        "Combined web",
        Traffic::Paired {
            up: Some(counters(10, 5000)),
            down: Some(counters(12, 700)),
        },
    )]);
    let (config, fetch) = both(&view, Unit::Bytes, &single("web4"));
    assert_eq!(
        config,
        "graph_title Combined web\n\
         graph_args --base 1000\n\
         graph_vlabel bytes in (-) / out (+) per ${graph_period}\n\
         graph_category network\n\
         down.label Combined web\n\
         down.type DERIVE\n\
         down.min 0\n\
         down.graph no\n\
         up.label Combined web\n\
         up.type DERIVE\n\
         up.min 0\n\
         up.negative down\n"
    );
    assert_eq!(fetch, "down.value 700\nup.value 5000\n");
}

#[test]
fn a_lone_half_still_graphs() {
    let view = view(vec![entity(
        Family::Ipv4,
        "out",
        "out",
        Traffic::Paired {
            up: Some(counters(1, 60)),
            down: None,
        },
    )]);
    let (config, fetch) = both(&view, Unit::Packets, &single("out"));
    assert_eq!(
        config,
        "graph_title out\n\
         graph_args --base 1000\n\
         graph_vlabel packets per ${graph_period}\n\
         graph_category network\n\
         up.label out\n\
         up.type DERIVE\n\
         up.min 0\n"
    );
    assert_eq!(fetch, "up.value 1\n");
}

#[test]
fn units() {
    let view = view(vec![entity(
        Family::Ipv4,
        "t",
        "t",
        Traffic::Single(counters(7, 1000)),
    )]);
    for (unit, value) in [
        (Unit::Bits, "8000"),
        (Unit::Bytes, "1000"),
        (Unit::Packets, "7"),
    ] {
        let (config, fetch) = both(&view, unit, &single("t"));
        assert_eq!(fetch, format!("t.value {value}\n"));
        assert!(
            config.contains(&format!("graph_vlabel {} per ", unit.as_str())),
            "{config}"
        );
        assert_eq!(unit.as_str().parse(), Ok(unit));
    }
    assert_eq!(
        "octets".parse::<Unit>(),
        Err(UnknownUnit("octets".to_owned()))
    );
}

#[test]
fn names_are_sanitised_and_unique() {
    assert_eq!(sanitise("web-4.x"), "web_4_x");
    assert_eq!(sanitise("4web"), "_4web");
    assert_eq!(sanitise("é"), "_");
    let view = view(vec![
        entity(
            Family::Ipv4,
            "a.b",
            "first",
            Traffic::Single(counters(1, 1)),
        ),
        entity(
            Family::Ipv4,
            "a-b",
            "second",
            Traffic::Single(counters(2, 2)),
        ),
        entity(
            Family::Ipv4,
            "a_b",
            "third",
            Traffic::Single(counters(3, 3)),
        ),
        entity(Family::Ipv6, "a-b", "v6", Traffic::Single(counters(4, 4))),
    ]);
    assert_eq!(
        suggest(&view),
        "ipv4_a_b\nipv4_a_b_2\nipv4_a_b_3\nipv6_a_b\n"
    );
    let (_, fetch) = both(&view, Unit::Packets, &Layout::Multigraph);
    assert_eq!(
        fetch,
        "multigraph traffic_accounting_ipv4\n\
         a_b.value 1\n\
         a_b_2.value 2\n\
         a_b_3.value 3\n\
         multigraph traffic_accounting_ipv4.a_b\n\
         a_b.value 1\n\
         multigraph traffic_accounting_ipv4.a_b_2\n\
         a_b.value 2\n\
         multigraph traffic_accounting_ipv4.a_b_3\n\
         a_b.value 3\n\
         multigraph traffic_accounting_ipv6\n\
         a_b.value 4\n\
         multigraph traffic_accounting_ipv6.a_b\n\
         a_b.value 4\n"
    );
    // A wildcard symlink may name the tag as written or by its sanitised name.
    assert_eq!(
        both(&view, Unit::Packets, &single("a-b")).1,
        "a_b.value 2\n"
    );
    assert_eq!(
        both(&view, Unit::Packets, &single("a_b_2")).1,
        "a_b.value 2\n"
    );
    assert_eq!(both(&view, Unit::Packets, &single("zzz")).1, "");
}

#[test]
fn pair_fields_do_not_collide_with_other_tags() {
    let view = view(vec![
        entity(
            Family::Ipv4,
            "x",
            "x",
            Traffic::Paired {
                up: Some(counters(1, 1)),
                down: Some(counters(2, 2)),
            },
        ),
        entity(
            Family::Ipv4,
            "x-up",
            "x-up",
            Traffic::Single(counters(3, 3)),
        ),
    ]);
    let graphs = graphs(&view, Unit::Packets, &Layout::Multigraph);
    let names: Vec<&str> = graphs[0].fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["x_down", "x_up", "x_up_2"]);
    assert_eq!(
        graphs[0].fields[1].draw,
        Draw::Above {
            negative: "x_down".to_owned()
        }
    );
}

#[test]
fn multigraph_has_a_root_per_family_and_a_graph_per_tag() {
    let view = view(vec![
        entity(
            Family::Ipv4,
            "ssh",
            "SSH\nattempts",
            Traffic::Single(counters(2, 120)),
        ),
        entity(
            Family::Ipv4,
            "web",
            "Web",
            Traffic::Paired {
                up: Some(counters(4, 400)),
                down: Some(counters(5, 500)),
            },
        ),
    ]);
    let (config, fetch) = both(&view, Unit::Bits, &Layout::Multigraph);
    assert_eq!(
        config,
        "multigraph traffic_accounting_ipv4\n\
         graph_title IPv4 traffic accounting\n\
         graph_args --base 1000\n\
         graph_vlabel bits in (-) / out (+) per ${graph_period}\n\
         graph_category network\n\
         ssh.label SSH attempts\n\
         ssh.type DERIVE\n\
         ssh.min 0\n\
         web_down.label Web\n\
         web_down.type DERIVE\n\
         web_down.min 0\n\
         web_down.graph no\n\
         web_up.label Web\n\
         web_up.type DERIVE\n\
         web_up.min 0\n\
         web_up.negative web_down\n\
         multigraph traffic_accounting_ipv4.ssh\n\
         graph_title SSH attempts\n\
         graph_args --base 1000\n\
         graph_vlabel bits per ${graph_period}\n\
         graph_category network\n\
         ssh.label SSH attempts\n\
         ssh.type DERIVE\n\
         ssh.min 0\n\
         multigraph traffic_accounting_ipv4.web\n\
         graph_title Web\n\
         graph_args --base 1000\n\
         graph_vlabel bits in (-) / out (+) per ${graph_period}\n\
         graph_category network\n\
         down.label Web\n\
         down.type DERIVE\n\
         down.min 0\n\
         down.graph no\n\
         up.label Web\n\
         up.type DERIVE\n\
         up.min 0\n\
         up.negative down\n"
    );
    assert_eq!(
        fetch,
        "multigraph traffic_accounting_ipv4\n\
         ssh.value 960\n\
         web_down.value 4000\n\
         web_up.value 3200\n\
         multigraph traffic_accounting_ipv4.ssh\n\
         ssh.value 960\n\
         multigraph traffic_accounting_ipv4.web\n\
         down.value 4000\n\
         up.value 3200\n"
    );
}

#[test]
fn an_empty_view_graphs_nothing() {
    let empty = TagView::default();
    assert!(graphs(&empty, Unit::Bytes, &Layout::Multigraph).is_empty());
    assert_eq!(suggest(&empty), "");
}
