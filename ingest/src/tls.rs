//! TLS server configuration from PEM files, shared by every TLS listener (syslog over TLS, and
//! HTTP when it serves TLS).
//!
//! [`TlsFiles`] names a certificate chain, its private key and, for mutual TLS, a CA bundle that
//! client certificates must chain to. [`TlsFiles::load`] reads them (no other I/O) and builds a
//! rustls [`ServerConfig`] with the `ring` provider, TLS 1.2 and 1.3. Every error names the file
//! and the problem, so an operator can fix the config from the message alone.
//!
//! With a `client_ca`, a client must present a certificate that chains to one of its CAs (RFC
//! 5425 §5.2, "certificate path validation"); the handshake of any other client fails, and
//! [`HandshakeFailure::classify`] says why, for the counters. The identity of a verified client
//! is read with [`ClientIdentity::of`]: its subject common name, DNS names, and the SHA-256
//! fingerprint that RFC 5425 §4.2.2 uses as the canonical certificate identity.
//!
//! This module does not accept connections; listeners wrap their sockets with
//! [`tokio_rustls::TlsAcceptor`] built from the config returned here.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection};

/// PEM files larger than this are refused (a certificate bundle is a few KiB).
pub const MAX_PEM_BYTES: u64 = 1 << 20;

/// The files of a TLS server identity, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server's certificate chain (PEM, leaf first).
    pub cert: PathBuf,
    /// The server's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates (PEM) that client certificates must chain to. `None`: clients are not
    /// asked for a certificate.
    pub client_ca: Option<PathBuf>,
}

/// Why a TLS configuration could not be built. Every variant names the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is larger than {max} bytes: not a PEM certificate or key file")]
    TooLarge { path: PathBuf, max: u64 },
    #[error("{path} is not valid PEM: {message}")]
    Pem { path: PathBuf, message: String },
    #[error("{path} holds no {what} (expected a PEM block `-----BEGIN {what}-----`)")]
    Missing { path: PathBuf, what: &'static str },
    #[error("{path}: CA certificate {index} is unusable as a trust anchor: {message}")]
    BadCa {
        path: PathBuf,
        index: usize,
        message: String,
    },
    #[error("certificate {cert} and key {key} do not make a TLS identity: {message}")]
    Identity {
        cert: PathBuf,
        key: PathBuf,
        message: String,
    },
}

impl TlsFiles {
    /// Reads the files and builds the server config (TLS 1.2 and 1.3, `ring` provider).
    ///
    /// # Errors
    /// [`TlsError`] naming the file: unreadable or too large, not PEM, no certificate or key in
    /// it, a CA that is not a valid trust anchor, or a key that does not match the certificate.
    pub fn load(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let chain = read_certificates(&self.cert)?;
        let key_pem = read_pem_file(&self.key)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|error| match error {
            rustls::pki_types::pem::Error::NoItemsFound => TlsError::Missing {
                path: self.key.clone(),
                what: "PRIVATE KEY",
            },
            other => pem_error(&self.key, &other),
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|error| self.identity_error(&error))?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca_path) => {
                let roots = read_trust_anchors(ca_path)?;
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|error| TlsError::BadCa {
                            path: ca_path.clone(),
                            index: 0,
                            message: error.to_string(),
                        })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder
            .with_single_cert(chain, key)
            .map_err(|error| self.identity_error(&error))?;
        Ok(Arc::new(config))
    }

    fn identity_error(&self, error: &rustls::Error) -> TlsError {
        TlsError::Identity {
            cert: self.cert.clone(),
            key: self.key.clone(),
            message: error.to_string(),
        }
    }
}

fn read_pem_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    let read_error = |source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    };
    let length = std::fs::metadata(path).map_err(read_error)?.len();
    if length > MAX_PEM_BYTES {
        return Err(TlsError::TooLarge {
            path: path.to_path_buf(),
            max: MAX_PEM_BYTES,
        });
    }
    std::fs::read(path).map_err(read_error)
}

