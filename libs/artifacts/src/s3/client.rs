//! Validating S3 settings, building the SDK client and creating the bucket.

use aws_config::BehaviorVersion;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{
    Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use steward_common::{Error, Result};

use super::errors;
use crate::config::S3Config;
use crate::path;

/// Settings derived from an [`S3Config`] once it passed validation.
pub(super) struct Settings {
    pub(super) prefix: String,
    pub(super) credentials: Option<Credentials>,
}

impl Settings {
    /// Checks the settings; errors name the setting, e.g. `s3.bucket`.
    pub(super) fn validate(cfg: &S3Config) -> Result<Self> {
        let bucket = &cfg.bucket;
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-'))
            && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
            && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !valid_bucket {
            return Err(Error::invalid_field(
                "s3.bucket",
                format!(
                    "{bucket:?} is not a valid bucket name (3 to 63 lowercase letters, digits, \
                     '.' and '-', starting and ending with a letter or digit)"
                ),
            ));
        }
        if cfg.region.is_empty() {
            return Err(Error::invalid_field(
                "s3.region",
                "must not be empty, e.g. us-east-1",
            ));
        }
        if let Some(endpoint) = &cfg.endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return Err(Error::invalid_field(
                "s3.endpoint",
                format!("{endpoint:?} must be an http:// or https:// URL"),
            ));
        }
        let prefix = cfg.prefix.trim_matches('/').to_owned();
        if !prefix.is_empty() {
            path::check(&prefix, "s3.prefix")?;
        }
        let credentials = match (&cfg.access_key_id, &cfg.secret_access_key) {
            (Some(id), Some(secret)) => {
                Some(Credentials::new(id, secret, None, None, "steward-config"))
            }
            (None, None) => None,
            _ => {
                return Err(Error::invalid_field(
                    "s3.secret_access_key",
                    "set both the access key id and the secret access key, or neither",
                ));
            }
        };
        Ok(Self {
            prefix,
            credentials,
        })
    }
}

/// Builds a client on the rustls (ring) HTTPS client, with static credentials if given and the
/// default AWS credential chain otherwise.
pub(super) async fn build(cfg: &S3Config, credentials: Option<Credentials>) -> Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .region(Region::new(cfg.region.clone()));
    if let Some(credentials) = credentials {
        loader = loader.credentials_provider(credentials);
    }
    let shared = loader.load().await;
    let mut builder = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(cfg.path_style)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    if let Some(endpoint) = &cfg.endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    Client::from_conf(builder.build())
}

/// Creates `bucket` in `region` unless it exists.
pub(super) async fn ensure_bucket(client: &Client, bucket: &str, region: &str) -> Result<()> {
    match client.head_bucket().bucket(bucket).send().await {
        Ok(_) => return Ok(()),
        Err(e) if errors::status(&e) == Some(404) => {}
        Err(e) => return Err(errors::sdk_error("HeadBucket", bucket, e)),
    }
    let mut request = client.create_bucket().bucket(bucket);
    if region != "us-east-1" {
        let location = CreateBucketConfiguration::builder()
            .location_constraint(BucketLocationConstraint::from(region))
            .build();
        request = request.create_bucket_configuration(location);
    }
    match request.send().await {
        Ok(_) => {
            tracing::info!(bucket, "created the artifact bucket");
            Ok(())
        }
        Err(e) if e.code() == Some("BucketAlreadyOwnedByYou") => Ok(()),
        Err(e) => Err(errors::sdk_error("CreateBucket", bucket, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> S3Config {
        S3Config {
            bucket: "steward-artifacts".into(),
            region: "us-east-1".into(),
            ..S3Config::default()
        }
    }

    #[test]
    fn validates_settings_naming_them() {
        let field = |c: S3Config| {
            Settings::validate(&c)
                .err()
                .map(|e| e.violations[0].field.clone())
        };
        assert_eq!(field(cfg()), None);
        for bucket in ["", "ab", "Upper", "a/b", "-ab", "a_b", &"a".repeat(64)] {
            assert_eq!(
                field(S3Config {
                    bucket: bucket.into(),
                    ..cfg()
                })
                .as_deref(),
                Some("s3.bucket")
            );
        }
        assert_eq!(
            field(S3Config {
                region: String::new(),
                ..cfg()
            })
            .as_deref(),
            Some("s3.region")
        );
        let endpoint = Some("127.0.0.1:9000".to_owned());
        assert_eq!(
            field(S3Config { endpoint, ..cfg() }).as_deref(),
            Some("s3.endpoint")
        );
        for prefix in ["a/../b", "..", "a//b", "%2e%2e"] {
            assert_eq!(
                field(S3Config {
                    prefix: prefix.into(),
                    ..cfg()
                })
                .as_deref(),
                Some("s3.prefix")
            );
        }
        let only_id = S3Config {
            access_key_id: Some("id".into()),
            ..cfg()
        };
        assert_eq!(field(only_id).as_deref(), Some("s3.secret_access_key"));
    }

    #[test]
    fn normalises_the_prefix() {
        let prefix = |p: &str| {
            Settings::validate(&S3Config {
                prefix: p.into(),
                ..cfg()
            })
            .unwrap()
            .prefix
        };
        assert_eq!(prefix(""), "");
        assert_eq!(prefix("/"), "");
        assert_eq!(prefix("/team/a/"), "team/a");
    }
}
