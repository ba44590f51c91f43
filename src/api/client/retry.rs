//! Retry decisions, backoff, and the parsing of error responses and rate-limit headers.

use std::error::Error as _;
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

use super::{RateLimit, RetryReason};
use crate::api::error::ApiError;
use crate::api::types::ErrorEnvelope;

/// First backoff step; each retry doubles it up to the configured cap.
const BASE_BACKOFF: Duration = Duration::from_millis(500);

/// A `Retry-After` longer than this is not waited for: the 429 is returned to the
/// caller, which can show it. The local server's window is 60 seconds.
pub(super) const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

/// Extra random wait added to `Retry-After`, so that clients limited together do not
/// all come back at the same instant, and so a window that ends within the announced
/// whole second has ended.
const RETRY_AFTER_JITTER: Duration = Duration::from_millis(250);

/// Maximum characters of an unexpected error body quoted in an error message.
const BODY_EXCERPT_CHARS: usize = 200;

/// Failure of one attempt.
pub(super) enum Failure {
    /// No HTTP response.
    Transport(ApiError),
    /// The server took the request but sent no response within the read timeout. Not
    /// retried: a stalled server would make every attempt wait as long again.
    TimedOut(ApiError),
    /// An HTTP response with a non-2xx status, already parsed.
    Status(StatusCode, ApiError),
}

impl Failure {
    /// Returns why the request may be retried, or `None` when it must not be.
    pub(super) fn reason(&self, idempotent: bool) -> Option<RetryReason> {
        match self {
            Failure::Status(status, _) if *status == StatusCode::TOO_MANY_REQUESTS => {
                Some(RetryReason::RateLimited)
            }
            // 501 means the server lacks the endpoint; asking again will not help.
            Failure::Status(status, _)
                if idempotent
                    && status.is_server_error()
                    && *status != StatusCode::NOT_IMPLEMENTED =>
            {
                Some(RetryReason::ServerError(status.as_u16()))
            }
            Failure::Transport(err) if idempotent => {
                Some(RetryReason::Transport(err.message().to_owned()))
            }
            _ => None,
        }
    }

    pub(super) fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Status(_, ApiError::Api { retry_after, .. }) => *retry_after,
            _ => None,
        }
    }

    pub(super) fn into_error(self) -> ApiError {
        match self {
            Failure::Transport(err) | Failure::TimedOut(err) | Failure::Status(_, err) => err,
        }
    }
}

/// Returns the wait before retry number `attempt + 1`, or `None` when the server requests
/// for a wait longer than [`MAX_RETRY_AFTER`].
///
/// Without `Retry-After` the wait is full jitter: uniform between zero and
/// `min(cap, 500 ms × 2^attempt)`.
pub(super) fn delay(
    attempt: u32,
    cap: Duration,
    retry_after: Option<Duration>,
) -> Option<Duration> {
    if let Some(wait) = retry_after {
        if wait > MAX_RETRY_AFTER {
            return None;
        }
        return Some(wait + RETRY_AFTER_JITTER.mul_f64(rand::random::<f64>()));
    }
    let exponential = BASE_BACKOFF.saturating_mul(2u32.saturating_pow(attempt.min(16)));
    Some(exponential.min(cap).mul_f64(rand::random::<f64>()))
}

/// Parses `Retry-After` as whole seconds or as an HTTP date.
pub(super) fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(
        date.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Reads the `X-RateLimit-*` headers; `None` when any of the three is missing.
pub(super) fn parse_rate_limit(headers: &HeaderMap) -> Option<RateLimit> {
    let number =
        |name: &str| -> Option<u64> { headers.get(name)?.to_str().ok()?.trim().parse().ok() };
    Some(RateLimit {
        limit: number("x-ratelimit-limit")?,
        remaining: number("x-ratelimit-remaining")?,
        reset_secs: number("x-ratelimit-reset")?,
        observed_at: std::time::Instant::now(),
    })
}

/// Turns a non-2xx response into an [`ApiError::Api`]. A body that is not the contract's
/// `{"error": …}` shape (a proxy's HTML 502 page, say) gets the code the contract uses
/// for the status and a message quoting the start of the body.
pub(super) fn error_from_answer(
    status: StatusCode,
    body: &[u8],
    retry_after: Option<Duration>,
    origin: &str,
) -> ApiError {
    if let Ok(envelope) = serde_json::from_slice::<ErrorEnvelope>(body) {
        return ApiError::from_body(status.as_u16(), envelope.error, retry_after);
    }
    let (code, kind) = fallback_code(status);
    let excerpt = excerpt(body);
    let message = if excerpt.is_empty() {
        format!("{origin} responded {status} with an empty body")
    } else {
        format!("{origin} responded {status} with a body that is not an API error: {excerpt}")
    };
    ApiError::Api {
        status: status.as_u16(),
        code: code.to_owned(),
        message,
        param: None,
        kind: kind.to_owned(),
        retry_after,
    }
}

/// Returns the contract's `code` and `type` for a status.
fn fallback_code(status: StatusCode) -> (&'static str, &'static str) {
    match status.as_u16() {
        401 => ("invalid_api_key", "authentication_error"),
        404 => ("not_found", "invalid_request_error"),
        413 => ("request_too_large", "invalid_request_error"),
        429 => ("rate_limit_exceeded", "rate_limit_error"),
        500..=599 => ("server_error", "api_error"),
        _ => ("http_error", "invalid_request_error"),
    }
}

/// Returns the start of a body as one line of printable text.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out = String::new();
    for word in text.split_whitespace() {
        if out.chars().count() >= BODY_EXCERPT_CHARS {
            out.push('…');
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().filter(|c| !c.is_control()));
    }
    out
}

