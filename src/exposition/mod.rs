//! The Prometheus exposition, rendered once per collection and served many times.
//!
//! Written by hand rather than through a client library because a client library mirrors
//! values into long-lived registries (the source of stale series and reset bugs) and renders
//! on every scrape, while we render each snapshot exactly once. The sample lines of a family
//! are the same in the text format 0.0.4 and in OpenMetrics 1.0; only the `# HELP`/`# TYPE`
//! lines and the final `# EOF` differ. So each family keeps its samples once and both
//! headers, and a format is just a way of walking the chunks: no copy, no second render.

use bytes::Bytes;

pub mod deflate;
mod escape;

use deflate::{Deflater, OpenGzip, Segment};
use escape::{escape_help, escape_label_value};

/// A wire format of the exposition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics text format 1.0.0.
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` header value of the format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// The type of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// A monotonic counter; its name must end in `_total`.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Untyped (`unknown` in OpenMetrics).
    Untyped,
}

/// How an exposition keeps its sample lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Storage {
    /// As text: for the one-shot outputs, which write it once and exit.
    #[default]
    Plain,
    /// Compressed piece by piece while it is written (see [`deflate`]), with the text
    /// kept besides only for families of at most `keep_plain` bytes. For the long-running
    /// modes: scrapes of small families cost no decompression, while a large exposition
    /// is held in a fraction of its text's size.
    Compressed {
        /// The largest family whose text is kept.
        keep_plain: usize,
    },
}

impl Storage {
    /// What the long-running modes use: the families of rulesets of some thousand rules
    /// keep their text too (plain scrapes of them cost no decompression); the per-rule
    /// families of a kube-proxy node are kept compressed only, which keeps the server
    /// within its memory budget (docs/performance.md).
    pub const LONG_RUNNING: Storage = Storage::Compressed {
        keep_plain: 8 << 20,
    };
}

/// Text per piece of a family: large enough for compression to work, small enough that a
/// piece being written or decompressed costs little memory.
const PIECE_LEN: usize = 256 * 1024;

/// Room past a piece's length for the line that crosses it.
const LONG_LINE: usize = 4096;

/// A piece of an exposition: its text, its compressed form, or both (never neither).
#[derive(Debug, Clone)]
struct Chunk {
    plain: Option<Bytes>,
    segment: Option<Segment>,
}

impl Chunk {
    fn plain(text: impl Into<Bytes>) -> Chunk {
        Chunk {
            plain: Some(text.into()),
            segment: None,
        }
    }

    fn len(&self) -> usize {
        match (&self.plain, &self.segment) {
            (Some(text), _) => text.len(),
            (None, Some(segment)) => segment.plain_len(),
            (None, None) => 0,
        }
    }

    /// The text, decompressed into a buffer of `recycler` if only the compressed form is
    /// kept.
    fn text(&self, recycler: &mut Recycler) -> Bytes {
        if let Some(text) = &self.plain {
            return text.clone();
        }
        let text = self
            .segment
            .as_ref()
            .and_then(|segment| {
                let buffer = recycler.buffer();
                segment.inflate_into(buffer, &mut recycler.inflater)
            })
            .map(|text| recycler.hand_out(text));
        text.unwrap_or_else(|| {
            // Cannot happen for a segment we compressed ourselves; the response then ends
            // short of its Content-Length and the client sees a failed scrape, not a
            // wrong number.
            tracing::error!("an exposition piece failed to decompress");
            Bytes::new()
        })
    }

    /// The compressed form, compressed now with `deflater` if only the text is kept.
    fn segment(&self, deflater: &mut Option<Deflater>) -> Option<Segment> {
        match (&self.segment, &self.plain) {
            (Some(segment), _) => Some(segment.clone()),
            (None, Some(text)) => deflater.get_or_insert_default().segment(text),
            (None, None) => None,
        }
    }
}

/// Decompressed pieces handed out at most, for reuse of their buffers.
const RECYCLED: usize = 8;

/// Reuses the buffers of the pieces a reader of [`Exposition::chunks`] decompressed once
/// the reader dropped them (a socket sent them, a file got them). The allocator gives freed
/// pages back at once (docs/performance.md, "Memory"), so a new buffer per piece meant
/// faulting in every page of the whole text again on every plain scrape.
#[derive(Default)]
struct Recycler {
    /// The pieces handed out, oldest first.
    handed_out: std::collections::VecDeque<Bytes>,
    inflater: deflate::Inflater,
}

impl Recycler {
    /// An empty buffer: the one of the oldest piece handed out if nobody holds it any
    /// more, else a new one.
    fn buffer(&mut self) -> Vec<u8> {
        // Room for any piece but one with a line longer than 4 KiB.
        let new = || Vec::with_capacity(PIECE_LEN + LONG_LINE);
        let Some(oldest) = self.handed_out.pop_front() else {
            return new();
        };
        match oldest.try_into_mut() {
            Ok(mut unused) => {
                // Emptied first: the conversion moves what the buffer holds to its start.
                unused.clear();
                Vec::from(unused)
            }
            Err(in_use) => {
                self.handed_out.push_front(in_use);
                new()
            }
        }
    }

    /// Hands `piece` out, keeping a reference to take its buffer back later.
    fn hand_out(&mut self, piece: Bytes) -> Bytes {
        if self.handed_out.len() == RECYCLED {
            self.handed_out.pop_front();
        }
        self.handed_out.push_back(piece.clone());
        piece
    }
}

/// One family: its two headers and its sample lines.
#[derive(Debug, Clone)]
struct Family {
    text_header: Chunk,
    openmetrics_header: Chunk,
    samples: Vec<Chunk>,
}

/// A complete, immutable exposition made of families.
#[derive(Debug, Clone, Default)]
pub struct Exposition {
    families: Vec<Family>,
}

/// The line that ends an OpenMetrics exposition.
const EOF: &[u8] = b"# EOF\n";

impl Exposition {
    /// The pieces in `format`, without the final `# EOF` of OpenMetrics.
    fn body(&self, format: Format) -> impl Iterator<Item = &Chunk> + '_ {
        self.families.iter().flat_map(move |f| {
            let header = match format {
                Format::Text => &f.text_header,
                Format::OpenMetrics => &f.openmetrics_header,
            };
            std::iter::once(header).chain(&f.samples)
        })
    }

    fn pieces(&self, format: Format) -> impl Iterator<Item = &Chunk> + '_ {
        static EOF_CHUNK: std::sync::LazyLock<Chunk> =
            std::sync::LazyLock::new(|| Chunk::plain(Bytes::from_static(EOF)));
        let eof = (format == Format::OpenMetrics).then(|| &*EOF_CHUNK);
        self.body(format).chain(eof)
    }

    /// [`Exposition::chunks`] of this exposition followed by the families of `tail`, as
    /// one exposition (a single `# EOF` at the end).
    pub fn chunks_then<'a>(
        &'a self,
        tail: &'a Exposition,
        format: Format,
    ) -> impl Iterator<Item = Bytes> + 'a {
        let mut recycler = Recycler::default();
        self.body(format)
            .chain(tail.pieces(format))
            .map(move |chunk| chunk.text(&mut recycler))
    }

    /// Length of [`Exposition::chunks_then`].
    pub fn len_then(&self, tail: &Exposition, format: Format) -> usize {
        self.body(format).map(Chunk::len).sum::<usize>() + tail.len(format)
    }

    /// The start of a gzip stream of this exposition without its `# EOF`, for
    /// [`Exposition::close_gzip`]; `None` if compression failed.
    pub fn open_gzip(&self, format: Format) -> Option<OpenGzip> {
        let mut deflater = None;
        let segments = self
            .body(format)
            .map(|c| c.segment(&mut deflater))
            .collect::<Option<Vec<Segment>>>()?;
        Some(OpenGzip::new(&segments))
    }

    /// The gzip stream of `start`'s exposition followed by this one's families (and
    /// `# EOF`): only this exposition, small, is compressed here.
    pub fn close_gzip(&self, start: &OpenGzip, format: Format) -> Option<Vec<Bytes>> {
        let mut deflater = None;
        let segments = self
            .pieces(format)
            .map(|c| c.segment(&mut deflater))
            .collect::<Option<Vec<Segment>>>()?;
        Some(start.close(&segments))
    }

    /// The text of the exposition in `format`, in order, piece by piece. Pieces kept only
    /// compressed are decompressed as the iterator reaches them, which takes CPU time:
    /// iterate off the I/O threads when
    /// [`Exposition::is_plain`] is false.
    pub fn chunks(&self, format: Format) -> impl Iterator<Item = Bytes> + '_ {
        let mut recycler = Recycler::default();
        self.pieces(format)
            .map(move |chunk| chunk.text(&mut recycler))
    }

    /// True when every piece's text is kept, so [`Exposition::chunks`] only shares buffers.
    pub fn is_plain(&self) -> bool {
        self.families
            .iter()
            .all(|f| f.samples.iter().all(|c| c.plain.is_some()))
    }

    /// The exposition in `format` as a gzip stream, in chunks: the compressed pieces put
    /// together, after compressing those kept only as text. `None` if compression failed.
    pub fn gzip(&self, format: Format) -> Option<Vec<Bytes>> {
        Exposition::default().close_gzip(&self.open_gzip(format)?, format)
    }

    /// The whole exposition in `format` as one buffer.
    pub fn to_vec(&self, format: Format) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len(format));
        for chunk in self.chunks(format) {
            out.extend_from_slice(&chunk);
        }
        out
    }

    /// Length in bytes of the exposition in `format`.
    pub fn len(&self, format: Format) -> usize {
        self.pieces(format).map(Chunk::len).sum()
    }

    /// True when the exposition holds no family.
    pub fn is_empty(&self) -> bool {
        self.families.is_empty()
    }
}

