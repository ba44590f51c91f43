//! Reply engines: what produces an assistant's reply on the local server.
