//! Growable buffers that map memory of their own, backed by huge pages, once they hold
//! megabytes: the exposition's text ([`TextBuffer`]) and the snapshot's lists.
//!
//! Why: a collection of a 100k-rule ruleset writes 57 MB of exposition and about 8 MB of
//! snapshot lists into memory it has never touched (the allocator gives freed pages back at
//! once, docs/performance.md "Memory"), and on a virtual machine each 4 KiB page costs a
//! fault of about 2.5 µs: more than the whole collection's budget. Faulting the same memory
//! in 2 MiB pages costs a sixth of that (`fill_fresh` against `fill_mapped` in
//! `benches/pipeline.rs`). The mapping is our own (not the allocator's memory advised in
//! place), so the huge-page advice ends with the buffer and never reaches memory the
//! allocator hands out for something small later. A `Vec` cannot be backed this way on
//! stable Rust, hence this type; it offers only what its users need, and holds only
//! plain-old-data values, which it reads from the mapping's bytes without `unsafe` code.

use bytemuck::Pod;
use bytes::Bytes;
use memmap2::{Advice, MmapMut};

/// Buffers asked for at least this many bytes get a mapping of their own (with huge pages
/// where [`HugeVec::reserve`] says); smaller ones are ordinary heap memory, which the allocator serves better (and they are nearly always
/// reused, as the compressed storage reuses its piece buffer).
const MAPPED_MIN: usize = 2 << 20;

/// A huge page; mappings are sized in whole ones.
const HUGE_PAGE: usize = 2 << 20;

/// A growable byte buffer: the text of an exposition family.
pub type TextBuffer = HugeVec<u8>;

/// A list that grows like a `Vec<T>` and moves into huge pages once it is large.
#[derive(Debug)]
pub struct HugeVec<T> {
    storage: Storage<T>,
}

#[derive(Debug)]
enum Storage<T> {
    Heap(Vec<T>),
    /// The first `len` values, as bytes, start the mapping.
    Mapped {
        map: HugeMap,
        len: usize,
        pages: HugePages,
    },
}

/// Which huge pages of a mapping are advised, in bytes from its start.
#[derive(Debug)]
struct HugePages {
    /// What may be written without a look at the advice: the huge pages advised so far, or
    /// the whole mapping once no more are to be.
    ready: usize,
    /// The huge pages below are advised.
    advised: usize,
    /// Huge pages are advised, as the values reach them, up to here.
    until: usize,
}

impl HugePages {
    /// The advice of a new `map` whose first `written` bytes are about to be filled, with
    /// huge pages up to `until`.
    fn new(map: &HugeMap, written: usize, until: usize) -> HugePages {
        let mut pages = HugePages {
            ready: 0,
            advised: 0,
            until: until.min(map.len()),
        };
        pages.reach(map, written);
        pages
    }

    /// Advises the huge pages that writing up to `end` reaches, as far as `until`.
    fn reach(&mut self, map: &HugeMap, end: usize) {
        let to = end.next_multiple_of(HUGE_PAGE).min(self.until);
        if to > self.advised {
            map.advise(self.advised..to);
            self.advised = to;
        }
        self.ready = if self.advised >= self.until {
            map.len()
        } else {
            self.advised
        };
    }

    /// Raises the limit of the advice to `until`: the writer declared more as certain.
    fn extend(&mut self, map: &HugeMap, until: usize) {
        if until > self.until {
            self.until = until.min(map.len());
            self.ready = self.ready.min(self.advised);
        }
    }
}

impl<T> Default for HugeVec<T> {
    fn default() -> Self {
        HugeVec {
            storage: Storage::Heap(Vec::new()),
        }
    }
}

impl<T: Pod> HugeVec<T> {
    /// The values written so far.
    pub fn as_slice(&self) -> &[T] {
        match &self.storage {
            Storage::Heap(vec) => vec,
            // The mapping starts on a huge page, so it is aligned for any `T`.
            Storage::Mapped { map, len, .. } => bytemuck::cast_slice(&map[..len * size_of::<T>()]),
        }
    }

