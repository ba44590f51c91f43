//! The Assisters wire contract, shared by the client and the local server.

pub mod client;
pub mod error;
pub mod stream;
pub mod types;

pub use client::{Client, ClientConfig};
pub use error::ApiError;
