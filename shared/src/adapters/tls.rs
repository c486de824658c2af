//! The root certificates the AWS clients trust, and the HTTPS client built on them.
//!
//! The functions talk over TLS to DynamoDB, SQS and Secrets Manager only, and AWS serves
//! those endpoints with certificates from Amazon Trust Services. So by default the AWS
//! clients trust the five ATS roots (`amazon-trust-services.pem`, the set ATS recommends
//! for custom trust stores) and nothing else. That is a smaller trust surface than the
//! platform's ~140 roots, and it is cheaper: decoding the platform bundle is about a
//! millisecond and a quarter of every cold start, before anything useful happens.
//!
//! `TLS_ROOTS=system` goes back to the platform's roots: for a TLS-inspecting proxy
//! whose CA is installed there, or an endpoint served by another CA. Regions in China
//! (`cn-*`) use the platform's roots unless told otherwise, because their endpoints are
//! not documented as ATS-issued.

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_http_client::{Builder, Connector};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

use crate::config::{ConfigError, Env};

/// Amazon Root CA 1 to 4 and Starfield Services Root Certificate Authority - G2, from
/// <https://www.amazontrust.com/repository/>. The test below checks each against the
/// SHA-256 of its public key as published there.
const AMAZON_TRUST_SERVICES: &[u8] = include_bytes!("amazon-trust-services.pem");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrustRoots {
    /// Amazon Trust Services' five roots only.
    Amazon,
    /// The platform's root store (`SSL_CERT_FILE`, `SSL_CERT_DIR`, or the usual paths).
    System,
}

impl TrustRoots {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        match env.optional("TLS_ROOTS").as_deref().map(str::trim) {
            Some("amazon") => Ok(Self::Amazon),
            Some("system") => Ok(Self::System),
            Some(other) => {
                Err(ConfigError::Invalid { var: "TLS_ROOTS", reason: format!("{other:?} is not `amazon` or `system`") })
            }
            None => {
                let region = env.optional("AWS_REGION").or_else(|| env.optional("AWS_DEFAULT_REGION"));
                Ok(if region.is_some_and(|r| r.starts_with("cn-")) { Self::System } else { Self::Amazon })
            }
        }
    }
}

/// The SDK's default HTTPS client (rustls on aws-lc, proxies from the environment, the
/// SDK's connector settings) with the chosen trust store.
pub fn https_client(roots: TrustRoots) -> SharedHttpClient {
    let store = match roots {
        TrustRoots::Amazon => TrustStore::empty().with_native_roots(false).with_pem_certificate(AMAZON_TRUST_SERVICES),
        TrustRoots::System => TrustStore::default(),
    };
    let context = TlsContext::builder().with_trust_store(store).build().expect("a TLS context of PEM roots builds");
    // As `aws_smithy_runtime`'s default HTTPS client builds its connectors, with our
    // trust store: one connector per distinct set of connector settings, cached.
    Builder::new().build_with_connector_fn(move |settings, components| {
        let mut connector =
            Connector::builder().tls_provider(Provider::Rustls(CryptoMode::AwsLc)).tls_context(context.clone());
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

#[cfg(test)]
mod tests {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    use sha2::{Digest, Sha256};

    use super::*;

    /// SHA-256 of each root's SubjectPublicKeyInfo, as amazontrust.com/repository lists
    /// them, in the file's order.
    const PUBLISHED: [&str; 5] = [
        "fbe3018031f9586bcbf41727e417b7d1c45c2f47f93be372a17b96b50757d5a2",
        "7f4296fc5b6a4e3b35d3c369623e364ab1af381d8fa7121533c9d6c633ea2461",
        "36abc32656acfc645c61b71613c4bf21c787f5cabbee48348d58597803d7abc9",
        "f7ecded5c66047d28ed6466b543c40e0743abe81d109254dcf845d4c2c7853c5",
        "2b071c59a0a0ae76b0eadb2bad23bad4580b69c3601b630c2eaf0613afa83f92",
    ];

    /// DER of a SEQUENCE around `contents`.
    fn sequence(contents: &[u8]) -> Vec<u8> {
        let len = contents.len();
        let mut der = vec![0x30];
        match len {
            0..=0x7f => der.push(len as u8),
            0x80..=0xff => der.extend([0x81, len as u8]),
            _ => der.extend([0x82, (len >> 8) as u8, len as u8]),
        }
        der.extend_from_slice(contents);
        der
    }

    #[test]
    fn the_bundled_roots_are_the_five_amazon_trust_services_publishes() {
        let certs: Vec<CertificateDer> =
            CertificateDer::pem_slice_iter(AMAZON_TRUST_SERVICES).collect::<Result<_, _>>().unwrap();
        let hashes: Vec<String> = certs
            .iter()
            .map(|cert| {
                let anchor = webpki::anchor_from_trusted_cert(cert).expect("a root certificate");
                hex::encode(Sha256::digest(sequence(anchor.subject_public_key_info.as_ref())))
            })
            .collect();
        assert_eq!(hashes, PUBLISHED);
    }

    #[test]
    fn amazon_roots_are_the_default_outside_china() {
        assert_eq!(TrustRoots::from_env(&Env::of(&[])).unwrap(), TrustRoots::Amazon);
        assert_eq!(TrustRoots::from_env(&Env::of(&[("AWS_REGION", "eu-west-1")])).unwrap(), TrustRoots::Amazon);
        assert_eq!(TrustRoots::from_env(&Env::of(&[("AWS_REGION", "cn-north-1")])).unwrap(), TrustRoots::System);
        assert_eq!(
            TrustRoots::from_env(&Env::of(&[("AWS_DEFAULT_REGION", "cn-northwest-1")])).unwrap(),
            TrustRoots::System
        );
    }

    #[test]
    fn tls_roots_overrides_the_default_and_rejects_anything_else() {
        let read = |value| TrustRoots::from_env(&Env::of(&[("AWS_REGION", "cn-north-1"), ("TLS_ROOTS", value)]));
        assert_eq!(read("amazon").unwrap(), TrustRoots::Amazon);
        assert_eq!(read(" system ").unwrap(), TrustRoots::System);
        let err = read("mozilla").unwrap_err().to_string();
        assert!(err.contains("TLS_ROOTS") && err.contains("mozilla"), "{err}");
    }

    #[tokio::test]
    async fn both_trust_stores_build_a_client() {
        let settings = crate::adapters::AwsSettings::from_env(&Env::of(&[])).unwrap();
        for settings in [settings, settings.system_roots()] {
            let config = crate::adapters::aws_config(&settings).await;
            // Building a client validates its HTTP client, which builds a connector and
            // so parses the trust store: a bad bundle would panic here.
            let _ = aws_sdk_sqs::Client::new(&config);
            assert!(config.http_client().is_some());
        }
    }
}
