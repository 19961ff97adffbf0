//! Unit tests of the parent module: growing, mapping, huge-page advice, typed values.

use super::*;

/// Writes `lines` numbered lines in pieces of varied length, to `buffer` and a `Vec`.
fn write_lines(buffer: &mut TextBuffer, lines: usize) -> Vec<u8> {
    let mut expected = Vec::new();
    for i in 0..lines {
        let line = format!("sample_{i}{{rule=\"{}\"}} {i}\n", "x".repeat(i % 97));
        buffer.extend_from_slice(line.as_bytes());
        expected.extend_from_slice(line.as_bytes());
    }
    buffer.push(b'#');
    expected.push(b'#');
    expected
}

#[test]
fn grows_from_heap_into_a_mapping_keeping_every_byte() {
    let mut buffer = TextBuffer::default();
    let expected = write_lines(&mut buffer, 120_000);
    assert!(expected.len() > 2 * MAPPED_MIN, "{}", expected.len());
    assert!(matches!(buffer.storage, Storage::Mapped { .. }));
    assert_eq!(buffer.as_slice(), expected);
    assert_eq!(buffer.into_bytes(), expected);
}

#[test]
fn a_large_reservation_maps_at_once_and_a_small_one_stays_on_the_heap() {
    let mut small = TextBuffer::default();
    small.reserve(MAPPED_MIN - 1, MAPPED_MIN - 1);
    assert!(matches!(small.storage, Storage::Heap(_)));

    let mut large = TextBuffer::default();
    large.extend_from_slice(b"head ");
    large.reserve(MAPPED_MIN, MAPPED_MIN / 2);
    let Storage::Mapped { map, len, .. } = &large.storage else {
        panic!("not mapped: {:?}", large.storage);
    };
    assert_eq!((map.len() % HUGE_PAGE, *len), (0, 5));
    assert_eq!(map.as_ptr() as usize % HUGE_PAGE, 0);
    let expected = [b"head ".as_slice(), &write_lines(&mut large, 10)].concat();
    assert_eq!(large.as_slice(), expected);

    large.clear();
    assert!(large.is_empty());
    large.extend_from_slice(b"again");
    assert_eq!(large.into_bytes(), b"again".as_slice());
}

#[test]
fn huge_pages_are_advised_as_the_certain_part_is_written_and_never_beyond_it() {
    let mut text = TextBuffer::default();
    // Room for three huge pages, of which two and three quarters are certain: the last one,
    // which may be used in part only, stays in small pages.
    text.reserve(3 * HUGE_PAGE, 11 * HUGE_PAGE / 4);
    let advice = |buffer: &TextBuffer| match &buffer.storage {
        Storage::Mapped { pages, .. } => (pages.advised, pages.until),
        Storage::Heap(_) => panic!("not mapped"),
    };
    assert_eq!(advice(&text), (0, 2 * HUGE_PAGE));
    text.extend_from_slice(b"x");
    assert_eq!(advice(&text), (HUGE_PAGE, 2 * HUGE_PAGE));
    text.extend_from_slice(&vec![b'y'; HUGE_PAGE]);
    assert_eq!(advice(&text), (2 * HUGE_PAGE, 2 * HUGE_PAGE));
    // Past the certain part: the margin stays in small pages.
    text.extend_from_slice(&vec![b'z'; HUGE_PAGE]);
    assert_eq!(advice(&text), (2 * HUGE_PAGE, 2 * HUGE_PAGE));
    assert_eq!(text.len(), 2 * HUGE_PAGE + 1);
    assert_eq!(&text[HUGE_PAGE - 1..HUGE_PAGE + 1], b"yy");
    assert_eq!(text[HUGE_PAGE + 1], b'z');
}

#[test]
fn lists_of_values_keep_them_across_the_move_into_a_mapping() {
    #[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
    #[repr(C)]
    struct Entry {
        a: u64,
        b: u32,
        c: u32,
    }
    let entry = |i: usize| Entry {
        a: i as u64 * 3,
        b: i as u32,
        c: !(i as u32),
    };
    let count = 3 * MAPPED_MIN / size_of::<Entry>();
    let mut list = HugeVec::default();
    let mut expected = Vec::new();
    for i in 0..count {
        list.push(entry(i));
        expected.push(entry(i));
    }
    assert!(matches!(list.storage, Storage::Mapped { .. }));
    assert_eq!(list.as_slice(), expected.as_slice());
    list[7].b = 70;
    assert_eq!(list[7], Entry { b: 70, ..entry(7) });
    let mut estimated = HugeVec::default();
    estimated.reserve(count / 2, count / 2);
    estimated.extend(expected.iter().copied());
    assert_eq!(estimated.len(), count);
    assert_eq!(estimated[count - 1], entry(count - 1));
}