mod wire;
pub use wire::WireError;

/// Collects families into an [`Exposition`].
#[derive(Debug, Default)]
pub struct ExpositionBuilder {
    storage: Storage,
    families: Vec<Family>,
}

impl ExpositionBuilder {
    /// A builder whose families keep their samples as `storage` says.
    pub fn new(storage: Storage) -> Self {
        ExpositionBuilder {
            storage,
            families: Vec::new(),
        }
    }

    /// Starts a family that joins the exposition when the returned writer drops. A
    /// family that gets no sample is left out, as an empty `# TYPE` block says nothing.
    ///
    /// `name` and `help` must be valid (they are the program's own constants or names it
    /// validated); a family name must not repeat within one exposition.
    pub fn family<'b>(
        &'b mut self,
        name: &str,
        help: &str,
        metric_type: MetricType,
    ) -> FamilyGuard<'b> {
        let writer = self.writer(name, help, metric_type);
        FamilyGuard {
            builder: self,
            writer,
        }
    }

    /// A family writer for [`ExpositionBuilder::push`], for a caller that fills several
    /// families at once; the same rules as for [`ExpositionBuilder::family`] apply.
    pub fn writer(&self, name: &str, help: &str, metric_type: MetricType) -> FamilyWriter {
        FamilyWriter::new(name, help, metric_type, self.storage)
    }

    /// Adds a family written on its own. A family without samples is left out.
    pub fn push(&mut self, family: FamilyWriter) {
        if let Some(family) = family.finish() {
            self.families.push(family);
        }
    }

    /// Appends every family of an already rendered exposition (shares its buffers).
    pub fn extend(&mut self, other: &Exposition) {
        self.families.extend(other.families.iter().cloned());
    }

    /// The finished exposition.
    pub fn finish(self) -> Exposition {
        Exposition {
            families: self.families,
        }
    }
}

