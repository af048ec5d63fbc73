//! Connecting to PostgreSQL, encrypted as libpq would be for the same
//! connection string.
//!
//! The client library reads `sslmode` as `disable`, `prefer` or `require`
//! and knows no certificate options; libpq users write `verify-ca`,
//! `verify-full` and `sslrootcert=FILE` too. So textwatch takes those out
//! of the connection string before the library parses it, and gives it a
//! TLS connector that checks what they ask for:
//!
//! | `sslmode` | encrypted | server's certificate checked |
//! | --- | --- | --- |
//! | `disable` | no | - |
//! | `prefer` (the default) | if the server offers it | no |
//! | `require` | yes, or no connection | no; against `sslrootcert` when given or `~/.postgresql/root.crt` exists (as libpq) |
//! | `verify-ca` | yes | signed by `sslrootcert` |
//! | `verify-full` | yes | signed by `sslrootcert`, and names the host |
//!
//! `sslrootcert` is a PEM file of trusted certificates, or `system` for
//! the system's store (which, as in libpq 16, means `verify-full` and
//! refuses any weaker mode); `verify-ca` and `verify-full` without it use
//! `~/.postgresql/root.crt`, as libpq does. Client certificates (`sslcert`,
//! `sslkey`) are refused with an error that says so.

use std::path::PathBuf;
use std::sync::Arc;

use postgres::config::SslMode;
use postgres::Client;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error as TlsError, RootCertStore, SignatureScheme};

use crate::StoreError;

/// What a connection string asks of TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TlsOptions {
    /// `disable`, `prefer`, `require`, `verify-ca` or `verify-full`.
    pub mode: String,
    /// `sslrootcert`: a file, or `system`.
    pub root: Option<String>,
}

/// The connection string without the options the client library does not
/// read, and those options.
pub(crate) fn split(url: &str) -> Result<(String, TlsOptions), String> {
    let mut opts = TlsOptions { mode: "prefer".into(), root: None };
    let mut mode_given = false;
    let mut take = |key: &str, value: String| -> Result<bool, String> {
        match key {
            "sslmode" => {
                if !["disable", "allow", "prefer", "require", "verify-ca", "verify-full"].contains(&value.as_str()) {
                    return Err(format!(
                        "sslmode={value} is not one of disable, prefer, require, verify-ca, verify-full"
                    ));
                }
                opts.mode = if value == "allow" { "prefer".into() } else { value };
                mode_given = true;
                Ok(true)
            }
            "sslrootcert" => {
                opts.root = Some(value);
                Ok(true)
            }
            "sslcert" | "sslkey" | "sslpassword" => {
                Err(format!("{key}: textwatch does not present client certificates; authenticate with a password"))
            }
            _ => Ok(false),
        }
    };
    let rest = if url.starts_with("postgresql://") || url.starts_with("postgres://") {
        match url.split_once('?') {
            None => url.to_string(),
            Some((base, query)) => {
                let mut kept = Vec::new();
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    let k = percent_decode(k).map_err(|e| format!("a parameter's name {e}"))?;
                    let v = percent_decode(v).map_err(|e| format!("the value of {k} {e}"))?;
                    if !take(&k, v)? {
                        kept.push(pair);
                    }
                }
                if kept.is_empty() {
                    base.to_string()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
        }
    } else {
        let mut kept = Vec::new();
        for (k, v, raw) in key_values(url)? {
            if !take(&k, v)? {
                kept.push(raw);
            }
        }
        kept.join(" ")
    };
    // libpq's rule (16 and later): the system's store vouches for every
    // name some public authority signed, so it is only safe with the name
    // checked.
    if opts.root.as_deref() == Some("system") {
        if !mode_given {
            opts.mode = "verify-full".into();
        } else if opts.mode != "verify-full" {
            return Err(format!(
                "sslrootcert=system needs sslmode=verify-full: with {}, a certificate any public authority signed \
                 for any name would be accepted",
                opts.mode
            ));
        }
    }
    Ok((rest, opts))
}

/// libpq's default root certificates: `~/.postgresql/root.crt`.
fn default_root() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".postgresql/root.crt"))
}

fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
            let Some(byte) = hex else { return Err("holds a bad %-escape".into()) };
            out.push(byte);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "is not UTF-8 once decoded".to_string())
}

/// The `key=value` pairs of a libpq keyword string, each with its text as
/// written (quotes and escapes kept).
fn key_values(s: &str) -> Result<Vec<(String, String, &str)>, String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let skip_ws = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    loop {
        i = skip_ws(i);
        if i >= b.len() {
            return Ok(out);
        }
        let start = i;
        while i < b.len() && b[i] != b'=' && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = s[start..i].to_string();
        i = skip_ws(i);
        if b.get(i) != Some(&b'=') {
            // Not the word itself: it may be part of a password.
            return Err("a word without a value (write key=value; quote a value with spaces: key='a b')".into());
        }
        i = skip_ws(i + 1);
        let mut value = Vec::new();
        if b.get(i) == Some(&b'\'') {
            i += 1;
            loop {
                match b.get(i) {
                    None => return Err(format!("the value of {key} has no closing quote")),
                    Some(b'\'') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') if i + 1 < b.len() => {
                        value.push(b[i + 1]);
                        i += 2;
                    }
                    Some(&c) => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < b.len() && !b[i].is_ascii_whitespace() {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                value.push(b[i]);
                i += 1;
            }
        }
        let value = String::from_utf8(value).map_err(|_| format!("the value of {key} is not UTF-8"))?;
        out.push((key, value, &s[start..i]));
    }
}

/// Opens a connection to the database `url` names (see the module
/// documentation for how it is encrypted). Errors name the database
/// (`name`), never a password.
pub(crate) fn connect(url: &str, name: &str) -> Result<Client, StoreError> {
    let bad = |e: String| StoreError::Connect(name.to_string(), e);
    let (rest, opts) = split(url).map_err(bad)?;
    let mut config: postgres::Config = rest.parse().map_err(|e: postgres::Error| bad(e.to_string()))?;
    config.ssl_mode(match opts.mode.as_str() {
        "disable" => SslMode::Disable,
        "prefer" => SslMode::Prefer,
        _ => SslMode::Require,
    });
    let tls = connector(&opts).map_err(bad)?;
    let named = config.get_application_name().is_some();
    let mut client = config.connect(tls).map_err(|e| bad(with_causes(&e)))?;
    if !named {
        // The processes of one installation know each other by name (a key
        // rotation is refused while others are connected): textwatch and
        // the schema, unless the connection string names them otherwise.
        client
            .batch_execute(
                "SELECT set_config('application_name', 'textwatch/' || COALESCE(current_schema(), '-'), false)",
            )
            .map_err(|e| bad(with_causes(&e)))?;
    }
    Ok(client)
}

/// An error with what caused it (a failed handshake says why).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let next = c.to_string();
        if !text.contains(&next) {
            text = format!("{text}: {next}");
        }
        cause = c.source();
    }
    text
}

fn connector(opts: &TlsOptions) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    // As libpq: `require` checks the chain when root certificates are
    // given or found in the default place.
    let root = opts.root.clone().or_else(|| {
        let found = default_root().filter(|p| p.is_file())?;
        (opts.mode == "require").then(|| found.display().to_string())
    });
    let verifying =
        matches!(opts.mode.as_str(), "verify-ca" | "verify-full") || (opts.mode == "require" && root.is_some());
    let verifier: Arc<dyn ServerCertVerifier> = if verifying {
        let roots = Arc::new(roots(root.as_deref())?);
        let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| format!("sslrootcert: {e}"))?;
        if opts.mode == "verify-full" {
            webpki
        } else {
            Arc::new(AnyName(webpki))
        }
    } else {
        Arc::new(Unchecked(provider))
    };
    let config = builder.dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// The trusted certificates `sslrootcert` names.
