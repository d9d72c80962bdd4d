//! Quantities and identifiers: energy, balances, money, time and ids as validated newtypes.
//!
//! All arithmetic on quantities is checked; nothing here is a float.

use std::fmt;

/// A non-negative amount of energy. 100 units are one full tank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Energy(u32);

impl Energy {
    /// Zero energy.
    pub const ZERO: Energy = Energy(0);

    /// Wraps a number of units.
    pub const fn new(units: u32) -> Self {
        Energy(units)
    }

    /// The number of units.
    pub const fn units(self) -> u32 {
        self.0
    }

    /// `self + other`, `None` on overflow.
    pub fn checked_add(self, other: Energy) -> Option<Energy> {
        self.0.checked_add(other.0).map(Energy)
    }

    /// `self - other`, `None` when it would go below zero.
    pub fn checked_sub(self, other: Energy) -> Option<Energy> {
        self.0.checked_sub(other.0).map(Energy)
    }

    /// `self - other`, clamped at zero.
    #[must_use]
    pub fn saturating_sub(self, other: Energy) -> Energy {
        Energy(self.0.saturating_sub(other.0))
    }

    /// Whether this is zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for Energy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A signed energy balance. Only a clawback may take it below zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Balance(i64);

impl Balance {
    /// The empty balance.
    pub const ZERO: Balance = Balance(0);

    /// Wraps a signed number of units.
    pub const fn new(units: i64) -> Self {
        Balance(units)
    }

    /// The signed number of units.
    pub const fn units(self) -> i64 {
        self.0
    }

    /// Adds energy, `None` on overflow.
    pub fn credit(self, energy: Energy) -> Option<Balance> {
        self.0.checked_add(i64::from(energy.0)).map(Balance)
    }

    /// Removes energy (may go negative), `None` on overflow.
    pub fn debit(self, energy: Energy) -> Option<Balance> {
        self.0.checked_sub(i64::from(energy.0)).map(Balance)
    }

    /// Whether the balance covers `energy` (`self >= energy`).
    pub fn covers(self, energy: Energy) -> bool {
        self.0 >= i64::from(energy.0)
    }

    /// Whether the balance is below zero.
    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }
}

