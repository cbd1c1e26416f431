//! A ready-made [`TlsUpgrader`] on rustls with the `ring` provider:
//! public roots from webpki-roots, plus extra CAs for private servers.

use std::sync::Arc;

use futures_rustls::TlsConnector;
use futures_rustls::rustls::pki_types::pem::PemObject;
use futures_rustls::rustls::pki_types::{CertificateDer, ServerName};
use futures_rustls::rustls::{ClientConfig, ProtocolVersion, RootCertStore, crypto};

use super::{BoxIo, TlsUpgrader, UpgradeFuture};
use crate::error::{Phase, SmtpError};
use crate::tls::{TlsFailure, TlsFailureKind, TlsInfo};

/// Verifies servers against the public web PKI and any CA added with
/// [`RustlsUpgrader::with_ca_pem`]. Verification cannot be turned off.
#[derive(Clone)]
pub struct RustlsUpgrader {
    config: Arc<ClientConfig>,
}

impl RustlsUpgrader {
    /// Trusts the public web PKI (webpki-roots).
    pub fn new() -> Self {
        RustlsUpgrader::with_roots(public_roots())
    }

    /// Trusts the public web PKI plus every certificate in `pem` — the
    /// answer to a self-signed or private-CA server.
    pub fn with_ca_pem(pem: &[u8]) -> Result<Self, SmtpError> {
        let mut roots = public_roots();
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| bad_ca(&e.to_string()))?;
            roots.add(cert).map_err(|e| bad_ca(&e.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(bad_ca("no certificate found in the PEM text"));
        }
        Ok(RustlsUpgrader::with_roots(roots))
    }

    /// Uses a rustls configuration the caller built.
    pub fn from_config(config: Arc<ClientConfig>) -> Self {
        RustlsUpgrader { config }
    }

    fn with_roots(roots: RootCertStore) -> Self {
        let config = ClientConfig::builder_with_provider(Arc::new(crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        RustlsUpgrader {
            config: Arc::new(config),
        }
    }
}

impl Default for RustlsUpgrader {
    fn default() -> Self {
        RustlsUpgrader::new()
    }
}

fn public_roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

fn bad_ca(detail: &str) -> SmtpError {
    SmtpError::input(
        Phase::Tls,
        format!("the CA certificate given as tls.ca could not be read ({detail})."),
    )
    .with_hint("pass the PEM text of the CA (-----BEGIN CERTIFICATE----- ...).")
}

impl TlsUpgrader for RustlsUpgrader {
    fn upgrade(&self, io: BoxIo, server_name: &str) -> UpgradeFuture {
        let connector = TlsConnector::from(self.config.clone());
        let name = ServerName::try_from(server_name.to_string());
        Box::pin(async move {
            let name =
                name.map_err(|e| TlsFailure::new(TlsFailureKind::NameMismatch, format!("invalid server name: {e}")))?;
            let stream = connector
                .connect(name, io)
                .await
                .map_err(|e| TlsFailure::from_message(&e.to_string()))?;
            let (_, session) = stream.get_ref();
            let version = match session.protocol_version() {
                Some(ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
                Some(ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
                other => format!("{other:?}"),
            };
            let cipher = session.negotiated_cipher_suite().map(|s| format!("{:?}", s.suite()));
            let info = TlsInfo {
                version,
                cipher,
                authorized: true,
                authorization_error: None,
            };
            Ok((Box::new(stream) as BoxIo, info))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn garbage_ca_is_an_input_error() {
        let err = RustlsUpgrader::with_ca_pem(b"not a pem").err().unwrap();
        assert_eq!(err.code, ErrorCode::Input);
    }
}
