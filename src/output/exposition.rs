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
    /// Starts a family. Its samples are written through the returned writer; a family that
    /// gets no sample is left out, as an empty `# TYPE` block says nothing.
    ///
    /// `name` and `help` must be valid (they are the program's own constants or names it
    /// validated); a family name must not repeat within one exposition.
    pub fn family<'b>(
        &'b mut self,
        name: &'b str,
        help: &str,
        metric_type: MetricType,
    ) -> FamilyWriter<'b> {
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
            builder: self,
            name,
            text_header: format!("# HELP {name} {help}\n# TYPE {name} {text_type}\n"),
            openmetrics_header: format!("# HELP {om_name} {help}\n# TYPE {om_name} {om_type}\n"),
            samples: Vec::new(),
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

/// Writes the samples of one family; the family joins the exposition when the writer drops.
pub struct FamilyWriter<'b> {
    builder: &'b mut ExpositionBuilder,
    name: &'b str,
    text_header: String,
    openmetrics_header: String,
    samples: Vec<u8>,
}

impl FamilyWriter<'_> {
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
}

impl Drop for FamilyWriter<'_> {
    fn drop(&mut self) {
        if self.samples.is_empty() {
            return;
        }
        // The buffer grew by doubling and is kept for the life of the exposition: give the
        // spare capacity back (for a large family, a remap rather than a copy).
        self.samples.shrink_to_fit();
        self.builder.families.push(Family {
            text_header: Bytes::from(std::mem::take(&mut self.text_header)),
            openmetrics_header: Bytes::from(std::mem::take(&mut self.openmetrics_header)),
            samples: Bytes::from(std::mem::take(&mut self.samples)),
        });
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
    let bytes = value.as_bytes();
    // Most values (rule texts without their comments) need no escape: check in blocks
    // without an early exit, which the compiler vectorises, and copy them whole.
    let special = |b: &u8| matches!(b, b'\\' | b'"' | b'\n');
    if !bytes
        .chunks(32)
        .any(|block| block.iter().fold(false, |found, b| found | special(b)))
    {
        out.extend_from_slice(bytes);
        return;
    }
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'\\' => b"\\\\",
            b'"' => b"\\\"",
            b'\n' => b"\\n",
            _ => continue,
        };
        out.extend_from_slice(&bytes[run..i]);
        out.extend_from_slice(escaped);
        run = i + 1;
    }
    out.extend_from_slice(&bytes[run..]);
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
