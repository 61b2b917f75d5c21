//! The HTTPS listener's certificate and key (`tls.cert_file`, `tls.key_file`): read, checked
//! (the key must belong to the certificate) and served through a rustls certificate resolver
//! that a configuration reload can swap. Handshakes after the swap get the new pair; connections
//! already open keep theirs, so nothing is dropped.

use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use pingora::listeners::tls::TlsSettings;
use pingora::tls::sign::CertifiedKey;
use pingora::tls::{ClientHello, CryptoProvider, ResolvesServerCert};

use crate::config::TlsConfig;

/// Each message starts with the configuration key it concerns ([`TlsError::config_key`]).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{config_key}: {path} could not be read: {reason}")]
    Read {
        config_key: &'static str,
        path: String,
        reason: String,
    },
    #[error("tls.cert_file: {0} holds no PEM certificate")]
    NoCertificate(String),
    #[error("tls.key_file: {0} holds no PEM private key")]
    NoKey(String),
    #[error("upstream_ca_file: {0} holds no usable PEM certificate")]
    NoCaCertificate(String),
    #[error("tls.key_file: the key in {key} is unusable or does not belong to the certificate in {cert}: {reason}")]
    Pair {
        cert: String,
        key: String,
        reason: String,
    },
    #[error("tls: no rustls crypto provider is installed")]
    NoProvider,
    #[error("tls: the listener could not be set up: {0}")]
    Listener(String),
}

impl TlsError {
    /// The configuration key the problem is about.
    pub fn config_key(&self) -> &'static str {
        match self {
            TlsError::Read { config_key, .. } => config_key,
            TlsError::NoCertificate(_) => "tls.cert_file",
            TlsError::NoKey(_) | TlsError::Pair { .. } => "tls.key_file",
            TlsError::NoCaCertificate(_) => "upstream_ca_file",
            TlsError::NoProvider | TlsError::Listener(_) => "tls",
        }
    }

    /// The message without its leading key.
    pub fn reason(&self) -> String {
        let text = self.to_string();
        match text.strip_prefix(self.config_key()) {
            Some(rest) => rest.trim_start_matches(": ").to_owned(),
            None => text,
        }
    }
}

/// Check `upstream_ca_file`: PEM holding at least one certificate that parses as X.509.
pub fn check_ca_file(path: &Path) -> Result<(), TlsError> {
    let key = "upstream_ca_file";
    let certs = rustls_pemfile::certs(&mut reader(path, key)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read_error(path, key, &e))?;
    let mut roots = pingora::tls::RootCertStore::empty();
    let (usable, _unusable) = roots.add_parsable_certificates(certs);
    if usable == 0 {
        return Err(TlsError::NoCaCertificate(path.display().to_string()));
    }
    Ok(())
}

/// A certificate chain with its key, read and checked.
#[derive(Clone)]
pub struct CertPair(Arc<CertifiedKey>);

impl CertPair {
    /// Read and check the pair named by `tls`.
    pub fn read(tls: &TlsConfig) -> Result<Self, TlsError> {
        load_pair(tls).map(CertPair)
    }

    /// The DER of the chain, end-entity certificate first.
    pub fn chain(&self) -> Vec<Vec<u8>> {
        self.0.cert.iter().map(|c| c.as_ref().to_vec()).collect()
    }
}

/// The certificate the listener presents; swappable while it serves.
pub struct CertResolver {
    current: ArcSwap<CertifiedKey>,
}

impl std::fmt::Debug for CertResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertResolver")
            .field("chain_len", &self.current.load().cert.len())
            .finish()
    }
}

impl CertResolver {
    pub fn new(pair: CertPair) -> Self {
        CertResolver {
            current: ArcSwap::new(pair.0),
        }
    }

    /// Serve `pair` from the next handshake on.
    pub fn install(&self, pair: CertPair) {
        self.current.store(pair.0);
    }

