//! Compressed pieces of an exposition that join into one gzip stream without being
//! compressed again.
//!
//! A large exposition compresses to a fraction of its text. Holding the text of
//! the current publication while the next one is rendered would cost more than the memory
//! budget (docs/performance.md), so large families are kept compressed only. Each piece is
//! raw deflate ended by a full flush: the compressor forgets its history and pads to a byte,
//! so a piece decodes on its own, and pieces put one after the other are a valid deflate
//! stream (the technique pigz uses to compress in parallel). A gzip response is then the
//! pieces of the asked format between a header and a trailer, whose CRC is combined from
//! the pieces' CRCs; the text and OpenMetrics formats share every piece but their headers.

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};

/// One piece of text, compressed on its own.
#[derive(Debug, Clone)]
pub struct Segment {
    deflated: Bytes,
    /// CRC-32 of the text.
    crc: u32,
    /// Length of the text.
    len: usize,
}

impl Segment {
    /// A segment received from the collector process: `deflated` must be what
    /// [`Deflater::segment`] made of a text of `len` bytes whose CRC-32 is `crc`.
    pub(crate) fn from_parts(deflated: Bytes, crc: u32, len: usize) -> Self {
        Segment { deflated, crc, len }
    }

    /// The compressed bytes and the text's CRC-32, to send them to the server process.
    pub(crate) fn parts(&self) -> (&Bytes, u32) {
        (&self.deflated, self.crc)
    }

    /// Length of the text the segment holds.
    pub fn plain_len(&self) -> usize {
        self.len
    }

    /// Length of the compressed segment.
    pub fn deflated_len(&self) -> usize {
        self.deflated.len()
    }

    /// The text back, decompressed into `out` (whatever it held is discarded) with
    /// `inflater`, both of which reuse their memory. `None` only if the segment were
    /// corrupt, which memory that we wrote ourselves is not, but a collection never panics.
    pub fn inflate_into(&self, mut out: Vec<u8>, inflater: &mut Inflater) -> Option<Bytes> {
        out.clear();
        out.reserve(self.len);
        let decompress = &mut inflater.decompress;
        decompress.reset(false);
        decompress
            .decompress_vec(&self.deflated, &mut out, FlushDecompress::Sync)
            .ok()?;
        (out.len() == self.len).then(|| Bytes::from(out))
    }
}

/// Decompresses [`Segment`]s, reusing one decompressor's memory (its 32 KiB window).
pub struct Inflater {
    decompress: Decompress,
}

impl Default for Inflater {
    fn default() -> Self {
        Inflater {
            decompress: Decompress::new(false),
        }
    }
}

/// Compresses texts into [`Segment`]s, reusing one compressor's memory.
pub struct Deflater {
    compress: Compress,
}

impl Default for Deflater {
    fn default() -> Self {
        Deflater {
            // The fastest level: the exposition is compressed on every collection, and its
            // repetitive lines shrink well even so.
            compress: Compress::new(Compression::fast(), false),
        }
    }
}

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Deflater")
    }
}

impl Deflater {
    /// Compresses `text` into a segment that ends with a full flush; `None` if the
    /// compressor reported an error (the caller keeps the text instead).
    pub fn segment(&mut self, text: &[u8]) -> Option<Segment> {
        let compress = &mut self.compress;
        compress.reset();
        let mut out = Vec::with_capacity(text.len() / 4 + 64);
        let mut read = 0;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(4096));
            }
            let before = compress.total_in();
            compress
                .compress_vec(&text[read..], &mut out, FlushCompress::Full)
                .ok()?;
            read += usize::try_from(compress.total_in() - before).ok()?;
            // The flush is complete once all input is in and the compressor stopped short
            // of the space it had.
            if read == text.len() && out.len() < out.capacity() {
                break;
            }
        }
        // Kept for the life of the exposition: without the room left for a text that
        // compressed less well.
        out.shrink_to_fit();
        let mut crc = crc32fast::Hasher::new();
        crc.update(text);
        Some(Segment {
            deflated: Bytes::from(out),
            crc: crc.finalize(),
            len: text.len(),
        })
    }
}

/// The fixed gzip member header: deflate, no name or time, unknown OS (RFC 1952).
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// An empty final block with fixed codes: ends a deflate stream whose blocks are all
/// non-final, as every segment's are.
const FINAL_BLOCK: [u8; 2] = [0x03, 0x00];

/// The start of a gzip stream: its header and segments, with their CRC and length, kept so
/// that a small tail (the exporter's process metrics, fresh on every scrape) can end it
/// without compressing the start again.
#[derive(Debug, Clone)]
pub struct OpenGzip {
    chunks: Vec<Bytes>,
    crc: crc32fast::Hasher,
    len: u64,
}

