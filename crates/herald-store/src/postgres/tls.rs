//! TLS to PostgreSQL, when the URL asks for it (`sslmode=require`).
//!
//! The server's certificate is verified against the operating system's trusted roots, and its name
//! against the URL's host: stricter than libpq's `require` (which encrypts without verifying), since
//! a connection that carries every secret herald keeps should not accept any certificate. Without
//! `sslmode=require` herald connects in the clear, as a database on the same host or a private
//! network is usually reached.

use std::sync::OnceLock;
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// Whether connections to this database must use TLS.
pub(super) fn wanted(mode: SslMode) -> bool {
    mode == SslMode::Require
}

/// The connector, built once: the system's roots are read the first time TLS is needed.
pub(super) fn connector() -> MakeRustlsConnect {
    static CONFIG: OnceLock<rustls::ClientConfig> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut roots = rustls::RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        for error in &found.errors {
            tracing::warn!(%error, "a trusted root certificate of this system could not be read");
        }
        let (added, ignored) = roots.add_parsable_certificates(found.certs);
        tracing::debug!(added, ignored, "trusted roots for TLS to PostgreSQL");
        rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth()
    });
    MakeRustlsConnect::new(config.clone())
}