/// Describes a failure to get a response: the host, what failed and the underlying
/// cause. reqwest errors carry the URL, which contains no secret, but the message names
/// only the host so it stays short.
pub(super) fn describe_transport(origin: &str, err: reqwest::Error) -> String {
    let what = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else if err.is_body() || err.is_decode() {
        "failed while reading the answer"
    } else {
        "failed"
    };
    let mut causes: Vec<String> = Vec::new();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !causes.iter().any(|known| known.contains(&text)) {
            causes.push(text);
        }
        source = cause.source();
    }
    if causes.is_empty() {
        causes.push(err.without_url().to_string());
    }
    format!("request to {origin} {what}: {}", causes.join(": "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            if let Ok(value) = HeaderValue::from_str(value) {
                map.insert(*name, value);
            }
        }
        map
    }

    #[test]
    fn retry_after_seconds_and_date() {
        let seconds = headers(&[("retry-after", "7")]);
        assert_eq!(parse_retry_after(&seconds), Some(Duration::from_secs(7)));
        let later = SystemTime::now() + Duration::from_secs(30);
        let date = headers(&[("retry-after", &httpdate::fmt_http_date(later))]);
        let parsed = parse_retry_after(&date).unwrap_or_default();
        assert!(parsed > Duration::from_secs(27), "{parsed:?}");
        assert!(parsed <= Duration::from_secs(30), "{parsed:?}");
        let past = headers(&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")]);
        assert_eq!(parse_retry_after(&past), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after(&headers(&[("retry-after", "soon")])),
            None
        );
    }

    #[test]
    fn backoff_is_capped_full_jitter() {
        let cap = Duration::from_secs(2);
        for attempt in 0..40 {
            let wait = delay(attempt, cap, None).unwrap_or(Duration::MAX);
            let ceiling = BASE_BACKOFF
                .saturating_mul(2u32.saturating_pow(attempt.min(16)))
                .min(cap);
            assert!(wait <= ceiling, "attempt {attempt}: {wait:?} > {ceiling:?}");
        }
    }

    #[test]
    fn long_retry_after_is_not_waited() {
        let cap = Duration::from_secs(1);
        assert_eq!(delay(0, cap, Some(Duration::from_secs(3600))), None);
        let wait = delay(0, cap, Some(Duration::from_secs(2))).unwrap_or_default();
        assert!(wait >= Duration::from_secs(2), "{wait:?}");
        assert!(
            wait <= Duration::from_secs(2) + RETRY_AFTER_JITTER,
            "{wait:?}"
        );
    }

    #[test]
    fn rate_limit_needs_all_headers() {
        let full = headers(&[
            ("x-ratelimit-limit", "100"),
            ("x-ratelimit-remaining", "99"),
            ("x-ratelimit-reset", "60"),
        ]);
        let state = parse_rate_limit(&full);
        assert_eq!(
            state.map(|s| (s.limit, s.remaining, s.reset_secs)),
            Some((100, 99, 60))
        );
        let partial = headers(&[("x-ratelimit-limit", "100")]);
        assert_eq!(parse_rate_limit(&partial), None);
    }

    #[test]
    fn html_error_page_gets_clear_message() {
        let body = b"<html>\r\n<head><title>502 Bad Gateway</title></head>\x1b[31m</html>";
        let err = error_from_answer(StatusCode::BAD_GATEWAY, body, None, "proxy.test");
        assert_eq!(err.status(), Some(502));
        assert_eq!(err.code(), "server_error");
        assert!(
            err.message().contains("proxy.test responded 502"),
            "{}",
            err.message()
        );
        assert!(
            err.message().contains("502 Bad Gateway</title>"),
            "{}",
            err.message()
        );
        assert!(!err.message().contains('\x1b'), "{}", err.message());
    }

    #[test]
    fn contract_error_body_is_parsed() {
        let body = br#"{"error":{"code":"invalid_request_error","message":"name is required","param":"name","type":"validation_error"}}"#;
        let err = error_from_answer(StatusCode::BAD_REQUEST, body, None, "h");
        assert_eq!(err.code(), "invalid_request_error");
        assert_eq!(err.param(), Some("name"));
        assert_eq!(err.message(), "name is required");
    }

    #[test]
    fn only_idempotent_requests_retry_server_errors() {
        let server =
            || Failure::Status(StatusCode::BAD_GATEWAY, ApiError::Transport(String::new()));
        assert_eq!(server().reason(true), Some(RetryReason::ServerError(502)));
        assert_eq!(server().reason(false), None);
        let limited = Failure::Status(
            StatusCode::TOO_MANY_REQUESTS,
            ApiError::Transport(String::new()),
        );
        assert_eq!(limited.reason(false), Some(RetryReason::RateLimited));
        let missing = Failure::Status(
            StatusCode::NOT_IMPLEMENTED,
            ApiError::Transport(String::new()),
        );
        assert_eq!(missing.reason(true), None);
        let lost = Failure::Transport(ApiError::Transport("reset".into()));
        assert_eq!(lost.reason(false), None);
        assert_eq!(
            lost.reason(true),
            Some(RetryReason::Transport("reset".into()))
        );
    }
}