impl OpenGzip {
    /// The gzip header followed by `segments`.
    pub fn new<'s>(segments: impl IntoIterator<Item = &'s Segment>) -> Self {
        let mut open = OpenGzip {
            chunks: vec![Bytes::from_static(&GZIP_HEADER)],
            crc: crc32fast::Hasher::new(),
            len: 0,
        };
        open.append(segments);
        open
    }

    fn append<'s>(&mut self, segments: impl IntoIterator<Item = &'s Segment>) {
        for segment in segments {
            self.crc.combine(&crc32fast::Hasher::new_with_initial_len(
                segment.crc,
                segment.len as u64,
            ));
            self.len += segment.len as u64;
            self.chunks.push(segment.deflated.clone());
        }
    }

    /// The whole stream: the start, then `tail`, then the final block and the trailer.
    pub fn close<'s>(&self, tail: impl IntoIterator<Item = &'s Segment>) -> Vec<Bytes> {
        let mut whole = self.clone();
        whole.append(tail);
        let mut trailer = Vec::with_capacity(10);
        trailer.extend_from_slice(&FINAL_BLOCK);
        trailer.extend_from_slice(&whole.crc.finalize().to_le_bytes());
        // ISIZE is the length modulo 2^32.
        trailer.extend_from_slice(&(whole.len as u32).to_le_bytes());
        whole.chunks.push(Bytes::from(trailer));
        whole.chunks
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn gunzip(chunks: &[Bytes]) -> Vec<u8> {
        let joined: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&joined[..])
            .read_to_end(&mut out)
            .expect("valid gzip");
        out
    }

    /// Text that compresses well and text that does not, as an exposition has both.
    fn texts() -> Vec<Vec<u8>> {
        let repetitive =
            b"iptables_rule_bytes_total{table=\"nat\",chain=\"KUBE-SEP\",rule=\"-j X\"} 0\n"
                .repeat(5000);
        let mut noise = Vec::new();
        let mut x: u32 = 12345;
        for _ in 0..70_000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            noise.push((x >> 16) as u8);
        }
        vec![b"# HELP a A.\n".to_vec(), Vec::new(), repetitive, noise]
    }

    #[test]
    fn every_segment_inflates_on_its_own() {
        let mut deflater = Deflater::default();
        for text in texts() {
            let segment = deflater.segment(&text).expect("compresses");
            assert_eq!(segment.plain_len(), text.len());
            let text_back = segment.inflate_into(Vec::new(), &mut Inflater::default());
            assert_eq!(text_back.expect("inflates")[..], text[..]);
        }
    }

    #[test]
    fn a_deflater_reused_for_the_next_piece_compresses_like_a_new_one() {
        let texts = texts();
        let fresh = Deflater::default().segment(&texts[2]).expect("compresses");
        let mut reused = Deflater::default();
        for text in &texts {
            reused.segment(text).expect("compresses");
        }
        // Also when the previous stream was left in the middle.
        let _ = reused
            .compress
            .compress_vec(&texts[3], &mut Vec::new(), FlushCompress::None);
        let again = reused.segment(&texts[2]).expect("compresses");
        assert_eq!(again.deflated, fresh.deflated);
    }

    #[test]
    fn joined_segments_are_one_gzip_stream_of_the_joined_texts() {
        let mut deflater = Deflater::default();
        let texts = texts();
        let segments: Vec<Segment> = texts
            .iter()
            .map(|t| deflater.segment(t).expect("compresses"))
            .collect();
        let expected: Vec<u8> = texts.concat();
        assert_eq!(gunzip(&OpenGzip::new(&segments).close([])), expected);
        // Any order and any subset, as formats pick their own headers.
        let picked = [&segments[3], &segments[0], &segments[3]];
        let expected = [&texts[3][..], &texts[0], &texts[3]].concat();
        assert_eq!(gunzip(&OpenGzip::new(picked).close([])), expected);
        // A start closed with a tail is the stream of both.
        let start = OpenGzip::new(&segments[..2]);
        assert_eq!(gunzip(&start.close(&segments[2..])), texts.concat());
    }

    #[test]
    fn no_segment_is_an_empty_gzip_stream() {
        assert_eq!(gunzip(&OpenGzip::new([]).close([])), b"");
    }

    #[test]
    fn the_repetitive_exposition_text_shrinks() {
        let text = &texts()[2];
        let segment = Deflater::default().segment(text).expect("compresses");
        assert!(
            segment.deflated_len() * 10 < text.len(),
            "{}",
            segment.deflated_len()
        );
    }
}
