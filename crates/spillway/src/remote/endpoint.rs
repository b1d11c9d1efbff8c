//! Where a remote engine answers, and the HTTP client that reaches it.
//!
//! An engine URL names one of three kinds of endpoint:
//! - `kinesis+http://HOST:PORT`, `dynamodb+http://HOST:PORT`: plain HTTP (another
//!   spillway, LocalStack, DynamoDB Local, ScyllaDB Alternator on a private network);
//! - `kinesis+https://HOST:PORT`, `dynamodb+https://HOST:PORT`: the same over TLS;
//! - `kinesis://REGION`, `dynamodb://REGION`: AWS's own regional endpoint
//!   (`https://kinesis.REGION.amazonaws.com`), with requests signed for that region.
//!
//! Certificates are checked against the system's trusted roots, plus the PEM bundle named
//! by `AWS_CA_BUNDLE` when it is set (the variable AWS's SDKs and CLI read), so a private
//! CA or a self-signed engine can be trusted without touching the system store.

use std::time::Duration;

use super::RemoteError;

/// Whether an endpoint is reached over TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Http,
    Https,
}

impl Transport {
    /// The URL scheme: `http`, `https`.
    pub fn scheme(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }
}

/// One remote engine's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub transport: Transport,
    /// `HOST` or `HOST:PORT`, as it goes in the `Host` header and the signature: a
    /// port that is the scheme's default is left out, as HTTP clients leave it out.
    pub authority: String,
    /// The region requests are signed for, when the URL names an AWS region; otherwise
    /// the configured `region`.
    pub region: Option<String>,
}

impl Endpoint {
    /// A plain-HTTP endpoint at `HOST:PORT`.
    pub fn http(authority: &str) -> Self {
        Self::new(Transport::Http, authority, None)
    }

    /// A TLS endpoint at `HOST[:PORT]`.
    pub fn https(authority: &str) -> Self {
        Self::new(Transport::Https, authority, None)
    }

    /// AWS's endpoint of `service` (`kinesis`, `dynamodb`) in `region`.
    pub fn aws(service: &str, region: &str) -> Self {
        // The China regions live under their own domain.
        let domain = if region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        Self::new(
            Transport::Https,
            &format!("{service}.{region}.{domain}"),
            Some(region.to_owned()),
        )
    }

    fn new(transport: Transport, authority: &str, region: Option<String>) -> Self {
        let default_port = match transport {
            Transport::Http => ":80",
            Transport::Https => ":443",
        };
        let authority = authority.strip_suffix(default_port).unwrap_or(authority);
        Self {
            transport,
            authority: authority.to_ascii_lowercase(),
            region,
        }
    }

    /// The URL requests are posted to.
    pub fn url(&self) -> String {
        format!("{}://{}/", self.transport.scheme(), self.authority)
    }

    /// The endpoint as an engine URL names it, for `service`.
    pub fn engine_url(&self, service: &str) -> String {
        match &self.region {
            Some(region) => format!("{service}://{region}"),
            None => format!("{service}+{}://{}", self.transport.scheme(), self.authority),
        }
    }
}

/// The HTTP client of remote engines: TLS checked against the system's roots and
/// `AWS_CA_BUNDLE`'s.
pub fn http_client(endpoint: &Endpoint) -> Result<reqwest::Client, RemoteError> {
    let bundle = std::env::var_os("AWS_CA_BUNDLE").filter(|p| !p.is_empty());
    client_trusting(endpoint, bundle.as_deref().map(std::path::Path::new))
}

/// The client for `url` (`http://HOST:PORT/...` or `https://...`), as the CLI reaches a
/// running spillway: TLS checked as for engines.
pub fn client_for_url(url: &str) -> Result<reqwest::Client, RemoteError> {
    let (transport, rest) = match url.split_once("://") {
        Some(("https", rest)) => (Transport::Https, rest),
        Some((_, rest)) => (Transport::Http, rest),
        None => (Transport::Http, url),
    };
    let authority = rest.split('/').next().unwrap_or_default();
    http_client(&Endpoint::new(transport, authority, None))
}

/// [`http_client`], trusting the certificates of the PEM `bundle` too.
fn client_trusting(
    endpoint: &Endpoint,
    bundle: Option<&std::path::Path>,
) -> Result<reqwest::Client, RemoteError> {
    let setup = |message: String| RemoteError::Setup {
        endpoint: endpoint.url(),
        message,
    };
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .pool_idle_timeout(Duration::from_secs(30))
        .https_only(endpoint.transport == Transport::Https);
    if endpoint.transport == Transport::Http {
        // No TLS is spoken, so no system roots are loaded: a machine without
        // ca-certificates (a slim container) still reaches plain-HTTP engines.
        builder = builder.tls_certs_only(Vec::new());
    }
    if endpoint.transport == Transport::Https
        && let Some(path) = bundle
    {
        let shown = path.display().to_string();
        let pem = std::fs::read(path)
            .map_err(|e| setup(format!("reading AWS_CA_BUNDLE {shown}: {e}")))?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| setup(format!("AWS_CA_BUNDLE {shown}: {e}")))?;
        if certificates.is_empty() {
            return Err(setup(format!(
                "AWS_CA_BUNDLE {shown} holds no PEM certificate"
            )));
        }
        builder = builder.tls_certs_merge(certificates);
    }
    builder.build().map_err(|e| setup(super::error_chain(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_name_their_url_and_signed_host() {
        let aws = Endpoint::aws("kinesis", "eu-west-1");
        assert_eq!(aws.url(), "https://kinesis.eu-west-1.amazonaws.com/");
        assert_eq!(aws.authority, "kinesis.eu-west-1.amazonaws.com");
        assert_eq!(aws.region.as_deref(), Some("eu-west-1"));
        assert_eq!(aws.engine_url("kinesis"), "kinesis://eu-west-1");
        assert_eq!(
            Endpoint::aws("dynamodb", "cn-north-1").url(),
            "https://dynamodb.cn-north-1.amazonaws.com.cn/"
        );
        // A default port is not part of the Host header clients send, so it is not
        // signed either.
        assert_eq!(Endpoint::https("Db.Example:443").authority, "db.example");
        assert_eq!(
            Endpoint::https("db.example:8443").authority,
            "db.example:8443"
        );
        assert_eq!(Endpoint::http("h:80").url(), "http://h/");
        assert_eq!(
            Endpoint::https("h:8443").engine_url("dynamodb"),
            "dynamodb+https://h:8443"
        );
    }

    #[test]
    fn a_ca_bundle_without_certificates_is_refused_at_startup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let e = client_trusting(&Endpoint::https("h:1"), Some(&path)).unwrap_err();
        assert!(e.to_string().contains("AWS_CA_BUNDLE"), "{e}");
        let e =
            client_trusting(&Endpoint::https("h:1"), Some(&dir.path().join("gone"))).unwrap_err();
        assert!(e.to_string().contains("reading AWS_CA_BUNDLE"), "{e}");
        assert!(client_trusting(&Endpoint::https("h:1"), None).is_ok());
        assert!(client_for_url("http://127.0.0.1:4566/_spillway/streams").is_ok());
    }
}