    /// The pair served now.
    pub fn current(&self) -> CertPair {
        CertPair(self.current.load_full())
    }

    /// Listener settings that take the certificate from this resolver at every handshake.
    pub fn settings(self: &Arc<Self>) -> Result<TlsSettings, TlsError> {
        let mut settings =
            TlsSettings::intermediate("", "").map_err(|e| TlsError::Listener(e.to_string()))?;
        settings.set_cert_resolver(self.clone());
        Ok(settings)
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

fn load_pair(tls: &TlsConfig) -> Result<Arc<CertifiedKey>, TlsError> {
    let cert_name = tls.cert_file.display().to_string();
    let key_name = tls.key_file.display().to_string();
    let (cert_key, key_key) = ("tls.cert_file", "tls.key_file");
    let certs = rustls_pemfile::certs(&mut reader(&tls.cert_file, cert_key)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read_error(&tls.cert_file, cert_key, &e))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(cert_name));
    }
    let key = rustls_pemfile::private_key(&mut reader(&tls.key_file, key_key)?)
        .map_err(|e| read_error(&tls.key_file, key_key, &e))?
        .ok_or_else(|| TlsError::NoKey(key_name.clone()))?;
    // pingora uses the process-wide default provider (ring); make sure it is there.
    pingora::tls::install_default_crypto_provider();
    let provider = CryptoProvider::get_default().ok_or(TlsError::NoProvider)?;
    let pair = CertifiedKey::from_der(certs, key, provider).map_err(|e| TlsError::Pair {
        cert: cert_name,
        key: key_name,
        reason: e.to_string(),
    })?;
    Ok(Arc::new(pair))
}

fn reader(path: &Path, config_key: &'static str) -> Result<BufReader<std::fs::File>, TlsError> {
    std::fs::File::open(path)
        .map(BufReader::new)
        .map_err(|e| read_error(path, config_key, &e))
}

fn read_error(path: &Path, config_key: &'static str, e: &std::io::Error) -> TlsError {
    TlsError::Read {
        config_key,
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(dir: &Path, name: &str) -> (TlsConfig, Vec<u8>) {
        let cert = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        let cert_file = dir.join(format!("{name}.crt"));
        let key_file = dir.join(format!("{name}.key"));
        std::fs::write(&cert_file, cert.cert.pem()).unwrap();
        std::fs::write(&key_file, cert.key_pair.serialize_pem()).unwrap();
        let der = cert.cert.der().to_vec();
        (
            TlsConfig {
                cert_file,
                key_file,
            },
            der,
        )
    }

    #[test]
    fn only_a_matching_pair_is_read_and_installed() {
        let dir = tempfile::tempdir().unwrap();
        let (a, a_der) = pair(dir.path(), "a.test");
        let (b, b_der) = pair(dir.path(), "b.test");
        let resolver = CertResolver::new(CertPair::read(&a).unwrap());
        assert_eq!(resolver.current().chain(), vec![a_der]);

        // b's certificate with a's key, a missing file, a key where the certificate should be.
        let mixed = TlsConfig {
            cert_file: b.cert_file.clone(),
            key_file: a.key_file.clone(),
        };
        let err = CertPair::read(&mixed).err().unwrap();
        assert!(matches!(err, TlsError::Pair { .. }), "{err}");
        let missing = TlsConfig {
            cert_file: dir.path().join("nope.crt"),
            key_file: a.key_file.clone(),
        };
        assert!(matches!(
            CertPair::read(&missing),
            Err(TlsError::Read { .. })
        ));
        let not_pem = TlsConfig {
            cert_file: a.key_file.clone(),
            key_file: a.key_file.clone(),
        };
        assert!(matches!(
            CertPair::read(&not_pem),
            Err(TlsError::NoCertificate(_))
        ));

        resolver.install(CertPair::read(&b).unwrap());
        assert_eq!(resolver.current().chain(), vec![b_der]);
    }
}
