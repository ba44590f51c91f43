//! New ids and timestamps.

use rand::Rng;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const ID_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const ID_LENGTH: usize = 24;

/// Returns a new id: `prefix` and 24 random lowercase letters and digits.
pub fn new_id(prefix: &str) -> String {
    let mut rng = rand::rng();
    let mut id = String::with_capacity(prefix.len() + ID_LENGTH);
    id.push_str(prefix);
    for _ in 0..ID_LENGTH {
        id.push(char::from(
            ID_ALPHABET[rng.random_range(0..ID_ALPHABET.len())],
        ));
    }
    id
}

/// Returns the current time as RFC 3339 in UTC with whole seconds.
pub fn now_rfc3339() -> String {
    let now = OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    now.format(&Rfc3339).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_prefix_and_length() {
        let id = new_id("asst_");
        assert!(id.starts_with("asst_"));
        assert_eq!(id.len(), 5 + ID_LENGTH);
        assert_ne!(new_id("asst_"), id);
    }

    #[test]
    fn timestamps_are_utc_whole_seconds() {
        let now = now_rfc3339();
        assert!(now.ends_with('Z'), "{now}");
        assert_eq!(now.len(), "2025-01-31T09:15:02Z".len(), "{now}");
    }
}