fn pem_error(path: &Path, error: &rustls::pki_types::pem::Error) -> TlsError {
    TlsError::Pem {
        path: path.to_path_buf(),
        message: error.to_string(),
    }
}

/// Every `CERTIFICATE` block of a PEM file, in order (other blocks are skipped).
fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_pem_file(path)?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| pem_error(path, &error))?;
    if certificates.is_empty() {
        return Err(TlsError::Missing {
            path: path.to_path_buf(),
            what: "CERTIFICATE",
        });
    }
    Ok(certificates)
}

fn read_trust_anchors(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for (index, certificate) in read_certificates(path)?.into_iter().enumerate() {
        roots.add(certificate).map_err(|error| TlsError::BadCa {
            path: path.to_path_buf(),
            index: index + 1,
            message: error.to_string(),
        })?;
    }
    Ok(roots)
}

/// Why a TLS handshake failed, as counted (`tls_handshake_failed` by reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HandshakeFailure {
    /// The client's certificate does not chain to `client_ca`, is expired, revoked or otherwise
    /// invalid.
    UntrustedCertificate,
    /// `client_ca` is set and the client presented no certificate.
    NoClientCertificate,
    /// The peer spoke something else than TLS, or TLS that rustls refuses (version, ciphers).
    Protocol,
    /// The handshake did not finish within the listener's handshake timeout.
    Timeout,
    /// The connection broke during the handshake.
    Io,
}

impl HandshakeFailure {
    pub const ALL: [HandshakeFailure; 5] = [
        HandshakeFailure::UntrustedCertificate,
        HandshakeFailure::NoClientCertificate,
        HandshakeFailure::Protocol,
        HandshakeFailure::Timeout,
        HandshakeFailure::Io,
    ];

    /// The reason's label in stats and metrics.
    pub fn name(self) -> &'static str {
        match self {
            HandshakeFailure::UntrustedCertificate => "untrusted_certificate",
            HandshakeFailure::NoClientCertificate => "no_client_certificate",
            HandshakeFailure::Protocol => "protocol",
            HandshakeFailure::Timeout => "timeout",
            HandshakeFailure::Io => "io",
        }
    }

    /// Classifies the error of a failed `TlsAcceptor::accept` (tokio-rustls wraps the rustls
    /// error in the `io::Error`).
    pub fn classify(error: &std::io::Error) -> HandshakeFailure {
        let Some(tls_error) = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        else {
            return HandshakeFailure::Io;
        };
        match tls_error {
            rustls::Error::NoCertificatesPresented => HandshakeFailure::NoClientCertificate,
            rustls::Error::InvalidCertificate(_) | rustls::Error::InvalidCertRevocationList(_) => {
                HandshakeFailure::UntrustedCertificate
            }
            _ => HandshakeFailure::Protocol,
        }
    }
}

/// Who a verified client is, from the certificate it presented (leaf of its chain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// The subject's common name (`CN`), when it has one that is text.
    pub common_name: Option<String>,
    /// The DNS names of the subjectAltName extension.
    pub dns_names: Vec<String>,
    /// SHA-256 of the certificate's DER (RFC 5425 §4.2.2 fingerprint).
    pub sha256: [u8; 32],
}

impl ClientIdentity {
    /// The identity of the peer of a finished handshake; `None` when the client presented no
    /// certificate (a listener without `client_ca`). When the server asked for a certificate,
    /// the handshake succeeded only if it verified, so the identity is a verified one.
    pub fn of(connection: &ServerConnection) -> Option<ClientIdentity> {
        let leaf = connection.peer_certificates()?.first()?;
        Some(ClientIdentity::from_certificate(leaf))
    }

    /// The identity written in a certificate (not verified by this call).
    pub fn from_certificate(certificate: &CertificateDer<'_>) -> ClientIdentity {
        let digest = ring::digest::digest(&ring::digest::SHA256, certificate.as_ref());
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(digest.as_ref());
        let (common_name, dns_names) = match webpki::EndEntityCert::try_from(certificate) {
            Ok(parsed) => (
                common_name(parsed.subject()),
                parsed.valid_dns_names().map(str::to_string).collect(),
            ),
            Err(_) => (None, Vec::new()),
        };
        ClientIdentity {
            common_name,
            dns_names,
            sha256,
        }
    }

