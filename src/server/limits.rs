//! Authentication and the per-key rate limiter.
//!
//! Keys are compared in constant time. A request without a valid key is answered
//! 401 before the limiter, so it neither counts nor carries rate-limit headers. Each
//! key then gets a fixed 60-second window that opens at its first request; every
//! authenticated request counts once, and a stream counts once when it opens.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::{Choice, ConstantTimeEq};

use super::error::ApiFailure;
use super::state::AppState;

/// Length of a rate-limit window.
pub const WINDOW: Duration = Duration::from_secs(60);

/// The accepted API keys. `Debug` never shows them.
pub struct ApiKeys {
    keys: Vec<Vec<u8>>,
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeys({} keys, redacted)", self.keys.len())
    }
}

impl ApiKeys {
    pub fn new(keys: &[String]) -> ApiKeys {
        ApiKeys {
            keys: keys.iter().map(|key| key.as_bytes().to_vec()).collect(),
        }
    }

    /// Returns the index of the key equal to `presented`. Every key is compared, and
    /// each comparison takes the same time for keys of one length.
    // NOTE: `ct_eq` returns early on a length mismatch, so the lengths of the
    // configured keys are not hidden; their contents are.
    pub fn find(&self, presented: &[u8]) -> Option<usize> {
        let mut found = usize::MAX;
        for (index, key) in self.keys.iter().enumerate() {
            let equal: Choice = key.as_slice().ct_eq(presented);
            // Branch-free select so the loop does the same work whichever key matches.
            let mask = 0usize.wrapping_sub(usize::from(equal.unwrap_u8()));
            found = (index & mask) | (found & !mask);
        }
        (found != usize::MAX).then_some(found)
    }
}

/// The state of one key's window, as sent in the `X-RateLimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub limit: u32,
    pub remaining: u32,
    /// Whole seconds until the window ends, at least 1.
    pub reset_secs: u64,
}

/// The limiter's verdict on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed(Quota),
    Limited(Quota),
}

struct Window {
    started: Instant,
    count: u32,
}

/// Fixed-window request counter per key index.
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    windows: Mutex<HashMap<usize, Window>>,
}

impl RateLimiter {
    pub fn new(limit: u32, window: Duration) -> RateLimiter {
        RateLimiter {
            limit,
            window,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request of key `key` at `now`.
    pub fn check(&self, key: usize, now: Instant) -> Decision {
        let mut windows = match self.windows.lock() {
            Ok(windows) => windows,
            Err(poisoned) => poisoned.into_inner(),
        };
        let window = windows.entry(key).or_insert(Window {
            started: now,
            count: 0,
        });
        if now.saturating_duration_since(window.started) >= self.window {
            window.started = now;
            window.count = 0;
        }
        let left = self
            .window
            .saturating_sub(now.saturating_duration_since(window.started));
        let reset_secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        let quota = |count: u32| Quota {
            limit: self.limit,
            remaining: self.limit.saturating_sub(count),
            reset_secs: reset_secs.max(1),
        };
        if window.count >= self.limit {
            return Decision::Limited(quota(window.count));
        }
        window.count += 1;
        Decision::Allowed(quota(window.count))
    }
}

/// Returns the key of an `Authorization: Bearer KEY` header.
fn bearer(headers: &HeaderMap) -> Result<&[u8], ApiFailure> {
    let value = headers.get(header::AUTHORIZATION).ok_or_else(|| {
        ApiFailure::unauthorized("missing API key; send the header Authorization: Bearer KEY")
    })?;
    let bytes = value.as_bytes();
    let scheme_ok = bytes.len() > 7 && bytes[..7].eq_ignore_ascii_case(b"bearer ");
    if !scheme_ok {
        return Err(ApiFailure::unauthorized(
            "the Authorization header must be Bearer KEY",
        ));
    }
    Ok(bytes[7..].trim_ascii())
}

fn add_quota_headers(headers: &mut HeaderMap, quota: Quota) {
    headers.insert("x-ratelimit-limit", HeaderValue::from(quota.limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(quota.remaining));
    headers.insert("x-ratelimit-reset", HeaderValue::from(quota.reset_secs));
}

/// Middleware: authenticates the request, counts it, and adds the rate-limit headers.
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let key = match bearer(request.headers()) {
        Ok(presented) => state.keys.find(presented),
        Err(failure) => return failure.into_response(),
    };
    let Some(key) = key else {
        return ApiFailure::unauthorized("invalid API key").into_response();
    };
    match state.limiter.check(key, Instant::now()) {
        Decision::Limited(quota) => {
            let mut response =
                ApiFailure::rate_limited(quota.limit, quota.reset_secs).into_response();
            add_quota_headers(response.headers_mut(), quota);
            response
        }
        Decision::Allowed(quota) => {
            let mut response = next.run(request).await;
            add_quota_headers(response.headers_mut(), quota);
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_exactly() {
        let keys = ApiKeys::new(&["alpha".into(), "beta-key".into()]);
        assert_eq!(keys.find(b"alpha"), Some(0));
        assert_eq!(keys.find(b"beta-key"), Some(1));
        assert_eq!(keys.find(b"alph"), None);
        assert_eq!(keys.find(b"alphaa"), None);
        assert_eq!(keys.find(b""), None);
        assert!(!format!("{keys:?}").contains("alpha"));
    }

    #[test]
    fn limiter_counts_down_then_limits() {
        let limiter = RateLimiter::new(3, WINDOW);
        let start = Instant::now();
        let remaining: Vec<_> = (0..3)
            .map(|_| match limiter.check(0, start) {
                Decision::Allowed(quota) => quota.remaining,
                Decision::Limited(_) => u32::MAX,
            })
            .collect();
        assert_eq!(remaining, [2, 1, 0]);
        let later = start + Duration::from_millis(20_500);
        assert_eq!(
            limiter.check(0, later),
            Decision::Limited(Quota {
                limit: 3,
                remaining: 0,
                reset_secs: 40
            })
        );
    }

    #[test]
    fn limiter_keys_are_independent() {
        let limiter = RateLimiter::new(1, WINDOW);
        let now = Instant::now();
        assert!(matches!(limiter.check(0, now), Decision::Allowed(_)));
        assert!(matches!(limiter.check(0, now), Decision::Limited(_)));
        assert!(matches!(limiter.check(1, now), Decision::Allowed(_)));
    }

    #[test]
    fn limiter_window_resets() {
        let limiter = RateLimiter::new(1, WINDOW);
        let start = Instant::now();
        assert!(matches!(limiter.check(0, start), Decision::Allowed(_)));
        let near_end = start + Duration::from_millis(59_999);
        assert_eq!(
            limiter.check(0, near_end),
            Decision::Limited(Quota {
                limit: 1,
                remaining: 0,
                reset_secs: 1
            })
        );
        let next = start + WINDOW;
        assert_eq!(
            limiter.check(0, next),
            Decision::Allowed(Quota {
                limit: 1,
                remaining: 0,
                reset_secs: 60
            })
        );
    }
}
