//! Gzip request bodies, inflated with a hard output cap so that a gzip bomb is never inflated
//! past the limit.

use std::io::Read;

use bytes::Bytes;
use flate2::read::MultiGzDecoder;

use crate::error::IngestError;

/// Inflates a gzip body (one or more members), stopping as soon as the output would exceed
/// `max_decompressed` bytes.
///
/// # Errors
/// [`IngestError::TooLarge`] when the inflated body is over `max_decompressed`;
/// [`IngestError::BadInput`] when the body is not valid gzip.
pub fn gunzip_limited(body: &[u8], max_decompressed: usize) -> Result<Bytes, IngestError> {
    let limit = u64::try_from(max_decompressed)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let mut decoder = MultiGzDecoder::new(body).take(limit);
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(max_decompressed));
    decoder
        .read_to_end(&mut out)
        .map_err(|error| IngestError::BadInput(format!("invalid gzip body: {error}")))?;
    if out.len() > max_decompressed {
        return Err(IngestError::TooLarge(format!(
            "decompressed body exceeds {max_decompressed} bytes"
        )));
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(data).expect("write to vec");
        encoder.finish().expect("finish gzip")
    }

    #[test]
    fn round_trip_within_limit() {
        let body = gzip(b"{\"message\":\"hi\"}\n");
        assert_eq!(
            &gunzip_limited(&body, 1024).expect("valid")[..],
            b"{\"message\":\"hi\"}\n"
        );
        assert_eq!(
            gunzip_limited(&body, 17).expect("exactly at limit").len(),
            17
        );
    }

    #[test]
    fn gzip_bomb_stops_at_the_limit() {
        // 64 MiB of zeros compresses to ~64 KiB; only limit + 1 bytes may be inflated.
        let bomb = gzip(&vec![0u8; 64 << 20]);
        let error = gunzip_limited(&bomb, 1 << 20).expect_err("too large");
        assert!(matches!(error, IngestError::TooLarge(_)));
    }

    #[test]
    fn garbage_is_bad_input() {
        assert!(matches!(
            gunzip_limited(b"not gzip at all", 1024),
            Err(IngestError::BadInput(_))
        ));
        let mut truncated = gzip(b"hello world hello world");
        truncated.truncate(truncated.len() - 6);
        assert!(matches!(
            gunzip_limited(&truncated, 1024),
            Err(IngestError::BadInput(_))
        ));
    }
}