    /// The fingerprint as RFC 5425 writes it: `SHA-256:` and colon-separated upper-case hex.
    pub fn fingerprint(&self) -> String {
        let mut text = String::with_capacity(8 + 3 * self.sha256.len());
        text.push_str("SHA-256");
        for byte in self.sha256 {
            text.push_str(&format!(":{byte:02X}"));
        }
        text
    }
}

impl fmt::Display for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.common_name {
            Some(name) => write!(f, "CN={name} ({})", self.fingerprint()),
            None => f.write_str(&self.fingerprint()),
        }
    }
}

/// The OID of the X.520 commonName attribute, 2.5.4.3, DER-encoded.
const OID_COMMON_NAME: [u8; 3] = [0x55, 0x04, 0x03];

/// The first common name of a DER `Name` (the contents of its SEQUENCE, as webpki hands it
/// out): `SET { SEQUENCE { OID, string } }…`. Bounds-checked; anything unexpected gives `None`.
fn common_name(mut name: &[u8]) -> Option<String> {
    while !name.is_empty() {
        let (tag, set, rest) = der_element(name)?;
        name = rest;
        if tag != 0x31 {
            continue;
        }
        let mut attributes = set;
        while !attributes.is_empty() {
            let (_, attribute, rest) = der_element(attributes)?;
            attributes = rest;
            let (oid_tag, oid, value) = der_element(attribute)?;
            if oid_tag != 0x06 || oid != OID_COMMON_NAME {
                continue;
            }
            let (_, text, _) = der_element(value)?;
            return std::str::from_utf8(text).ok().map(str::to_string);
        }
    }
    None
}

/// Splits one DER element off `input`: (tag, contents, rest). Short and long length forms up
/// to 4 bytes; `None` on anything truncated.
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *input.first()?;
    let first_length = *input.get(1)?;
    let (length, header) = if first_length < 0x80 {
        (usize::from(first_length), 2)
    } else {
        let count = usize::from(first_length & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let bytes = input.get(2..2 + count)?;
        let length = bytes
            .iter()
            .fold(0usize, |acc, byte| (acc << 8) | usize::from(*byte));
        (length, 2 + count)
    };
    let contents = input.get(header..header.checked_add(length)?)?;
    Some((tag, contents, &input[header + length..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_are_named() {
        let files = TlsFiles {
            cert: PathBuf::from("/nonexistent/cert.pem"),
            key: PathBuf::from("/nonexistent/key.pem"),
            client_ca: None,
        };
        let error = files.load().expect_err("no such file");
        assert!(
            error.to_string().contains("/nonexistent/cert.pem"),
            "{error}"
        );
    }

    #[test]
    fn a_file_without_certificates_is_refused_with_its_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cert = dir.path().join("cert.pem");
        std::fs::write(&cert, "not a certificate\n").expect("write");
        let files = TlsFiles {
            cert: cert.clone(),
            key: cert.clone(),
            client_ca: None,
        };
        let error = files.load().expect_err("no certificate");
        let text = error.to_string();
        assert!(
            text.contains("cert.pem") && text.contains("CERTIFICATE"),
            "{text}"
        );
    }

    #[test]
    fn common_name_is_read_from_a_der_name() {
        // SET { SEQUENCE { OID 2.5.4.6, PrintableString "FR" } },
        // SET { SEQUENCE { OID 2.5.4.3, UTF8String "relay-1" } }
        let name = [
            0x31, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x06, 0x13, 0x02, b'F', b'R', 0x31,
            0x10, 0x30, 0x0e, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x07, b'r', b'e', b'l', b'a',
            b'y', b'-', b'1',
        ];
        assert_eq!(common_name(&name).as_deref(), Some("relay-1"));
        // Truncated input: no panic, no name.
        for cut in 0..name.len() {
            let _ = common_name(&name[..cut]);
        }
    }
}