fn roots(root: Option<&str>) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    if root == Some("system") {
        let found = rustls_native_certs::load_native_certs();
        for cert in found.certs {
            // A certificate of the system's store that cannot be used is
            // not a reason to refuse the others.
            let _ = store.add(cert);
        }
        if store.is_empty() {
            return Err("sslrootcert=system: the system's certificate store is empty or unreadable".into());
        }
        return Ok(store);
    }
    let path = match root {
        Some(p) => PathBuf::from(p),
        None => default_root().ok_or("verify-ca and verify-full need sslrootcert=FILE (or sslrootcert=system)")?,
    };
    let certs = CertificateDer::pem_file_iter(&path)
        .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
    let (added, _) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!("sslrootcert {}: no usable certificate in it", path.display()));
    }
    Ok(store)
}

/// `prefer` and `require` without a root certificate, as libpq: the
/// connection is encrypted (and the handshake's signatures are checked
/// against the certificate the server sent), but who signed that
/// certificate is not.
#[derive(Debug)]
struct Unchecked(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted certificate; the name in
/// the certificate need not be the host's.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(TlsError::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(mode: &str, root: Option<&str>) -> TlsOptions {
        TlsOptions { mode: mode.into(), root: root.map(String::from) }
    }

    #[test]
    fn keyword_strings_lose_only_the_tls_options() {
        let (rest, o) =
            split("host=db user=tw sslmode=verify-full sslrootcert='/etc/my ca.pem' options='-c search_path=a'")
                .unwrap();
        assert_eq!(rest, "host=db user=tw options='-c search_path=a'");
        assert_eq!(o, opts("verify-full", Some("/etc/my ca.pem")));
        let (rest, o) = split("host=db   sslmode = require").unwrap();
        assert_eq!((rest.as_str(), o), ("host=db", opts("require", None)));
        assert_eq!(split("host=db").unwrap().1, opts("prefer", None), "libpq's default");
    }

    #[test]
    fn urls_lose_only_the_tls_options() {
        let (rest, o) =
            split("postgresql://tw@db:5432/tw?sslmode=verify-ca&sslrootcert=%2Fetc%2Fca.pem&connect_timeout=5")
                .unwrap();
        assert_eq!(rest, "postgresql://tw@db:5432/tw?connect_timeout=5");
        assert_eq!(o, opts("verify-ca", Some("/etc/ca.pem")));
        assert_eq!(split("postgres://db/tw?sslmode=disable").unwrap().0, "postgres://db/tw");
        assert_eq!(split("postgres://db/tw").unwrap(), ("postgres://db/tw".to_string(), opts("prefer", None)));
    }

    #[test]
    fn what_cannot_be_honoured_is_refused_by_name() {
        assert!(split("host=db sslmode=verify").unwrap_err().contains("sslmode=verify is not one of"));
        assert!(split("host=db sslcert=/c.pem").unwrap_err().contains("client certificates"));
        assert!(split("host=db sslmode='require").unwrap_err().contains("closing quote"));
        assert!(split("postgres://db/?sslmode=%zz").unwrap_err().contains("the value of sslmode holds a bad %-escape"));
        // The system's store only with the name checked.
        assert_eq!(split("host=db sslrootcert=system").unwrap().1, opts("verify-full", Some("system")));
        for weaker in ["require", "verify-ca", "prefer"] {
            let e = split(&format!("host=db sslrootcert=system sslmode={weaker}")).unwrap_err();
            assert!(e.contains("sslrootcert=system needs sslmode=verify-full"), "{e}");
        }
        // Nothing of a value is echoed: it may be a password.
        for bad in ["postgres://db/?password=hunter%zz", "host=db password=hunter 2", "postgres://db/?password=%ff%fe"]
        {
            let e = split(bad).unwrap_err();
            assert!(
                !e.contains("hunter") && !e.contains("%zz") && !e.contains("%ff") && !e.contains('2'),
                "{bad}: {e}"
            );
        }
        let missing = connector(&opts("verify-full", Some("/nonexistent/ca.pem"))).err().unwrap();
        assert!(missing.contains("sslrootcert /nonexistent/ca.pem"), "{missing}");
    }
}
