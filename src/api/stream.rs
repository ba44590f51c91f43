//! Server-sent event bytes to typed stream events.
//!
//! [`event_stream`] turns the body of `GET /v1/threads/{id}/messages/stream` into an
//! [`EventStream`]. `eventsource-stream` handles the SSE framing: events split across
//! reads or inside a character, CRLF line endings, and comment lines used as
//! keep-alives. This module decides what each event means:
//!
//! - an event of an unknown `type`, or an SSE event with a name other than `message`,
//!   is skipped and logged at debug level;
//! - an event whose data is not valid JSON, or lacks a field its type needs, is skipped
//!   with a warning, so one bad event costs at most one delta and not the whole reply;
//! - `[DONE]` is yielded as [`StreamEvent::Done`] and ends the stream;
//! - an `{"error": …}` event is yielded as `Err(ApiError::Api { status: 200, .. })`,
//!   carrying the status of the stream response, and ends the stream;
//! - a body that ends, or a connection that breaks, before `[DONE]` yields one
//!   [`ApiError::Transport`] and ends the stream, so callers keep the partial text and
//!   can offer a retry.
//!
//! Dropping the stream drops the response body, which closes the connection.

use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures::{Stream, StreamExt};

use super::client::EventStream;
use super::error::ApiError;
use super::types::{EventParseError, StreamEvent};

/// Message of the error yielded when the body ends before `[DONE]`.
pub const ENDED_BEFORE_DONE: &str = "stream ended before [DONE]";

/// Builds the typed event stream from the raw body of a stream response. `origin`
/// (the server's `host:port`) names the server in transport errors.
pub fn event_stream<S, B, E>(body: S, origin: String) -> EventStream
where
    S: Stream<Item = Result<B, E>> + Send + 'static,
    B: AsRef<[u8]> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let state = State {
        events: Box::pin(body.eventsource()),
        origin,
        finished: false,
    };
    Box::pin(futures::stream::unfold(state, |mut state| async move {
        let item = state.next_item().await?;
        Some((item, state))
    }))
}

type RawEvents<E> =
    std::pin::Pin<Box<dyn Stream<Item = Result<Event, EventStreamError<E>>> + Send>>;

struct State<E> {
    events: RawEvents<E>,
    origin: String,
    /// Set once the stream has yielded its last item.
    finished: bool,
}

impl<E: std::fmt::Display> State<E> {
    /// Returns the next item to yield, or `None` once the stream is over.
    async fn next_item(&mut self) -> Option<Result<StreamEvent, ApiError>> {
        if self.finished {
            return None;
        }
        loop {
            let raw = match self.events.next().await {
                Some(Ok(event)) => event,
                Some(Err(err)) => return Some(Err(self.finish_with(self.raw_error(err)))),
                None => {
                    let message = format!("{ENDED_BEFORE_DONE} from {}", self.origin);
                    return Some(Err(self.finish_with(ApiError::Transport(message))));
                }
            };
            if let Some(item) = self.interpret(raw) {
                return Some(item);
            }
        }
    }

    /// Turns one SSE event into an item, or `None` to skip it.
    fn interpret(&mut self, raw: Event) -> Option<Result<StreamEvent, ApiError>> {
        if !raw.event.is_empty() && raw.event != "message" {
            tracing::debug!(event = %raw.event, "skipping server-sent event of unknown name");
            return None;
        }
        if raw.data.trim().is_empty() {
            return None;
        }
        match StreamEvent::parse(&raw.data) {
            Ok(StreamEvent::Done) => {
                self.finished = true;
                Some(Ok(StreamEvent::Done))
            }
            Ok(StreamEvent::Error(body)) => {
                tracing::warn!(code = %body.code, message = %body.message, "error event in reply stream");
                Some(Err(self.finish_with(ApiError::from_body(200, body, None))))
            }
            Ok(event) => Some(Ok(event)),
            Err(EventParseError::UnknownType(kind)) => {
                tracing::debug!(%kind, "skipping stream event of unknown type");
                None
            }
            Err(EventParseError::Invalid(reason)) => {
                tracing::warn!(%reason, bytes = raw.data.len(), "skipping invalid stream event");
                None
            }
        }
    }

    fn raw_error(&self, err: EventStreamError<E>) -> ApiError {
        match err {
            EventStreamError::Transport(err) => ApiError::Transport(format!(
                "connection to {} broke before [DONE]: {err}",
                self.origin
            )),
            EventStreamError::Utf8(err) => ApiError::Decode(format!(
                "the event stream from {} is not valid UTF-8: {err}",
                self.origin
            )),
            EventStreamError::Parser(err) => ApiError::Decode(format!(
                "the event stream from {} is not valid server-sent events: {err}",
                self.origin
            )),
        }
    }

    fn finish_with(&mut self, err: ApiError) -> ApiError {
        self.finished = true;
        err
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn collect(
        chunks: Vec<Result<&'static [u8], String>>,
    ) -> Vec<Result<StreamEvent, ApiError>> {
        let stream = event_stream(futures::stream::iter(chunks), "test.invalid".into());
        stream.collect().await
    }

    #[tokio::test]
    async fn after_done_nothing_follows() {
        let items = collect(vec![Ok(
            b"data: [DONE]\n\ndata: {\"id\":\"m\",\"content\":\"late\",\"delta\":true}\n\n",
        )])
        .await;
        assert_eq!(items.len(), 1);
        assert!(matches!(items[0], Ok(StreamEvent::Done)));
    }

    #[tokio::test]
    async fn missing_done_is_transport_error() {
        let items = collect(vec![Ok(
            b"data: {\"id\":\"m\",\"content\":\"a\",\"delta\":true}\n\n",
        )])
        .await;
        assert_eq!(items.len(), 2);
        let Err(err) = &items[1] else {
            panic!("expected an error, got {:?}", items[1]);
        };
        assert_eq!(err.code(), "transport_error");
        assert!(err.message().contains(ENDED_BEFORE_DONE), "{err}");
    }

    #[tokio::test]
    async fn invalid_json_event_is_skipped() {
        let items = collect(vec![Ok(
            b"data: {not json\n\ndata: {\"id\":\"m\",\"content\":\"ok\",\"delta\":true}\n\ndata: [DONE]\n\n",
        )])
        .await;
        assert_eq!(items.len(), 2);
        assert!(matches!(&items[0], Ok(StreamEvent::Delta { content, .. }) if content == "ok"));
    }

    #[tokio::test]
    async fn broken_body_names_origin() {
        let items = collect(vec![Ok(b": keep-alive\n\n"), Err("reset by peer".into())]).await;
        assert_eq!(items.len(), 1);
        let message = items[0]
            .as_ref()
            .err()
            .map(ToString::to_string)
            .unwrap_or_default();
        assert!(message.contains("test.invalid"), "{message}");
        assert!(message.contains("reset by peer"), "{message}");
    }
}
