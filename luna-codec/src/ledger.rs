//! The columns of the derived history data both SQL stores keep with each append: one ledger
//! row per energy event (the balances around it) and daily usage rollups (see
//! `luna_core::history::UsageCell`).

use luna_core::history::{self, TxKind, TxRow, UsageCell};
use luna_core::{Balance, Event};

use crate::CodecError;

/// The ledger columns of one history row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRow {
    /// The row as a usage cell of its own (day, kind, action, app, counts).
    pub cell: UsageCell,
    /// The balance before the event.
    pub balance_before: i64,
    /// The balance after it.
    pub balance_after: i64,
    /// `occurred_at`, ms since the epoch.
    pub occurred_at_ms: i64,
}

impl LedgerRow {
    /// The columns of a history row.
    pub fn of(row: &TxRow<'_>) -> LedgerRow {
        LedgerRow {
            cell: row.cell(),
            balance_before: row.energy_before.units(),
            balance_after: row.energy_after.units(),
            occurred_at_ms: row.at.millis(),
        }
    }

    /// The ledger row of an event about to be appended whose balance after it is
    /// `balance_after` (`None`: not an energy row).
    pub fn of_new(
        event: &Event,
        balance_after: Option<i64>,
    ) -> Result<Option<LedgerRow>, CodecError> {
        let Some(row) = history::row(0, event, Balance::ZERO, Balance::ZERO) else {
            return Ok(None);
        };
        let after = balance_after.ok_or_else(|| {
            CodecError::Invalid(format!(
                "{}: an energy event without its balance",
                event.kind.type_name()
            ))
        })?;
        let before = after
            .checked_sub(row.change())
            .ok_or_else(|| CodecError::Invalid("balance before the event".into()))?;
        Ok(Some(LedgerRow::of(&TxRow {
            energy_before: Balance::new(before),
            energy_after: Balance::new(after),
            ..row
        })))
    }

    /// Its gross amount (the `amount` column: the cell's energy, one row's).
    pub fn amount(&self) -> Result<i64, CodecError> {
        i64::try_from(self.cell.energy).map_err(|_| CodecError::Invalid("amount".into()))
    }

    /// Whether the row is an Unlimited consume (the `unlimited` column).
    pub fn unlimited(&self) -> bool {
        self.cell.unlimited != 0
    }

    /// The notional energy column.
    pub fn notional(&self) -> Result<i64, CodecError> {
        i64::try_from(self.cell.notional).map_err(|_| CodecError::Invalid("notional".into()))
    }
}

/// The ledger rows of a whole stream (oldest first), with each event's position.
pub fn stream_rows(recorded: &[luna_ports::RecordedEvent]) -> Vec<(u64, LedgerRow)> {
    let events: Vec<Event> = recorded.iter().map(|r| r.event.clone()).collect();
    history::transactions(&events)
        .iter()
        .map(|r| (recorded[r.index].position, LedgerRow::of(r)))
        .collect()
}

/// A usage cell read back from its columns.
#[allow(clippy::too_many_arguments, reason = "one argument per column")]
pub fn cell_of(
    day: i64,
    kind: &str,
    action: String,
    app: String,
    rows: i64,
    energy: i64,
    unlimited: i64,
    notional: i64,
) -> Result<UsageCell, CodecError> {
    let count = |v: i64, what: &str| {
        u64::try_from(v).map_err(|_| CodecError::Invalid(format!("usage {what}")))
    };
    Ok(UsageCell {
        day,
        kind: TxKind::parse(kind)
            .ok_or_else(|| CodecError::Invalid(format!("usage kind {kind}")))?,
        action,
        app,
        rows: count(rows, "rows")?,
        energy: count(energy, "energy")?,
        unlimited: count(unlimited, "unlimited")?,
        notional: count(notional, "notional")?,
    })
}