/// A [`FamilyWriter`] that joins its builder's exposition when it drops.
pub struct FamilyGuard<'b> {
    builder: &'b mut ExpositionBuilder,
    writer: FamilyWriter,
}

impl std::ops::Deref for FamilyGuard<'_> {
    type Target = FamilyWriter;

    fn deref(&self) -> &FamilyWriter {
        &self.writer
    }
}

impl std::ops::DerefMut for FamilyGuard<'_> {
    fn deref_mut(&mut self) -> &mut FamilyWriter {
        &mut self.writer
    }
}

impl Drop for FamilyGuard<'_> {
    fn drop(&mut self) {
        let writer = std::mem::replace(&mut self.writer, FamilyWriter::empty());
        self.builder.push(writer);
    }
}

/// The samples of one family, with its headers.
#[derive(Debug)]
pub struct FamilyWriter {
    name: String,
    text_header: Vec<u8>,
    openmetrics_header: Vec<u8>,
    storage: Storage,
    /// The samples not yet cut into a piece.
    samples: Vec<u8>,
    /// The pieces cut so far (compressed storage only).
    pieces: Vec<Chunk>,
    /// Length of the text of `pieces`.
    cut_len: usize,
    deflater: Option<Deflater>,
    /// Scratch for [`FamilyWriter::sample`].
    labels: Labels,
}

