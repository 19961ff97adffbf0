//! The growable buffer sample lines are written into, which maps memory of its own, backed
//! by huge pages, once it is asked for many megabytes.
//!
//! Why: a one-shot render of a 100k-rule ruleset writes 57 MB of text into memory it has
//! never touched (the allocator gives freed pages back at once, docs/performance.md
//! "Memory"), and on a virtual machine each 4 KiB page costs a fault of about 2.5 µs: 35-39
//! ms, more than the whole render's budget. Faulting the same memory in 2 MiB pages costs a
//! sixth of that (`fill_fresh` against `fill_mapped` in `benches/pipeline.rs`). The mapping is our own (not the allocator's memory advised in place), so
//! the huge-page advice ends with the buffer and never reaches memory the allocator hands
//! out for something small later. A `Vec` cannot be backed this way on stable Rust, hence
//! this type; it offers only what the exposition writer uses.

use bytes::Bytes;
use memmap2::{Advice, MmapMut};

/// Buffers asked for at least this many bytes are mapped with huge pages; smaller ones are
/// ordinary heap memory, which the allocator serves better (and they are nearly always
/// reused, as the compressed storage reuses its piece buffer).
const MAPPED_MIN: usize = 2 << 20;

/// A huge page; mappings are sized in whole ones.
const HUGE_PAGE: usize = 2 << 20;

/// A byte buffer that grows like a `Vec<u8>`.
#[derive(Debug, Default)]
pub struct TextBuffer {
    storage: Storage,
}

#[derive(Debug)]
enum Storage {
    Heap(Vec<u8>),
    /// `map[..len]` is the text.
    Mapped {
        map: HugeMap,
        len: usize,
    },
}

impl Default for Storage {
    fn default() -> Self {
        Storage::Heap(Vec::new())
    }
}

impl TextBuffer {
    /// The text written so far.
    pub fn as_slice(&self) -> &[u8] {
        match &self.storage {
            Storage::Heap(vec) => vec,
            Storage::Mapped { map, len } => &map[..*len],
        }
    }

    /// Length of the text.
    pub fn len(&self) -> usize {
        match &self.storage {
            Storage::Heap(vec) => vec.len(),
            Storage::Mapped { len, .. } => *len,
        }
    }

    /// True when nothing was written since the last [`TextBuffer::clear`].
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Empties the buffer, keeping its memory.
    pub fn clear(&mut self) {
        match &mut self.storage {
            Storage::Heap(vec) => vec.clear(),
            Storage::Mapped { len, .. } => *len = 0,
        }
    }

    /// Appends one byte.
    pub fn push(&mut self, byte: u8) {
        self.extend_from_slice(&[byte]);
    }

    /// Appends `bytes`.
    #[inline]
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        match &mut self.storage {
            Storage::Heap(vec) => {
                if vec.capacity() - vec.len() >= bytes.len() || vec.len() + bytes.len() < MAPPED_MIN
                {
                    vec.extend_from_slice(bytes);
                    return;
                }
            }
            Storage::Mapped { map, len } => {
                if let Some(room) = map.get_mut(*len..*len + bytes.len()) {
                    room.copy_from_slice(bytes);
                    *len += bytes.len();
                    return;
                }
            }
        }
        self.grow_then_extend(bytes);
    }

    #[cold]
    fn grow_then_extend(&mut self, bytes: &[u8]) {
        // Doubling, as a `Vec` grows: the bytes being added are the only certain ones.
        // There is room afterwards, so the append does not come back here.
        self.reserve(self.len().max(bytes.len()), bytes.len());
        self.extend_from_slice(bytes);
    }

    /// Makes room for at least `additional` more bytes, of which `certain` are expected to
    /// be written in any case (the rest is a margin, such as room for the longest numbers).
    /// Huge pages back only the text already written and the `certain` bytes: a huge page
    /// is faulted in whole, so one under the unwritten margin would be up to 2 MiB of memory
    /// held for nothing.
    pub fn reserve(&mut self, additional: usize, certain: usize) {
        let len = self.len();
        let capacity = match &self.storage {
            Storage::Heap(vec) => vec.capacity(),
            Storage::Mapped { map, .. } => map.len(),
        };
        if len + additional <= capacity {
            return;
        }
        if len + additional >= MAPPED_MIN
            && let Some(mut map) = map_huge(len + additional, len + certain.min(additional))
        {
            map[..len].copy_from_slice(self.as_slice());
            self.storage = Storage::Mapped { map, len };
            return;
        }
        match &mut self.storage {
            Storage::Heap(vec) => vec.reserve(additional),
            // The mapping failed (address space or a limit): continue on the heap.
            Storage::Mapped { map, len } => {
                let mut vec = Vec::with_capacity(*len + additional);
                vec.extend_from_slice(&map[..*len]);
                self.storage = Storage::Heap(vec);
            }
        }
    }

    /// The text as shared bytes, handing the buffer's memory over (a heap buffer gives its
    /// spare capacity back first; a mapping's unwritten pages were never faulted in).
    pub fn into_bytes(self) -> Bytes {
        match self.storage {
            Storage::Heap(mut vec) => {
                vec.shrink_to_fit();
                Bytes::from(vec)
            }
            Storage::Mapped { map, len } => Bytes::from_owner(MappedText { map, len }),
        }
    }
}

/// An anonymous mapping that starts on a huge page.
#[derive(Debug)]
struct HugeMap {
    map: MmapMut,
    /// Where the usable part starts: the first huge page boundary.
    start: usize,
}

impl std::ops::Deref for HugeMap {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.map[self.start..]
    }
}

impl std::ops::DerefMut for HugeMap {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.map[self.start..]
    }
}

/// A mapping of at least `len` usable bytes whose first `huge_len` bytes (in whole huge
/// pages) are advised to be backed by huge pages. `None` when the mapping fails; a refused
/// advice (a kernel without transparent huge pages) only costs the speed-up.
fn map_huge(len: usize, huge_len: usize) -> Option<HugeMap> {
    // One huge page more than needed, so that the usable part can start on a boundary
    // wherever the kernel put the mapping: the unused head is never touched, so it costs
    // address space only. Text before the first boundary would be faulted in 4 KiB pages.
    let map = MmapMut::map_anon((len.div_ceil(HUGE_PAGE) + 1) * HUGE_PAGE).ok()?;
    let start = (map.as_ptr() as usize).next_multiple_of(HUGE_PAGE) - map.as_ptr() as usize;
    let huge_len = huge_len / HUGE_PAGE * HUGE_PAGE;
    if huge_len > 0
        && let Err(error) = map.advise_range(Advice::HugePage, start, huge_len)
    {
        tracing::debug!(%error, "huge pages not available for the exposition buffer");
    }
    Some(HugeMap { map, start })
}

/// The written part of a mapping, as the owner of [`Bytes`].
struct MappedText {
    map: HugeMap,
    len: usize,
}

impl AsRef<[u8]> for MappedText {
    fn as_ref(&self) -> &[u8] {
        &self.map[..self.len]
    }
}

#[cfg(test)]
mod tests {
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
        let Storage::Mapped { map, len } = &large.storage else {
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
}
