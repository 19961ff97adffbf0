//! The Prometheus text format read back. Top reads an exporter's /metrics through it, and
//! this host's readings too, rendered by the exporter's own encoder, so that both are keyed
//! alike. Only sample lines are read; `# HELP`, `# TYPE`, `# EOF` and other comments are
//! skipped. OpenMetrics sample lines read the same.

use std::borrow::Cow;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    /// The metric name.
    pub name: &'a str,
    /// The labels in line order, their values unescaped.
    pub labels: Vec<(&'a str, Cow<'a, str>)>,
    /// The value as written.
    pub value: &'a str,
}

impl Sample<'_> {
    /// The value of the label `name`; empty when the sample has none, as PromQL reads it.
    pub fn label(&self, name: &str) -> &str {
        self.labels
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, v)| v)
    }

    /// The value as a counter: an integer, or a float such as `1.5e+06` rounded; `None`
    /// for a negative, infinite or unreadable value.
    pub fn counter(&self) -> Option<u64> {
        self.value.parse().ok().or_else(|| {
            let value = self.number()?;
            (value.is_finite() && value >= 0.0).then(|| value.round() as u64)
        })
    }

    /// The value as a number.
    pub fn number(&self) -> Option<f64> {
        match self.value {
            "+Inf" => Some(f64::INFINITY),
            "-Inf" => Some(f64::NEG_INFINITY),
            value => value.parse().ok(),
        }
    }
}

/// A sample line that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line} of the exposition: {reason}")]
pub struct TextError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: &'static str,
}

/// Every sample of `text`, in order; a line that cannot be read is an error, and reading
/// goes on after it.
pub fn samples(text: &str) -> impl Iterator<Item = Result<Sample<'_>, TextError>> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !(line.is_empty() || line.starts_with('#')))
        .map(|(i, line)| {
            sample(line).map_err(|reason| TextError {
                line: i + 1,
                reason,
            })
        })
}

fn sample(line: &str) -> Result<Sample<'_>, &'static str> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_ascii_whitespace())
        .ok_or("no value")?;
    let name = &line[..name_end];
    if name.is_empty() {
        return Err("no metric name");
    }
    let mut rest = line[name_end..].trim_start();
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        rest = inner;
        loop {
            rest = rest.trim_start_matches([',', ' ']);
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let (label, tail) = rest.split_once("=\"").ok_or("a label without a value")?;
            let (value, tail) = quoted(tail)?;
            labels.push((label.trim(), value));
            rest = tail;
        }
    }
    let value = rest.split_ascii_whitespace().next().ok_or("no value")?;
    Ok(Sample {
        name,
        labels,
        value,
    })
}

/// A label value up to its closing quote, unescaped (`\\`, `\"`, `\n`), and what follows.
fn quoted(text: &str) -> Result<(Cow<'_, str>, &str), &'static str> {
    let end = text
        .bytes()
        .scan(false, |escaped, b| {
            let closing = b == b'"' && !*escaped;
            *escaped = b == b'\\' && !*escaped;
            Some(closing)
        })
        .position(|closing| closing)
        .ok_or("an unterminated label value")?;
    let raw = &text[..end];
    let rest = &text[end + 1..];
    if !raw.contains('\\') {
        return Ok((Cow::Borrowed(raw), rest));
    }
    let mut value = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        value.push(match (c, chars.clone().next()) {
            ('\\', Some(escaped)) => {
                chars.next();
                if escaped == 'n' { '\n' } else { escaped }
            }
            (c, _) => c,
        });
    }
    Ok((Cow::Owned(value), rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> Sample<'_> {
        let mut all: Vec<_> = samples(line).collect();
        assert_eq!(all.len(), 1, "{line:?}");
        all.remove(0).expect("a sample")
    }

    #[test]
    fn samples_with_and_without_labels() {
        let text = "# HELP a_total help\n# TYPE a_total counter\na_total{table=\"filter\",chain=\"INPUT\"} 12\nb 1.5e+06 1700000000000\n\nc{} +Inf\n# EOF\n";
        let all: Vec<Sample<'_>> = samples(text).map(|s| s.expect("valid")).collect();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].name, "a_total");
        assert_eq!(
            (all[0].label("table"), all[0].label("chain")),
            ("filter", "INPUT")
        );
        assert_eq!(all[0].label("rule"), "");
        assert_eq!(all[0].counter(), Some(12));
        assert_eq!((all[1].name, all[1].counter()), ("b", Some(1_500_000)));
        assert_eq!(all[2].number(), Some(f64::INFINITY));
        assert_eq!(all[2].counter(), None);
    }

    #[test]
    fn label_values_are_unescaped() {
        let sample = one(r#"x{rule="-m comment --comment \"a\\b\" -j ACCEPT",c="1\n2",d="{,}"} 3"#);
        assert_eq!(
            sample.label("rule"),
            r#"-m comment --comment "a\b" -j ACCEPT"#
        );
        assert_eq!(sample.label("c"), "1\n2");
        assert_eq!(sample.label("d"), "{,}");
        assert_eq!(sample.counter(), Some(3));
    }

    #[test]
    fn a_counter_beyond_a_floats_precision_stays_exact() {
        assert_eq!(one("x 18446744073709551615").counter(), Some(u64::MAX));
        assert_eq!(one("x -1").counter(), None);
    }

    #[test]
    fn a_broken_line_is_an_error_naming_it_and_reading_goes_on() {
        let all: Vec<_> = samples("a 1\nb{c=\"x} 2\nd\ne 3\n").collect();
        assert_eq!(all.len(), 4);
        assert_eq!(
            all[1],
            Err(TextError {
                line: 2,
                reason: "an unterminated label value"
            })
        );
        assert_eq!(
            all[2],
            Err(TextError {
                line: 3,
                reason: "no value"
            })
        );
        assert_eq!(all[3].as_ref().map(|s| s.name), Ok("e"));
    }
}
