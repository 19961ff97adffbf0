//! The Prometheus exposition, rendered once per collection and served many times.
//!
//! Written by hand rather than through a client library because a client library mirrors
//! values into long-lived registries (the source of stale series and reset bugs) and renders
//! on every scrape, while we render each snapshot exactly once. The sample lines of a family
//! are the same in the text format 0.0.4 and in OpenMetrics 1.0; only the `# HELP`/`# TYPE`
//! lines and the final `# EOF` differ. So each family keeps its samples once and both
//! headers, and a format is just a way of walking the chunks: no copy, no second render.

use bytes::Bytes;

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

/// One family: its two headers and its sample lines.
#[derive(Debug, Clone)]
struct Family {
    text_header: Bytes,
    openmetrics_header: Bytes,
    samples: Bytes,
}

/// A complete, immutable exposition made of families.
#[derive(Debug, Clone, Default)]
pub struct Exposition {
    families: Vec<Family>,
}

impl Exposition {
    /// The chunks that make up the exposition in `format`, in order.
    pub fn chunks(&self, format: Format) -> impl Iterator<Item = Bytes> + '_ {
        let eof = (format == Format::OpenMetrics).then(|| Bytes::from_static(b"# EOF\n"));
        self.families
            .iter()
            .flat_map(move |f| {
                let header = match format {
                    Format::Text => f.text_header.clone(),
                    Format::OpenMetrics => f.openmetrics_header.clone(),
                };
                [header, f.samples.clone()]
            })
            .chain(eof)
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
        self.chunks(format).map(|c| c.len()).sum()
    }

    /// True when the exposition holds no family.
    pub fn is_empty(&self) -> bool {
        self.families.is_empty()
    }
}

/// Collects families into an [`Exposition`].
#[derive(Debug, Default)]
pub struct ExpositionBuilder {
    families: Vec<Family>,
}

impl ExpositionBuilder {
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
        FamilyGuard {
            builder: self,
            writer: FamilyWriter::new(name, help, metric_type),
        }
    }

    /// Adds a family written on its own, for a caller that fills several at once. A
    /// family without samples is left out.
    pub fn push(&mut self, family: FamilyWriter) {
        if family.samples.is_empty() {
            return;
        }
        let FamilyWriter {
            text_header,
            openmetrics_header,
            mut samples,
            ..
        } = family;
        // The buffer grew by doubling and is kept for the life of the exposition: give the
        // spare capacity back (for a large family, a remap rather than a copy).
        samples.shrink_to_fit();
        self.families.push(Family {
            text_header: Bytes::from(text_header),
            openmetrics_header: Bytes::from(openmetrics_header),
            samples: Bytes::from(samples),
        });
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
    samples: Vec<u8>,
    /// The start of every line of the current group: name and labels but the last value.
    group_prefix: Vec<u8>,
}

impl FamilyWriter {
    /// A family with its headers and no sample yet; see [`ExpositionBuilder::family`] for
    /// what `name` and `help` must be.
    pub fn new(name: &str, help: &str, metric_type: MetricType) -> FamilyWriter {
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
            samples: Vec::new(),
            group_prefix: Vec::new(),
        }
    }

    fn empty() -> FamilyWriter {
        FamilyWriter {
            name: String::new(),
            text_header: Vec::new(),
            openmetrics_header: Vec::new(),
            samples: Vec::new(),
            group_prefix: Vec::new(),
        }
    }

    /// Writes one sample. Label names must be valid Prometheus label names; label values
    /// are escaped here.
    pub fn sample(&mut self, labels: &[(&str, &str)], value: impl SampleValue) {
        let out = &mut self.samples;
        out.extend_from_slice(self.name.as_bytes());
        if !labels.is_empty() {
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
        out.push(b' ');
        value.write_to(out);
        out.push(b'\n');
    }

    /// Starts a group of samples that share `labels` and differ by the value of one more
    /// label, `last`: each [`FamilyWriter::group_sample`] then writes the same as
    /// [`FamilyWriter::sample`] with `labels` and `(last, value)`. Per-rule series repeat
    /// their table and chain labels for every rule of a chain; rendering those once per
    /// chain, and a sample with three copies, is what keeps 100k-rule rendering within
    /// its budget.
    pub fn start_group(&mut self, labels: &[(&str, &str)], last: &str) {
        let out = &mut self.group_prefix;
        out.clear();
        out.extend_from_slice(self.name.as_bytes());
        out.push(b'{');
        for (name, value) in labels {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"=\"");
            escape_label_value(value, out);
            out.extend_from_slice(b"\",");
        }
        out.extend_from_slice(last.as_bytes());
        out.extend_from_slice(b"=\"");
    }

    /// Writes a sample of the group [`FamilyWriter::start_group`] started.
    pub fn group_sample(&mut self, last: &str, value: u64) {
        let out = &mut self.samples;
        out.extend_from_slice(&self.group_prefix);
        escape_label_value(last, out);
        // The rest of the line in one copy: `"} `, at most 20 digits, newline.
        let mut tail = [0u8; 24];
        tail[..3].copy_from_slice(b"\"} ");
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(value).as_bytes();
        tail[3..3 + digits.len()].copy_from_slice(digits);
        tail[3 + digits.len()] = b'\n';
        out.extend_from_slice(&tail[..4 + digits.len()]);
    }

    /// Makes room for `additional` more bytes of samples, so that a large family is
    /// allocated once instead of copied while it doubles.
    pub fn reserve(&mut self, additional: usize) {
        self.samples.reserve(additional);
    }

    /// The length of the family name.
    pub fn name_len(&self) -> usize {
        self.name.len()
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

/// Escapes a label value: backslash, double quote and newline, as both formats require.
fn escape_label_value(value: &str, out: &mut Vec<u8>) {
    let mut rest = value.as_bytes();
    // Most values (rule texts without their comments) need no escape and are copied whole
    // after one vectorised search.
    while let Some(i) = memchr::memchr3(b'\\', b'"', b'\n', rest) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(match rest[i] {
            b'\\' => b"\\\\",
            b'"' => b"\\\"",
            _ => b"\\n",
        });
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
}

/// Escapes a help text (backslash and newline; OpenMetrics also reads `\"`, which we never
/// produce since our help texts hold no quotes).
fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
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
