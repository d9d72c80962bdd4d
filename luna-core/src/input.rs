//! What a request may ask: the ranges and sizes of client input, checked at the edge with the
//! domain's own errors, so every adapter (HTTP, an embedding service) applies the same rules
//! and no adapter writes a number of its own.

use crate::error::DomainError;
use crate::policy::{DEFAULT_HOLD_TTL_SECONDS, MAX_HOLD_TTL_SECONDS};
pub use crate::policy::{
    JsonPart, MAX_GRANT, MAX_PASSWORD_CHARS, MAX_REASON_CHARS, MIN_PASSWORD_CHARS,
};
use crate::units::Energy;

/// Refuses a serialised client JSON object over its part's limit.
pub fn json_size(part: JsonPart, bytes: usize) -> Result<(), DomainError> {
    if bytes > part.max_bytes() {
        Err(DomainError::TooLarge(part))
    } else {
        Ok(())
    }
}

/// A requested hold TTL in seconds: 1..=3600, `None` → the default (300).
pub fn hold_ttl(requested: Option<i64>) -> Result<u32, DomainError> {
    match requested {
        None => Ok(DEFAULT_HOLD_TTL_SECONDS),
        Some(t) => u32::try_from(t)
            .ok()
            .filter(|t| (1..=MAX_HOLD_TTL_SECONDS).contains(t))
            .ok_or(DomainError::TtlOutOfRange),
    }
}

/// A requested refund amount: at least 1 (its maximum, the consume's cost, is decided with the
/// consume); `None` → all of it.
pub fn refund_amount(requested: Option<i64>) -> Result<Option<Energy>, DomainError> {
    requested
        .map(|a| {
            u32::try_from(a)
                .ok()
                .filter(|a| *a >= 1)
                .map(Energy::new)
                .ok_or(DomainError::RefundAmountOutOfRange { max: None })
        })
        .transpose()
}

/// A requested grant: 1..=`MAX_GRANT`.
pub fn grant_amount(requested: i64) -> Result<Energy, DomainError> {
    u32::try_from(requested)
        .ok()
        .filter(|a| (1..=MAX_GRANT).contains(a))
        .map(Energy::new)
        .ok_or(DomainError::InvalidGrantAmount)
}

/// A password of 8 to 128 characters (checked before it is hashed).
pub fn password(text: &str) -> Result<&str, DomainError> {
    if (MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&text.chars().count()) {
        Ok(text)
    } else {
        Err(DomainError::PasswordLength)
    }
}

/// A free-text reason of at most `MAX_REASON_CHARS` characters.
pub fn reason(text: &str) -> Result<String, DomainError> {
    if text.chars().count() > MAX_REASON_CHARS {
        Err(DomainError::ReasonTooLong)
    } else {
        Ok(text.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hold_ttl_is_1_to_3600_seconds_and_300_by_default() {
        assert_eq!(hold_ttl(None), Ok(300));
        assert_eq!(hold_ttl(Some(1)), Ok(1));
        assert_eq!(hold_ttl(Some(3600)), Ok(3600));
        for bad in [0, -1, 3601, i64::MAX, i64::MIN] {
            assert_eq!(
                hold_ttl(Some(bad)),
                Err(DomainError::TtlOutOfRange),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_refund_amount_is_at_least_one() {
        assert_eq!(refund_amount(None), Ok(None));
        assert_eq!(refund_amount(Some(3)), Ok(Some(Energy::new(3))));
        for bad in [0, -5, i64::MAX] {
            assert!(refund_amount(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_grant_is_1_to_a_million() {
        assert_eq!(grant_amount(1), Ok(Energy::new(1)));
        assert_eq!(grant_amount(1_000_000), Ok(Energy::new(1_000_000)));
        for bad in [0, -1, 1_000_001] {
            assert_eq!(grant_amount(bad), Err(DomainError::InvalidGrantAmount));
        }
    }

    #[test]
    fn reasons_and_json_parts_have_size_limits() {
        assert!(reason(&"é".repeat(500)).is_ok());
        assert_eq!(reason(&"x".repeat(501)), Err(DomainError::ReasonTooLong));
        assert!(json_size(JsonPart::Context, 8192).is_ok());
        assert_eq!(
            json_size(JsonPart::Context, 8193),
            Err(DomainError::TooLarge(JsonPart::Context))
        );
        assert!(json_size(JsonPart::EventData, 16 * 1024).is_ok());
    }
}
