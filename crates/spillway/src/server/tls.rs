//! The HTTPS listener's TLS: the certificate chain and key from `[server] tls_cert` and
//! `tls_key`, read once at start.
//!
//! Why a listener of its own: API Gateway is HTTPS only, and an intake reached across a
//! network needs TLS; the plain listener stays for local tools and for functions, which
//! are told its loopback address as their AWS endpoint.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why the HTTPS listener cannot start.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls_listen needs both tls_cert and tls_key")]
    Incomplete,
    #[error("reading the certificate chain {path}: {message}")]
    Certificates { path: String, message: String },
    #[error("reading the private key {path}: {message}")]
    Key { path: String, message: String },
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The acceptor of the HTTPS listener, from PEM files. HTTP/1.1 only, as the plain
/// listener.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect())
        .map_err(|e| TlsError::Certificates {
            path: cert.display().to_string(),
            message: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Certificates {
            path: cert.display().to_string(),
            message: "no PEM certificate in it".into(),
        });
    }
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.display().to_string(),
        message: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The HTTPS listener `[server]` asks for, if any: its address and acceptor.
pub fn from_config(
    server: &crate::config::ServerConfig,
) -> Result<Option<(std::net::SocketAddr, TlsAcceptor)>, TlsError> {
    match (server.tls_listen, &server.tls_cert, &server.tls_key) {
        (None, None, None) => Ok(None),
        (None, _, _) => {
            tracing::warn!(
                "tls_cert or tls_key is set without tls_listen: no HTTPS listener is started"
            );
            Ok(None)
        }
        (Some(at), Some(cert), Some(key)) => Ok(Some((at, acceptor(cert, key)?))),
        (Some(_), _, _) => Err(TlsError::Incomplete),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_that_hold_no_certificate_or_key_are_refused_with_their_path() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "nothing here\n").unwrap();
        let Err(e) = acceptor(&junk, &junk) else {
            panic!("junk made a TLS configuration");
        };
        assert!(e.to_string().contains("junk.pem"), "{e}");
        let Err(e) = acceptor(&dir.path().join("gone.pem"), &junk) else {
            panic!("a missing file made a TLS configuration");
        };
        assert!(e.to_string().contains("gone.pem"), "{e}");
    }
}