impl FamilyWriter {
    fn new(name: &str, help: &str, metric_type: MetricType, storage: Storage) -> FamilyWriter {
        let (text_type, om_type) = match metric_type {
            MetricType::Counter => ("counter", "counter"),
            MetricType::Gauge => ("gauge", "gauge"),
            MetricType::Untyped => ("untyped", "unknown"),
        };
        // OpenMetrics names a counter family without its `_total` sample suffix.
        let om_name = match metric_type {
            MetricType::Counter => name.strip_suffix("_total").unwrap_or(name),
            _ => name,
        };
        let help = escape_help(help);
        FamilyWriter {
            name: name.to_owned(),
            text_header: format!("# HELP {name} {help}\n# TYPE {name} {text_type}\n").into(),
            openmetrics_header: format!("# HELP {om_name} {help}\n# TYPE {om_name} {om_type}\n")
                .into(),
            storage,
            samples: Vec::new(),
            pieces: Vec::new(),
            cut_len: 0,
            deflater: None,
            labels: Labels::default(),
        }
    }

    fn empty() -> FamilyWriter {
        FamilyWriter::new("", "", MetricType::Untyped, Storage::Plain)
    }

    /// Cuts the samples written so far into a piece once there is a piece's worth.
    fn cut_if_full(&mut self) {
        if self.samples.len() >= PIECE_LEN {
            self.cut();
        }
    }

    /// Moves the samples written so far into a piece: compressed for compressed
    /// storage, with the text kept while the family is within the storage's `keep_plain`.
    fn cut(&mut self) {
        if self.samples.is_empty() {
            return;
        }
        self.cut_len += self.samples.len();
        let segment = match self.storage {
            Storage::Plain => None,
            Storage::Compressed { .. } => {
                self.deflater.get_or_insert_default().segment(&self.samples)
            }
        };
        let keep = self.drop_text_over_limit() || segment.is_none();
        let plain = if keep {
            // A new piece's buffer at its size: a family grown in one buffer would be
            // copied at every doubling.
            let next = Vec::with_capacity(PIECE_LEN + LONG_LINE);
            Some(Bytes::from(std::mem::replace(&mut self.samples, next)))
        } else {
            // The buffer is written again rather than a new one faulted in: that is most
            // of what rendering a large family costs.
            self.samples.clear();
            None
        };
        self.pieces.push(Chunk { plain, segment });
    }

    /// Drops the text of the compressed pieces once the family outgrew what the storage
    /// keeps as text; true while it has not.
    fn drop_text_over_limit(&mut self) -> bool {
        let within = match self.storage {
            Storage::Plain => true,
            Storage::Compressed { keep_plain } => self.cut_len <= keep_plain,
        };
        if !within {
            for piece in self.pieces.iter_mut().filter(|p| p.segment.is_some()) {
                piece.plain = None;
            }
        }
        within
    }

