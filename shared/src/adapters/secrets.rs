//! Webhook secrets, resolved once at cold start: a plain value as given, or the ARN of
//! a Secrets Manager secret, read then, so the secret never sits in the template or in
//! the function's environment.

use aws_config::SdkConfig;

use crate::config::non_blank;
use crate::error::{BoxError, Error, Result};

/// Whether `value` names a Secrets Manager secret, in any partition AWS has
/// (`arn:aws:`, `arn:aws-cn:`, `arn:aws-us-gov:`), by its full or partial ARN.
pub fn is_secret_arn(value: &str) -> bool {
    let mut parts = value.splitn(4, ':');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some("arn"), Some("aws" | "aws-cn" | "aws-us-gov"), Some("secretsmanager"))
    )
}

pub async fn resolve(config: &SdkConfig, value: &str) -> Result<String> {
    if !is_secret_arn(value) {
        return Ok(value.to_owned());
    }
    let secret = |source: crate::error::BoxError| Error::Secret { arn: value.to_owned(), source };
    let out = aws_sdk_secretsmanager::Client::new(config)
        .get_secret_value()
        .secret_id(value)
        .send()
        .await
        .map_err(|e| secret(e.into()))?;
    out.secret_string().map(str::to_owned).ok_or_else(|| secret("the secret has no SecretString".into()))
}

/// The secret in variable `var`, resolved as [`resolve`] does, and refused, naming `var`,
/// when it comes to nothing (empty or blank).
pub async fn resolve_var(config: &SdkConfig, var: &'static str, value: &str) -> Result<String, BoxError> {
    Ok(non_blank(var, resolve(config, value).await?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_arn_is_known_in_every_partition_and_a_plain_value_is_not() {
        for arn in [
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:wriftai-token",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:wriftai-token-AbCdEf",
            "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:t",
            "arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:t",
        ] {
            assert!(is_secret_arn(arn), "{arn}");
        }
        for plain in ["whsec_abc", "arn:aws:ssm:us-east-1:1:parameter/x", "arn:aws-xx:secretsmanager:r:1:secret:t", ""]
        {
            assert!(!is_secret_arn(plain), "{plain}");
        }
    }
}
