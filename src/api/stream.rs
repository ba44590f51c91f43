//! Server-sent event bytes to typed stream events.
