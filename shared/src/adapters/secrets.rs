//! Webhook secrets, resolved once at cold start: a plain value as given, or the ARN of
//! a Secrets Manager secret, read then, so the secret never sits in the template or in
//! the function's environment.

use aws_config::SdkConfig;

use crate::config::non_blank;
use crate::error::{BoxError, Error, Result};

const ARN_PREFIX: &str = "arn:aws:secretsmanager:";

pub async fn resolve(config: &SdkConfig, value: &str) -> Result<String> {
    if !value.starts_with(ARN_PREFIX) {
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
