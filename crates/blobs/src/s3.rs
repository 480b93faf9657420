//! The S3 store: objects in one bucket of S3 or an S3-compatible server (MinIO, Ceph, R2),
//! requests signed with AWS Signature Version 4. The object key is the blob key, so a bucket
//! can be listed, replicated or given a lifecycle rule per tenant prefix.

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use helpdesk_runtime::config::AttachmentsConfig;
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::BlobError;

/// The hash S3 expects of an empty request body.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// Tries per request: the store's own hiccups (5xx, a dropped connection) are retried, since
/// every request here is idempotent.
const ATTEMPTS: u32 = 3;

#[derive(Clone)]
pub(crate) struct Bucket {
    http: reqwest::Client,
    /// The bucket's URL, ending in `/`: object keys are joined to it.
    base: Url,
    signer: Signer,
}

impl Bucket {
    pub(crate) fn new(config: &AttachmentsConfig) -> Result<Self, BlobError> {
        let missing = |what: &str| BlobError::Config(format!("attachments.{what} is needed for the S3 store"));
        let endpoint = config.s3_endpoint.as_deref().ok_or_else(|| missing("s3_endpoint"))?;
        let bucket = config.s3_bucket.as_deref().ok_or_else(|| missing("s3_bucket"))?;
        let mut base = Url::parse(endpoint)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.host_str().is_some())
            .ok_or_else(|| {
                BlobError::Config("attachments.s3_endpoint must be an http:// or https:// URL".to_owned())
            })?;
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        if config.s3_path_style {
            base = base.join(&format!("{bucket}/")).map_err(|error| BlobError::Config(error.to_string()))?;
        } else {
            let host = base.host_str().unwrap_or_default().to_owned();
            base.set_host(Some(&format!("{bucket}.{host}"))).map_err(|error| BlobError::Config(error.to_string()))?;
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|error| BlobError::Config(error.to_string()))?;
        let signer = Signer {
            access_key_id: config.s3_access_key_id.clone().ok_or_else(|| missing("s3_access_key_id"))?,
            secret_access_key: config.s3_secret_access_key.clone().ok_or_else(|| missing("s3_secret_access_key"))?,
            region: config.s3_region.clone(),
        };
        Ok(Self { http, base, signer })
    }

    pub(crate) async fn put(&self, key: &str, sha256: &str, content: Bytes) -> Result<(), BlobError> {
        self.send(Method::PUT, key, sha256, Some(content)).await?;
        Ok(())
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Option<Bytes>, BlobError> {
        match self.send(Method::GET, key, EMPTY_SHA256, None).await? {
            Some(response) => Ok(Some(response.bytes().await.map_err(unavailable)?)),
            None => Ok(None),
        }
    }

    pub(crate) async fn size(&self, key: &str) -> Result<Option<u64>, BlobError> {
        let Some(response) = self.send(Method::HEAD, key, EMPTY_SHA256, None).await? else {
            return Ok(None);
        };
        let length = response.headers().get(reqwest::header::CONTENT_LENGTH).and_then(|value| value.to_str().ok());
        let length = length.and_then(|value| value.parse().ok());
        length.map(Some).ok_or_else(|| BlobError::Unavailable("the store gave no content length".to_owned()))
    }

    /// Sends a signed request; `None` when the object is not there.
    async fn send(
        &self,
        method: Method,
        key: &str,
        payload_sha256: &str,
        body: Option<Bytes>,
    ) -> Result<Option<reqwest::Response>, BlobError> {
        let url = self.base.join(key).map_err(|error| BlobError::BadKey(error.to_string()))?;
        let mut attempt = 1;
        loop {
            let now = Utc::now();
            let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
            let headers = [("x-amz-content-sha256", payload_sha256), ("x-amz-date", amz_date.as_str())];
            let authorization = self.signer.authorization(&method, &url, &headers, payload_sha256, now);
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .header("x-amz-content-sha256", payload_sha256)
                .header("x-amz-date", &amz_date)
                .header(reqwest::header::AUTHORIZATION, authorization);
            if let Some(body) = &body {
                request = request.body(body.clone());
            }
            let outcome = match request.send().await {
                Ok(response) if response.status().is_success() => return Ok(Some(response)),
                Ok(response) if response.status() == StatusCode::NOT_FOUND => return Ok(None),
                Ok(response) => {
                    let status = response.status();
                    let detail: String = response.text().await.unwrap_or_default().chars().take(300).collect();
                    let error = BlobError::Unavailable(format!("{method} {key}: {status} {detail}"));
                    if status.is_server_error() { Err(error) } else { return Err(error) }
                }
                Err(error) => Err(unavailable(error)),
            };
            if attempt == ATTEMPTS {
                return outcome;
            }
            tracing::warn!(attempt, %key, "blob store request failed; retrying");
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            attempt += 1;
        }
    }
}

fn unavailable(error: reqwest::Error) -> BlobError {
    BlobError::Unavailable(error.to_string())
}

/// AWS Signature Version 4 for the `s3` service.
#[derive(Clone)]
struct Signer {
    access_key_id: String,
    secret_access_key: SecretString,
    region: String,
}

impl Signer {
    /// The `Authorization` header of a request to `url` that carries `headers` (lowercase names,
    /// sorted, `x-amz-date` among them) besides `host`, with a body hashing to `payload_sha256`.
    fn authorization(
        &self,
        method: &Method,
        url: &Url,
        headers: &[(&str, &str)],
        payload_sha256: &str,
        now: DateTime<Utc>,
    ) -> String {
        let host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        let mut signed: Vec<(&str, &str)> = vec![("host", host.as_str())];
        signed.extend_from_slice(headers);
        signed.sort_unstable();
        let names = signed.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(";");
        let canonical_headers: String =
            signed.iter().map(|(name, value)| format!("{name}:{}\n", value.trim())).collect();
        let canonical_request = format!(
            "{method}\n{}\n{}\n{canonical_headers}\n{names}\n{payload_sha256}",
            url.path(),
            url.query().unwrap_or_default()
        );
        let date = now.format("%Y%m%d").to_string();
        let scope = format!("{date}/{}/s3/aws4_request", self.region);
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
            now.format("%Y%m%dT%H%M%SZ"),
            hex::encode(Sha256::digest(canonical_request.as_bytes()))
        );
        let secret = format!("AWS4{}", self.secret_access_key.expose_secret());
        let key = [date.as_str(), self.region.as_str(), "s3", "aws4_request"]
            .iter()
            .fold(secret.into_bytes(), |key, part| hmac(&key, part.as_bytes()));
        let signature = hex::encode(hmac(&key, string_to_sign.as_bytes()));
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={names}, Signature={signature}",
            self.access_key_id
        )
    }
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    /// The worked example of AWS's "Authenticating Requests: Using the Authorization Header"
    /// page for S3 (GET Object with a Range header), whose signature the page gives.
    #[test]
    fn signs_as_the_aws_worked_example() {
        let signer = Signer {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".to_owned(),
            secret_access_key: SecretString::from("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            region: "us-east-1".to_owned(),
        };
        let url = Url::parse("https://examplebucket.s3.amazonaws.com/test.txt").expect("a URL");
        let now = Utc.with_ymd_and_hms(2013, 5, 24, 0, 0, 0).single().expect("a time");
        let headers =
            [("range", "bytes=0-9"), ("x-amz-content-sha256", EMPTY_SHA256), ("x-amz-date", "20130524T000000Z")];
        let authorization = signer.authorization(&Method::GET, &url, &headers, EMPTY_SHA256, now);
        assert_eq!(
            authorization,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }
}
