//! An exposition as bytes, to hand it from the collector process to the server process
//! as it is kept: texts and compressed pieces alike, so that the server neither renders
//! nor compresses what the collector already did. Decoding shares the received buffer.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::deflate::Segment;
use super::{Chunk, Exposition, Family};

/// Why received bytes are not an exposition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed exposition message: {0}")]
pub struct WireError(&'static str);

const HAS_TEXT: u8 = 1;
const HAS_SEGMENT: u8 = 2;

impl Exposition {
    /// The exposition as parts to send one after the other: small headers between the
    /// pieces it holds, which are shared, not copied.
    pub fn to_wire(&self) -> Vec<Bytes> {
        let mut parts = Vec::new();
        let mut head = BytesMut::new();
        head.put_u64_le(self.families.len() as u64);
        for family in &self.families {
            head.put_u64_le(family.samples.len() as u64);
            for chunk in [&family.text_header, &family.openmetrics_header]
                .into_iter()
                .chain(&family.samples)
            {
                let flags = u8::from(chunk.plain.is_some()) * HAS_TEXT
                    + u8::from(chunk.segment.is_some()) * HAS_SEGMENT;
                head.put_u8(flags);
                if let Some(text) = &chunk.plain {
                    head.put_u64_le(text.len() as u64);
                    parts.push(head.split().freeze());
                    parts.push(text.clone());
                }
                if let Some(segment) = &chunk.segment {
                    let (deflated, crc) = segment.parts();
                    head.put_u32_le(crc);
                    head.put_u64_le(segment.plain_len() as u64);
                    head.put_u64_le(deflated.len() as u64);
                    parts.push(head.split().freeze());
                    parts.push(deflated.clone());
                }
            }
        }
        if !head.is_empty() {
            parts.push(head.freeze());
        }
        parts
    }

    /// The exposition that [`Exposition::to_wire`] sent, sharing `bytes`.
    pub fn from_wire(mut bytes: Bytes) -> Result<Exposition, WireError> {
        let families = take_len(&mut bytes)?;
        // Each family takes at least three bytes: no count can make us allocate more.
        let mut out = Vec::with_capacity(families.min(bytes.len() / 3));
        for _ in 0..families {
            let samples = take_len(&mut bytes)?;
            let text_header = take_chunk(&mut bytes)?;
            let openmetrics_header = take_chunk(&mut bytes)?;
            let mut chunks = Vec::with_capacity(samples.min(bytes.len()));
            for _ in 0..samples {
                chunks.push(take_chunk(&mut bytes)?);
            }
            out.push(Family {
                text_header,
                openmetrics_header,
                samples: chunks,
            });
        }
        if !bytes.is_empty() {
            return Err(WireError("bytes after the last family"));
        }
        Ok(Exposition { families: out })
    }
}

fn take_len(bytes: &mut Bytes) -> Result<usize, WireError> {
    if bytes.remaining() < 8 {
        return Err(WireError("cut short"));
    }
    usize::try_from(bytes.get_u64_le()).map_err(|_| WireError("length out of range"))
}

fn take_bytes(bytes: &mut Bytes, len: usize) -> Result<Bytes, WireError> {
    if bytes.remaining() < len {
        return Err(WireError("cut short"));
    }
    Ok(bytes.split_to(len))
}

fn take_chunk(bytes: &mut Bytes) -> Result<Chunk, WireError> {
    if bytes.is_empty() {
        return Err(WireError("cut short"));
    }
    let flags = bytes.get_u8();
    if flags == 0 || flags & !(HAS_TEXT | HAS_SEGMENT) != 0 {
        return Err(WireError("a piece with neither text nor compressed form"));
    }
    let plain = if flags & HAS_TEXT != 0 {
        let len = take_len(bytes)?;
        Some(take_bytes(bytes, len)?)
    } else {
        None
    };
    let segment = if flags & HAS_SEGMENT != 0 {
        if bytes.remaining() < 4 {
            return Err(WireError("cut short"));
        }
        let crc = bytes.get_u32_le();
        let len = take_len(bytes)?;
        let deflated_len = take_len(bytes)?;
        Some(Segment::from_parts(
            take_bytes(bytes, deflated_len)?,
            crc,
            len,
        ))
    } else {
        None
    };
    Ok(Chunk { plain, segment })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::{ExpositionBuilder, Format, MetricType, Storage};

    fn exposition(storage: Storage) -> Exposition {
        let mut builder = ExpositionBuilder::new(storage);
        for f in 0..3 {
            let mut family = builder.family(&format!("f{f}_total"), "Help.", MetricType::Counter);
            for i in 0..20_000 {
                family.sample(&[("rule", &format!("-j X{i}"))], i as u64);
            }
        }
        builder.finish()
    }

    #[test]
    fn an_exposition_comes_back_the_same_in_every_format_and_as_gzip() {
        for storage in [
            Storage::Plain,
            Storage::Compressed { keep_plain: 0 },
            Storage::LONG_RUNNING,
        ] {
            let sent = exposition(storage);
            let bytes: Vec<u8> = sent.to_wire().concat();
            let received = Exposition::from_wire(Bytes::from(bytes)).expect("decodes");
            assert_eq!(received.is_plain(), sent.is_plain(), "{storage:?}");
            for format in [Format::Text, Format::OpenMetrics] {
                assert_eq!(received.to_vec(format), sent.to_vec(format), "{storage:?}");
                assert_eq!(received.gzip(format), sent.gzip(format), "{storage:?}");
            }
        }
    }

    #[test]
    fn every_cut_of_a_message_is_an_error_not_a_panic() {
        let bytes = Bytes::from(
            exposition(Storage::Compressed { keep_plain: 0 })
                .to_wire()
                .concat(),
        );
        for len in (0..bytes.len()).step_by(97).chain([bytes.len() - 1]) {
            assert!(Exposition::from_wire(bytes.slice(..len)).is_err(), "{len}");
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(Exposition::from_wire(Bytes::from(longer)).is_err());
    }
}
