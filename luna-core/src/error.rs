//! The rules a command or a request can break, each with a stable code and a hand-written
//! message.

use std::fmt;

use crate::policy::{
    JsonPart, MAX_GRANT, MAX_HOLD_TTL_SECONDS, MAX_PASSWORD_CHARS, MAX_REASON_CHARS,
    MIN_PASSWORD_CHARS, USER_REFUND_QUOTA, USER_REFUND_QUOTA_DAYS,
};
use crate::units::{Energy, PackId};

/// Why energy is short: what a 402 reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortfall {
    /// The action's cost.
    pub required: Energy,
    /// The balance.
    pub current: i64,
    /// Balance minus active holds.
    pub available: i64,
    /// `max(0, required - available)`.
    pub deficit: u64,
    /// The pack to buy.
    pub required_pack: Option<PackId>,
}

/// A rule a command breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainError {
    /// Not enough available energy (or a negative balance).
    InsufficientEnergy(Shortfall),
    /// `ttl_seconds` outside 1..=3600.
    TtlOutOfRange,
    /// No such reservation for this user.
    ReservationNotFound,
    /// The hold expired before commit.
    ReservationExpired,
    /// The hold was released; it cannot be committed.
    ReservationReleased,
    /// The hold was committed; it cannot be released.
    ReservationCommitted,
    /// No such consume for this user.
    TransactionNotFound,
    /// The consume was already refunded.
    AlreadyRefunded,
    /// The consume cost nothing (Unlimited).
    NothingToRefund,
    /// The consume is older than the refund window.
    RefundWindowExpired,
    /// Users may not refund this action themselves.
    RefundNotEligible,
    /// The user refunded as many of their own consumes as the rolling window allows.
    RefundQuotaExceeded,
    /// The refund amount is below 1 or above the consume's cost.
    RefundAmountOutOfRange {
        /// The largest refundable amount, when the consume is known.
        max: Option<Energy>,
    },
    /// A grant outside 1..=`MAX_GRANT`.
    InvalidGrantAmount,
    /// A reason longer than `MAX_REASON_CHARS`.
    ReasonTooLong,
    /// A password outside `MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS`.
    PasswordLength,
    /// A client JSON object larger than its limit.
    TooLarge(JsonPart),
    /// The pack is not in the catalogue.
    UnknownPack,
    /// The pack is a subscription.
    NotAOneOffPack,
    /// The amount paid differs from the catalogue price.
    AmountMismatch,
    /// The currency paid differs from the catalogue currency.
    CurrencyMismatch,
    /// No credited purchase for that payment.
    PurchaseNotFound,
    /// The user is Unlimited: no one-off pack or second subscription.
    AlreadyUnlimited,
    /// Clients cannot post the hub's own event types.
    ReservedEventType,
    /// A quantity would overflow.
    Overflow,
}

impl DomainError {
    /// The stable snake-case code of the rule (the wire's `error` field).
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::InsufficientEnergy(_) => "insufficient_energy",
            DomainError::TtlOutOfRange => "ttl_out_of_range",
            DomainError::ReservationNotFound => "reservation_not_found",
            DomainError::ReservationExpired => "reservation_expired",
            DomainError::ReservationReleased => "reservation_released",
            DomainError::ReservationCommitted => "reservation_committed",
            DomainError::TransactionNotFound => "transaction_not_found",
            DomainError::AlreadyRefunded => "already_refunded",
            DomainError::NothingToRefund => "nothing_to_refund",
            DomainError::RefundWindowExpired => "refund_window_expired",
            DomainError::RefundNotEligible => "refund_not_eligible",
            DomainError::RefundQuotaExceeded => "refund_quota_exceeded",
            DomainError::RefundAmountOutOfRange { .. } => "refund_amount_out_of_range",
            DomainError::InvalidGrantAmount => "invalid_amount",
            DomainError::ReasonTooLong => "reason_too_long",
            DomainError::PasswordLength => "password_length",
            DomainError::TooLarge(_) => "too_large",
            DomainError::UnknownPack => "unknown_pack",
            DomainError::NotAOneOffPack => "not_a_one_off_pack",
            DomainError::AmountMismatch => "amount_mismatch",
            DomainError::CurrencyMismatch => "currency_mismatch",
            DomainError::PurchaseNotFound => "purchase_not_found",
            DomainError::AlreadyUnlimited => "already_unlimited",
            DomainError::ReservedEventType => "reserved_event_type",
            DomainError::Overflow => "overflow",
        }
    }
}

impl fmt::Display for DomainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DomainError::InsufficientEnergy(s) => write!(
                f,
                "Insufficient energy: {} required, {} available (deficit {})",
                s.required, s.available, s.deficit
            ),
            DomainError::TtlOutOfRange => {
                write!(f, "must be between 1 and {MAX_HOLD_TTL_SECONDS}")
            }
            DomainError::ReservationNotFound => f.write_str("Reservation not found"),
            DomainError::ReservationExpired => f.write_str("The reservation has expired"),
            DomainError::ReservationReleased => f.write_str("The reservation was released"),
            DomainError::ReservationCommitted => f.write_str("The reservation was committed"),
            DomainError::TransactionNotFound => f.write_str("Transaction not found"),
            DomainError::AlreadyRefunded => f.write_str("This transaction was already refunded"),
            DomainError::NothingToRefund => f.write_str("This transaction consumed no energy"),
            DomainError::RefundWindowExpired => f.write_str("The refund window has expired"),
            DomainError::RefundNotEligible => {
                f.write_str("This action is not eligible for a refund")
            }
            DomainError::RefundQuotaExceeded => write!(
                f,
                "At most {USER_REFUND_QUOTA} of your own actions can be refunded per {USER_REFUND_QUOTA_DAYS} days"
            ),
            DomainError::RefundAmountOutOfRange { max: Some(max) } => {
                write!(f, "must be between 1 and {max}")
            }
            DomainError::RefundAmountOutOfRange { max: None } => f.write_str("must be at least 1"),
            DomainError::InvalidGrantAmount => {
                write!(f, "must be between 1 and {MAX_GRANT}")
            }
            DomainError::ReasonTooLong => {
                write!(f, "must be at most {MAX_REASON_CHARS} characters")
            }
            DomainError::PasswordLength => write!(
                f,
                "must be between {MIN_PASSWORD_CHARS} and {MAX_PASSWORD_CHARS} characters"
            ),
            DomainError::TooLarge(part) => {
                write!(f, "must be at most {} KiB", part.max_bytes() / 1024)
            }
            DomainError::UnknownPack => f.write_str("Unknown pack"),
            DomainError::NotAOneOffPack => {
                f.write_str("This pack is a subscription, not a one-off pack")
            }
            DomainError::AmountMismatch => {
                f.write_str("The amount paid does not match the pack price")
            }
            DomainError::CurrencyMismatch => {
                f.write_str("The currency does not match the catalogue")
            }
            DomainError::PurchaseNotFound => f.write_str("No credited purchase for this payment"),
            DomainError::AlreadyUnlimited => f.write_str("Luna Unlimited is already active"),
            DomainError::ReservedEventType => {
                f.write_str("This event type is reserved for the hub")
            }
            DomainError::Overflow => f.write_str("Energy overflow"),
        }
    }
}

impl std::error::Error for DomainError {}