    /// The finished family; `None` when it has no sample.
    fn finish(mut self) -> Option<Family> {
        self.cut();
        if self.pieces.is_empty() {
            return None;
        }
        let headers = [
            std::mem::take(&mut self.text_header),
            std::mem::take(&mut self.openmetrics_header),
        ];
        let [text_header, openmetrics_header] = match self.storage {
            Storage::Plain => headers.map(Chunk::plain),
            Storage::Compressed { .. } => {
                let deflater = self.deflater.get_or_insert_default();
                headers.map(|text| Chunk {
                    segment: deflater.segment(&text),
                    plain: Some(Bytes::from(text)),
                })
            }
        };
        Some(Family {
            text_header,
            openmetrics_header,
            samples: self.pieces,
        })
    }

    /// Writes one sample. Label names must be valid Prometheus label names; label values
    /// are escaped here.
    pub fn sample(&mut self, labels: &[(&str, &str)], value: impl SampleValue) {
        // The writer's own scratch: a family of one sample per chain would otherwise
        // allocate once per line.
        let mut escaped = std::mem::take(&mut self.labels);
        escaped.set(labels);
        self.labelled_sample(&escaped, value);
        self.labels = escaped;
    }

    /// Writes one sample with labels already escaped, which several families can share
    /// (the bytes and packets families of a rule carry the same labels).
    pub fn labelled_sample(&mut self, labels: &Labels, value: impl SampleValue) {
        let out = &mut self.samples;
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(&labels.0);
        out.push(b' ');
        value.write_to(out);
        out.push(b'\n');
        self.cut_if_full();
    }
}

/// A set of labels, escaped and written as the exposition formats write them (`{a="1"}`,
/// nothing for no label), for [`FamilyWriter::labelled_sample`]; reusable.
#[derive(Debug, Default)]
pub struct Labels(Vec<u8>);

impl Labels {
    /// Replaces the labels by `labels`, escaping their values. Label names must be valid
    /// Prometheus label names.
    pub fn set(&mut self, labels: &[(&str, &str)]) {
        let out = &mut self.0;
        out.clear();
        if labels.is_empty() {
            return;
        }
        out.push(b'{');
        for (i, (name, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"=\"");
            escape_label_value(value, out);
            out.push(b'"');
        }
        out.push(b'}');
    }
}

/// A value a sample can carry.
pub trait SampleValue {
    /// Appends the value as the exposition formats write it.
    fn write_to(&self, out: &mut Vec<u8>);
}

impl SampleValue for u64 {
    fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(itoa::Buffer::new().format(*self).as_bytes());
    }
}

