//! What every `/v1` request passes first: the rate limit, then the bearer token.

use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::Shared;
use crate::chaos::lock;
use crate::error::ApiError;

/// A fixed one-second window: at most `limit` requests per unix second. Simple, and
/// its reset time is exactly what `x-ratelimit-reset` reports.
#[derive(Debug)]
pub struct RateLimiter {
    limit: u32,
    /// (unix second of the window, requests counted in it)
    window: Mutex<(u64, u32)>,
}

impl RateLimiter {
    /// `limit` 0 lets everything through.
    pub fn new(limit: u32) -> Self {
        Self { limit, window: Mutex::new((0, 0)) }
    }

    /// Counts one request; `Err(reset)` when over the limit, with the unix second at
    /// which the window resets.
    pub fn check(&self, now_secs: u64) -> Result<(), u64> {
        if self.limit == 0 {
            return Ok(());
        }
        let mut window = lock(&self.window);
        if window.0 != now_secs {
            *window = (now_secs, 0);
        }
        if window.1 >= self.limit {
            return Err(now_secs + 1);
        }
        window.1 += 1;
        Ok(())
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Middleware for `/v1`: 429 past the rate limit, 401 without the right bearer token.
pub async fn guard(State(state): State<Shared>, request: Request, next: Next) -> Response {
    if let Err(reset) = state.limiter.check(unix_now()) {
        state.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
        tracing::info!(path = %request.uri().path(), reset, "rate limited");
        return ApiError::rate_limited(reset).into_response();
    }
    let token = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let expected = state.config.access_token.as_bytes();
    let authorised = token.is_some_and(|t| bool::from(t.as_bytes().ct_eq(expected)));
    if !authorised {
        return ApiError::unauthorized().into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_resets_with_the_next_second() {
        let limiter = RateLimiter::new(2);
        assert_eq!(limiter.check(100), Ok(()));
        assert_eq!(limiter.check(100), Ok(()));
        assert_eq!(limiter.check(100), Err(101));
        assert_eq!(limiter.check(101), Ok(()));
    }

    #[test]
    fn a_limit_of_zero_is_unlimited() {
        let limiter = RateLimiter::new(0);
        assert!((0..1000).all(|_| limiter.check(5).is_ok()));
    }
}