    /// The values written so far, to change in place.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        match &mut self.storage {
            Storage::Heap(vec) => vec,
            Storage::Mapped { map, len, .. } => {
                bytemuck::cast_slice_mut(&mut map[..*len * size_of::<T>()])
            }
        }
    }

    /// The number of values.
    pub fn len(&self) -> usize {
        match &self.storage {
            Storage::Heap(vec) => vec.len(),
            Storage::Mapped { len, .. } => *len,
        }
    }

    /// True when nothing was written since the last [`HugeVec::clear`].
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Empties the list, keeping its memory.
    pub fn clear(&mut self) {
        match &mut self.storage {
            Storage::Heap(vec) => vec.clear(),
            Storage::Mapped { len, .. } => *len = 0,
        }
    }

    /// Appends one value.
    #[inline]
    pub fn push(&mut self, value: T) {
        self.extend_from_slice(std::slice::from_ref(&value));
    }

    /// Appends `values`.
    #[inline]
    pub fn extend_from_slice(&mut self, values: &[T]) {
        match &mut self.storage {
            Storage::Heap(vec) => {
                if vec.capacity() - vec.len() >= values.len()
                    || (vec.len() + values.len()) * size_of::<T>() < MAPPED_MIN
                {
                    vec.extend_from_slice(values);
                    return;
                }
            }
            Storage::Mapped { map, len, pages } => {
                let start = *len * size_of::<T>();
                let bytes: &[u8] = bytemuck::cast_slice(values);
                if start + bytes.len() <= pages.ready {
                    map[start..start + bytes.len()].copy_from_slice(bytes);
                    *len += values.len();
                    return;
                }
            }
        }
        self.prepare_then_extend(values);
    }

    /// Advises the huge pages the values reach, or grows the list, then appends them.
    #[cold]
    fn prepare_then_extend(&mut self, values: &[T]) {
        let end = (self.len() + values.len()) * size_of::<T>();
        if let Storage::Mapped { map, pages, .. } = &mut self.storage
            && end <= map.len()
        {
            pages.reach(map, end);
        } else {
            // Doubling, as a `Vec` grows: the values being added are the only certain ones.
            self.reserve(self.len().max(values.len()), values.len());
        }
        // There is room now, and advice up to the new end: the append does not come back.
        self.extend_from_slice(values);
    }

    /// Makes room for at least `additional` more values, of which `certain` are expected to
    /// be written in any case (the rest is a margin, such as room for the longest numbers).
    /// Huge pages are advised as the values reach them, and only in whole under the values
    /// already written and the `certain` ones: a huge page is faulted in whole, so one under
    /// the unwritten margin would be up to 2 MiB of memory held for nothing. (Rounding the
    /// certain part to the nearest huge page instead saved 1,400 of the 2,900 page faults
    /// of a 100k-rule render, but raised `dump`'s peak by 6 MB, past 100 MB.) A list whose
    /// length is only estimated declares all of its room certain, and risks at most its
    /// last huge page.
    pub fn reserve(&mut self, additional: usize, certain: usize) {
        let size = size_of::<T>();
        let len = self.len();
        let capacity = match &self.storage {
            Storage::Heap(vec) => vec.capacity(),
            Storage::Mapped { map, .. } => map.len() / size,
        };
        if len + additional <= capacity {
            if let Storage::Mapped { map, pages, .. } = &mut self.storage {
                pages.extend(
                    map,
                    whole_huge_pages((len + certain.min(additional)) * size),
                );
            }
            return;
        }
        if (len + additional) * size >= MAPPED_MIN
            && let Some(mut map) = HugeMap::new((len + additional) * size)
        {
            let written: &[u8] = bytemuck::cast_slice(self.as_slice());
            let until = whole_huge_pages(written.len() + certain.min(additional) * size);
            let pages = HugePages::new(&map, written.len(), until);
            map[..written.len()].copy_from_slice(written);
            self.storage = Storage::Mapped { map, len, pages };
            return;
        }
        if let Storage::Heap(vec) = &mut self.storage {
            vec.reserve(additional);
        } else {
            // The mapping failed (address space or a limit): continue on the heap.
            let mut vec = Vec::with_capacity(len + additional);
            vec.extend_from_slice(self.as_slice());
            self.storage = Storage::Heap(vec);
        }
    }

    /// Gives back what a heap list does not use (a mapping's unwritten pages were never
    /// faulted in).
    pub fn shrink_to_fit(&mut self) {
        if let Storage::Heap(vec) = &mut self.storage {
            vec.shrink_to_fit();
        }
    }
}

impl<T: Pod> Extend<T> for HugeVec<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, values: I) {
        let values = values.into_iter();
        self.reserve(values.size_hint().0, values.size_hint().0);
        for value in values {
            self.push(value);
        }
    }
}

impl<T: Pod> std::ops::Deref for HugeVec<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T: Pod> std::ops::DerefMut for HugeVec<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        self.as_mut_slice()
    }
}

impl TextBuffer {
    /// The text as shared bytes, handing the buffer's memory over (a heap buffer gives its
    /// spare capacity back first).
    pub fn into_bytes(self) -> Bytes {
        match self.storage {
            Storage::Heap(mut vec) => {
                vec.shrink_to_fit();
                Bytes::from(vec)
            }
            Storage::Mapped { map, len, .. } => Bytes::from_owner(MappedText { map, len }),
        }
    }
}

/// The whole huge pages in `len` bytes, in bytes.
fn whole_huge_pages(len: usize) -> usize {
    len / HUGE_PAGE * HUGE_PAGE
}

/// An anonymous mapping whose usable part starts on a huge page boundary.
#[derive(Debug)]
struct HugeMap {
    map: MmapMut,
    /// Where the usable part starts: the first huge page boundary.
    start: usize,
}

impl HugeMap {
    /// A mapping of at least `len` usable bytes (the mapping itself is sized in whole huge
    /// pages); `None` when the mapping fails.
    fn new(len: usize) -> Option<HugeMap> {
        // One huge page more than needed, so that the usable part can start on a boundary
        // wherever the kernel put the mapping: the unused head is never touched, so it
        // costs address space only.
        let map = MmapMut::map_anon((len.div_ceil(HUGE_PAGE) + 1) * HUGE_PAGE).ok()?;
        let start = (map.as_ptr() as usize).next_multiple_of(HUGE_PAGE) - map.as_ptr() as usize;
        Some(HugeMap { map, start })
    }

    /// Advises huge pages for `range` of the usable part. A refused advice (a kernel
    /// without transparent huge pages) only costs the speed-up.
    fn advise(&self, range: std::ops::Range<usize>) {
        if range.is_empty() {
            return;
        }
        if let Err(error) =
            self.map
                .advise_range(Advice::HugePage, self.start + range.start, range.len())
        {
            tracing::debug!(%error, "huge pages not available for a large buffer");
        }
    }
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
mod tests;