impl fmt::Display for Balance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Integer minor units of a currency (cents for EUR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Cents(u64);

impl Cents {
    /// Wraps a number of minor units.
    pub const fn new(minor: u64) -> Self {
        Cents(minor)
    }

    /// The number of minor units.
    pub const fn minor(self) -> u64 {
        self.0
    }

    /// `self + other`, `None` on overflow.
    pub fn checked_add(self, other: Cents) -> Option<Cents> {
        self.0.checked_add(other.0).map(Cents)
    }

    /// The decimal display string with two decimals (`299` → `"2.99"`).
    pub fn decimal_string(self) -> String {
        format!("{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

/// An ISO 4217 currency code, stored lowercase (`eur`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    /// Euro.
    pub const EUR: Currency = Currency(*b"eur");

    /// Parses a three-letter code in any case.
    pub fn parse(code: &str) -> Result<Currency, InvalidValue> {
        let bytes = code.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_alphabetic) {
            return Err(InvalidValue::new(
                "currency",
                "must be a three-letter ISO code",
            ));
        }
        Ok(Currency([
            bytes[0].to_ascii_lowercase(),
            bytes[1].to_ascii_lowercase(),
            bytes[2].to_ascii_lowercase(),
        ]))
    }

    /// The lowercase code (`"eur"`).
    pub fn as_str(&self) -> &str {
        // Only ASCII letters are ever stored, so this cannot fail.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }

    /// The uppercase code (`"EUR"`), as the old clients expect on `/luna/energy/costs`.
    pub fn upper(&self) -> String {
        self.as_str().to_ascii_uppercase()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An amount of money in one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    /// Minor units.
    pub amount: Cents,
    /// Currency of `amount`.
    pub currency: Currency,
}

impl Money {
    /// Builds an amount.
    pub const fn new(amount: Cents, currency: Currency) -> Self {
        Money { amount, currency }
    }
}

/// A point in time: milliseconds since the Unix epoch, UTC.
///
/// Core never reads a clock: every decision receives the time as an argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// From milliseconds since the epoch.
    pub const fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    /// From whole seconds since the epoch.
    pub const fn from_secs(s: i64) -> Self {
        Timestamp(s.saturating_mul(1000))
    }

    /// Milliseconds since the epoch.
    pub const fn millis(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch (toward negative infinity).
    pub const fn secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// `self + d`, saturating.
    #[must_use]
    pub const fn plus(self, d: Span) -> Timestamp {
        Timestamp(self.0.saturating_add(d.0))
    }

    /// `self - d`, saturating.
    #[must_use]
    pub const fn minus(self, d: Span) -> Timestamp {
        Timestamp(self.0.saturating_sub(d.0))
    }

    /// The UTC calendar date of this instant.
    pub fn date(self) -> Date {
        Date::from_days(self.day_number())
    }

    /// Whole UTC days since 1970-01-01 (toward negative infinity).
    pub const fn day_number(self) -> i64 {
        self.0.div_euclid(86_400_000)
    }

    /// The first instant of the UTC day `day` (days since 1970-01-01), saturating.
    pub const fn start_of_day(day: i64) -> Timestamp {
        Timestamp(day.saturating_mul(86_400_000))
    }
}

/// A length of time in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Span(i64);

impl Span {
    /// From seconds.
    pub const fn seconds(s: i64) -> Span {
        Span(s.saturating_mul(1000))
    }

    /// From days.
    pub const fn days(d: i64) -> Span {
        Span(d.saturating_mul(86_400_000))
    }

    /// Milliseconds.
    pub const fn millis(self) -> i64 {
        self.0
    }
}

/// A UTC calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    /// Year (proleptic Gregorian).
    pub year: i32,
    /// Month 1..=12.
    pub month: u8,
    /// Day 1..=31.
    pub day: u8,
}

impl Date {
    /// The date `days` days after 1970-01-01 (Howard Hinnant's `civil_from_days`).
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "month and day are 1..=12 and 1..=31; the year range is bounded by i64 millis"
    )]
    pub fn from_days(days: i64) -> Date {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let y = yoe + era * 400;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = if m <= 2 { y + 1 } else { y };
        Date {
            year: year as i32,
            month: m as u8,
            day: d as u8,
        }
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// A 128-bit identifier, displayed as a hyphenated UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id(u128);

impl Id {
    /// Wraps 128 bits.
    pub const fn from_u128(v: u128) -> Self {
        Id(v)
    }

    /// The 128 bits.
    pub const fn as_u128(self) -> u128 {
        self.0
    }

    /// Parses the hyphenated form (`8-4-4-4-12` hex digits, any case).
    pub fn parse(s: &str) -> Result<Id, InvalidValue> {
        let b = s.as_bytes();
        let err = || InvalidValue::new("id", "must be a hyphenated UUID");
        if b.len() != 36 || b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
            return Err(err());
        }
        let mut v: u128 = 0;
        for (i, c) in b.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                continue;
            }
            let digit = (*c as char).to_digit(16).ok_or_else(err)?;
            v = (v << 4) | u128::from(digit);
        }
        Ok(Id(v))
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = format!("{:032x}", self.0);
        write!(
            f,
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
}

/// Identifies one energy transaction (a row of the history). A reservation and the consume
/// that commits it share one id.
pub type TransactionId = Id;

/// A value that failed validation at construction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidValue {
    /// What was being parsed.
    pub what: &'static str,
    /// Why it was refused.
    pub why: &'static str,
}

impl InvalidValue {
    /// Builds the error.
    pub const fn new(what: &'static str, why: &'static str) -> Self {
        InvalidValue { what, why }
    }
}

impl fmt::Display for InvalidValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.what, self.why)
    }
}

impl std::error::Error for InvalidValue {}

fn is_id_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