impl SampleValue for f64 {
    fn write_to(&self, out: &mut Vec<u8>) {
        if self.is_nan() {
            out.extend_from_slice(b"NaN");
        } else if self.is_infinite() {
            out.extend_from_slice(if *self > 0.0 { b"+Inf" } else { b"-Inf" });
        } else {
            out.extend_from_slice(self.to_string().as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(format: Format, build: impl FnOnce(&mut ExpositionBuilder)) -> String {
        let mut builder = ExpositionBuilder::default();
        build(&mut builder);
        String::from_utf8(builder.finish().to_vec(format)).expect("utf-8")
    }

    #[test]
    fn text_format_counter() {
        let out = render(Format::Text, |b| {
            let mut f = b.family("x_bytes_total", "Bytes.", MetricType::Counter);
            f.sample(&[("a", "1"), ("b", "q\"\\\nz")], 5u64);
            f.sample(&[], 7u64);
        });
        assert_eq!(
            out,
            "# HELP x_bytes_total Bytes.\n# TYPE x_bytes_total counter\n\
             x_bytes_total{a=\"1\",b=\"q\\\"\\\\\\nz\"} 5\nx_bytes_total 7\n"
        );
    }

    #[test]
    fn openmetrics_names_counter_family_without_total_and_ends_with_eof() {
        let out = render(Format::OpenMetrics, |b| {
            b.family("x_bytes_total", "Bytes.", MetricType::Counter)
                .sample(&[], 1u64);
            b.family("y_total", "Count.", MetricType::Untyped)
                .sample(&[], 2u64);
        });
        assert_eq!(
            out,
            "# HELP x_bytes Bytes.\n# TYPE x_bytes counter\nx_bytes_total 1\n\
             # HELP y_total Count.\n# TYPE y_total unknown\ny_total 2\n# EOF\n"
        );
    }

    #[test]
    fn family_without_samples_is_left_out() {
        let out = render(Format::Text, |b| {
            b.family("empty", "Nothing.", MetricType::Gauge);
        });
        assert_eq!(out, "");
    }

    #[test]
    fn float_values() {
        let out = render(Format::Text, |b| {
            let mut f = b.family("g", "G.", MetricType::Gauge);
            f.sample(&[], 0.25f64);
            f.sample(&[], f64::NAN);
            f.sample(&[], f64::INFINITY);
        });
        assert!(out.ends_with("g 0.25\ng NaN\ng +Inf\n"), "{out}");
    }

    /// A family of `lines` samples, each about 80 bytes.
    fn large_family(builder: &mut ExpositionBuilder, lines: usize) {
        let mut family = builder.family("r_bytes_total", "R.", MetricType::Counter);
        for i in 0..lines {
            let rule = format!("-s 10.0.{}.{}/32 -j ACCEPT", i / 250, i % 250);
            family.sample(
                &[("table", "filter"), ("chain", "INPUT"), ("rule", &rule)],
                i as u64,
            );
        }
    }

    #[test]
    fn compressed_storage_gives_back_the_same_text_whatever_it_keeps() {
        // Four pieces and a bit.
        let lines = 4 * PIECE_LEN / 80;
        let expected = render(Format::Text, |b| large_family(b, lines));
        assert!(expected.len() > 4 * PIECE_LEN, "{}", expected.len());
        for (keep_plain, plain_kept) in [(0, false), (2 * PIECE_LEN, false), (usize::MAX, true)] {
            let mut builder = ExpositionBuilder::new(Storage::Compressed { keep_plain });
            large_family(&mut builder, lines);
            builder
                .family("small", "S.", MetricType::Gauge)
                .sample(&[], 1u64);
            let exposition = builder.finish();
            assert_eq!(exposition.is_plain(), plain_kept, "keep_plain {keep_plain}");
            let text = String::from_utf8(exposition.to_vec(Format::Text)).expect("utf-8");
            assert_eq!(text.len(), exposition.len(Format::Text));
            assert!(text.starts_with(&expected), "keep_plain {keep_plain}");
            assert!(
                text.ends_with("\n# TYPE small gauge\nsmall 1\n"),
                "keep_plain {keep_plain}"
            );
            let family = &exposition.families[0];
            assert!(family.samples.len() > 4, "{} pieces", family.samples.len());
            assert!(family.samples.iter().all(|p| p.segment.is_some()));
        }
    }

    #[test]
    fn pieces_read_one_after_the_other_reuse_one_buffer() {
        let mut builder = ExpositionBuilder::new(Storage::Compressed { keep_plain: 0 });
        large_family(&mut builder, 4 * PIECE_LEN / 80);
        let exposition = builder.finish();
        let mut buffers = Vec::new();
        let mut text = Vec::new();
        for chunk in exposition.chunks(Format::Text) {
            buffers.push(chunk.as_ptr());
            text.extend_from_slice(&chunk);
        }
        // The header is kept as text; every piece after the first reuses its buffer.
        buffers.sort();
        buffers.dedup();
        assert_eq!(buffers.len(), 2, "{buffers:?}");
        let expected = render(Format::Text, |b| large_family(b, 4 * PIECE_LEN / 80));
        assert_eq!(String::from_utf8(text).expect("utf-8"), expected);

        // Pieces a reader still holds are never written again.
        let held: Vec<Bytes> = exposition.chunks(Format::Text).collect();
        let joined: Vec<u8> = held.iter().flat_map(|c| c.iter().copied()).collect();
        assert_eq!(String::from_utf8(joined).expect("utf-8"), expected);
    }

    #[test]
    fn length_matches_rendered_bytes() {
        let mut builder = ExpositionBuilder::default();
        builder
            .family("a_total", "A.", MetricType::Counter)
            .sample(&[("l", "v")], 3u64);
        let exposition = builder.finish();
        for format in [Format::Text, Format::OpenMetrics] {
            assert_eq!(exposition.len(format), exposition.to_vec(format).len());
        }
    }
}
