//! The quarantine bucket (claim check): one `PutObject` per record too large for a quarantine
//! message, SigV4-signed with rusty-s3 and sent with the router's HTTPS client; S3's error
//! document read with an XML parser (quick-xml).

use std::time::Duration;

use super::failure::WriteFailure;

/// The quarantine bucket: one `PutObject` per record kept, signed with SigV4 (rusty-s3, a
/// sans-IO S3 signer) with the SDK's own credentials and sent with the router's HTTPS client.
/// Not aws-sdk-s3: linking it made the router 1.4 MiB larger and, through cargo's feature
/// unification, every Invoke dearer in memory (42 MiB instead of 38 at the peak of a
/// 10,000-record batch, BENCHMARKS.md), for a path used only by records over 1 MiB.
#[derive(Clone, Debug)]
pub struct QuarantineBucket {
    bucket: rusty_s3::Bucket,
    credentials: aws_credential_types::provider::SharedCredentialsProvider,
    http: reqwest::Client,
}

impl QuarantineBucket {
    /// The bucket `name` in `region` at `endpoint`: an AWS S3 endpoint (virtual-hosted
    /// addressing) unless `path_style` (a local server such as moto's has no per-bucket host
    /// names).
    pub fn new(
        endpoint: &str,
        path_style: bool,
        name: &str,
        region: &str,
        credentials: aws_credential_types::provider::SharedCredentialsProvider,
    ) -> Result<Self, String> {
        let endpoint: url::Url = endpoint
            .parse()
            .map_err(|e| format!("the S3 endpoint {endpoint:?} is not a URL: {e}"))?;
        let style = if path_style {
            rusty_s3::UrlStyle::Path
        } else {
            rusty_s3::UrlStyle::VirtualHost
        };
        let bucket = rusty_s3::Bucket::new(endpoint, style, name.to_owned(), region.to_owned())
            .map_err(|e| format!("bucket {name:?}: {e}"))?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build an HTTPS client: {e}"))?;
        Ok(Self {
            bucket,
            credentials,
            http,
        })
    }

    /// The bucket's name.
    pub fn name(&self) -> &str {
        self.bucket.name()
    }

    /// Keeps `body` at `key`.
    pub async fn put(&self, key: &str, body: &[u8]) -> Result<(), WriteFailure> {
        use aws_credential_types::provider::ProvideCredentials;
        use rusty_s3::S3Action;
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| WriteFailure::transient(format!("no AWS credentials: {e}")))?;
        let credentials = match credentials.session_token() {
            Some(token) => rusty_s3::Credentials::new_with_token(
                credentials.access_key_id(),
                credentials.secret_access_key(),
                token,
            ),
            None => rusty_s3::Credentials::new(
                credentials.access_key_id(),
                credentials.secret_access_key(),
            ),
        };
        let url = rusty_s3::actions::PutObject::new(&self.bucket, Some(&credentials), key)
            .sign(Duration::from_secs(300));
        // No encryption header: the bucket's default encryption (the stack's KMS key) applies.
        let answer = self
            .http
            .put(url)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| WriteFailure::transient(format!("PutObject was not answered: {e}")))?;
        let status = answer.status().as_u16();
        if answer.status().is_success() {
            return Ok(());
        }
        let text = answer.text().await.unwrap_or_default();
        let code = error_code(&text).unwrap_or_else(|| "Unknown".to_owned());
        Err(WriteFailure {
            retryable: status >= 500 || status == 429 || code == "SlowDown",
            message: format!("PutObject: {status} {code}"),
        })
    }
}

/// The `Code` of S3's error document (`<Error><Code>…</Code><Message>…</Message>…</Error>`,
/// <https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html>), if the text is one.
fn error_code(text: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct ErrorDocument {
        #[serde(rename = "Code")]
        code: String,
    }
    quick_xml::de::from_str::<ErrorDocument>(text)
        .ok()
        .map(|document| document.code)
        .filter(|code| !code.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_code_is_read_from_s3s_error_document() {
        let document = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>SlowDown</Code><Message>Please reduce your request rate. &lt;Code&gt;</Message>
<RequestId>4442587FB7D0A2F9</RequestId></Error>"#;
        assert_eq!(error_code(document).as_deref(), Some("SlowDown"));
        // A message that mentions <Code> does not fool it, and neither does a body that is not
        // an error document.
        let tricky =
            "<Error><Message>see <Code>x</Code></Message><Code>AccessDenied</Code></Error>";
        assert_eq!(error_code(tricky).as_deref(), Some("AccessDenied"));
        assert_eq!(error_code("Bad Gateway"), None);
        assert_eq!(error_code(""), None);
    }
}