macro_rules! string_newtype {
    ($(#[$doc:meta])* $name:ident, $what:literal, $why:literal, $valid:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(std::sync::Arc<str>);

        impl $name {
            /// Validates and wraps the string.
            pub fn parse(s: &str) -> Result<Self, InvalidValue> {
                let valid: fn(&str) -> bool = $valid;
                if valid(s) {
                    Ok($name(std::sync::Arc::from(s)))
                } else {
                    Err(InvalidValue::new($what, $why))
                }
            }

            /// The string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_newtype!(
    /// A user id: `^[A-Za-z0-9_-]{1,64}$`. User ids may come from outside the hub.
    UserId, "user_id", "must match ^[A-Za-z0-9_-]{1,64}$",
    |s| (1..=64).contains(&s.len()) && s.bytes().all(is_id_char)
);

string_newtype!(
    /// The name of an action in the cost grid (`lettre_motivation`).
    ActionName, "action_name", "must match ^[A-Za-z0-9_-]{1,64}$",
    |s| (1..=64).contains(&s.len()) && s.bytes().all(is_id_char)
);

string_newtype!(
    /// The id of a pack in the catalogue (`cafe_luna`).
    PackId, "pack", "must match ^[A-Za-z0-9_-]{1,64}$",
    |s| (1..=64).contains(&s.len()) && s.bytes().all(is_id_char)
);

string_newtype!(
    /// A payment reference at the payment provider (a Stripe `PaymentIntent` id, `pi_…`).
    PaymentRef, "payment reference", "must be 1..=255 visible ASCII characters",
    |s| (1..=255).contains(&s.len()) && s.bytes().all(|c| c.is_ascii_graphic())
);

string_newtype!(
    /// A subscription id at the payment provider (`sub_…`).
    SubscriptionRef, "subscription id", "must be 1..=255 visible ASCII characters",
    |s| (1..=255).contains(&s.len()) && s.bytes().all(|c| c.is_ascii_graphic())
);

string_newtype!(
    /// The source app of an event (`^[a-z0-9_-]{1,50}$`).
    AppSource, "app_source", "must match ^[a-z0-9_-]{1,50}$",
    |s| (1..=50).contains(&s.len())
        && s.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-')
);

string_newtype!(
    /// The type of an app event (`^[A-Za-z][A-Za-z0-9_.-]{0,99}$`).
    EventType, "event_type", "must match ^[A-Za-z][A-Za-z0-9_.-]{0,99}$",
    |s| (1..=100).contains(&s.len())
        && s.as_bytes()[0].is_ascii_alphabetic()
        && s.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
);

/// An email address as the hub keeps and compares it: trimmed and lowercased (Unicode
/// lowercase computed here, so every store agrees), one `@` between a non-empty local part and
/// domain, at most 254 characters, no whitespace or control characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Email(std::sync::Arc<str>);

impl Email {
    /// Normalises and validates an address.
    pub fn parse(raw: &str) -> Result<Email, InvalidValue> {
        let normal = raw.trim().to_lowercase();
        let invalid = InvalidValue::new("email", "must be an email address");
        if normal.is_empty() || normal.chars().count() > 254 {
            return Err(invalid);
        }
        if normal.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid);
        }
        match normal.split_once('@') {
            Some((local, domain))
                if !local.is_empty() && !domain.is_empty() && !domain.contains('@') =>
            {
                Ok(Email(normal.into()))
            }
            _ => Err(invalid),
        }
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_round_trips_through_its_uuid_form() {
        let id = Id::from_u128(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
        let s = id.to_string();
        assert_eq!(s, "01234567-89ab-cdef-0011-223344556677");
        assert_eq!(Id::parse(&s), Ok(id));
        assert_eq!(Id::parse(&s.to_uppercase()), Ok(id));
        assert!(Id::parse("01234567-89ab-cdef-0011-22334455667").is_err());
        assert!(Id::parse("0123456789abcdef0011223344556677zzzz").is_err());
    }

    #[test]
    fn dates_are_utc_calendar_days() {
        assert_eq!(Timestamp::EPOCH.date().to_string(), "1970-01-01");
        // 2024-02-29T23:59:59.999Z
        assert_eq!(
            Timestamp::from_millis(1_709_251_199_999).date().to_string(),
            "2024-02-29"
        );
        assert_eq!(
            Timestamp::from_millis(1_709_251_200_000).date().to_string(),
            "2024-03-01"
        );
        assert_eq!(Timestamp::from_millis(-1).date().to_string(), "1969-12-31");
    }

    #[test]
    fn user_ids_follow_the_wire_pattern() {
        assert!(UserId::parse("user_42-A").is_ok());
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse("a b").is_err());
        assert!(UserId::parse(&"x".repeat(65)).is_err());
        assert!(UserId::parse(&"x".repeat(64)).is_ok());
    }

    #[test]
    fn event_types_and_app_sources_follow_the_wire_patterns() {
        assert!(EventType::parse("letter.generated").is_ok());
        assert!(EventType::parse("1letter").is_err());
        assert!(AppSource::parse("letters").is_ok());
        assert!(AppSource::parse("Letters").is_err());
    }

    #[test]
    fn emails_are_trimmed_and_lowercased_in_unicode() {
        assert_eq!(
            Email::parse("  Marie@Example.COM ").unwrap().as_str(),
            "marie@example.com"
        );
        assert_eq!(
            Email::parse("ÉLODIE@Exemple.fr").unwrap().as_str(),
            "élodie@exemple.fr"
        );
        assert_eq!(
            Email::parse("STRASSE@x.de").unwrap(),
            Email::parse("strasse@X.DE").unwrap()
        );
        for bad in [
            "",
            "nobody",
            "@x.fr",
            "a@",
            "a@b@c",
            "a b@c.fr",
            "a\u{0}@c.fr",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Email::parse(&format!("{}@x.fr", "a".repeat(250))).is_err());
    }

    #[test]
    fn currencies_are_kept_lowercase() {
        assert_eq!(Currency::parse("EUR"), Ok(Currency::EUR));
        assert_eq!(Currency::EUR.upper(), "EUR");
        assert!(Currency::parse("EU").is_err());
        assert!(Currency::parse("E1R").is_err());
    }

    #[test]
    fn cents_display_with_two_decimals() {
        assert_eq!(Cents::new(299).decimal_string(), "2.99");
        assert_eq!(Cents::new(2999).decimal_string(), "29.99");
        assert_eq!(Cents::new(5).decimal_string(), "0.05");
    }

    #[test]
    fn balance_arithmetic_is_checked() {
        assert_eq!(Balance::new(i64::MAX).credit(Energy::new(1)), None);
        assert_eq!(
            Balance::new(3).debit(Energy::new(5)),
            Some(Balance::new(-2))
        );
        assert!(Balance::new(5).covers(Energy::new(5)));
        assert!(!Balance::new(-1).covers(Energy::ZERO));
    }
}
