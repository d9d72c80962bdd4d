//! History: the transactions page and analytics.

use luna_core::history::{self, TxKind};
use luna_core::{Timestamp, UserId};

use super::{Hub, MAX_PAGE};
use crate::error::AppError;
use crate::outcome::{AnalyticsOutcome, TransactionsPage, TxLine};

impl Hub {
    /// A page of the transaction history, newest first.
    pub async fn transactions(
        &self,
        user: &UserId,
        before: Option<u64>,
        limit: usize,
    ) -> Result<TransactionsPage, AppError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let recorded = self.store.read_stream(user).await?;
        let events: Vec<luna_core::Event> = recorded.iter().map(|r| r.event.clone()).collect();
        let rows = history::transactions(&events);
        let total_count = rows.len() as u64;
        let mut page: Vec<TxLine> = rows
            .iter()
            .rev()
            .filter(|r| before.is_none_or(|b| recorded[r.index].position < b))
            .take(limit + 1)
            .map(|r| TxLine {
                position: recorded[r.index].position,
                transaction_id: r.tx,
                kind: r.kind,
                amount: r.amount,
                reason: r.reason.clone(),
                app_source: if r.kind == TxKind::Consume {
                    r.app_source.map(str::to_owned)
                } else {
                    None
                },
                feature_used: r.feature_used.map(|a| a.as_str().to_owned()),
                energy_before: r.energy_before,
                energy_after: r.energy_after,
                created_at: r.at,
                context: r.context.map(|c| c.raw().clone()),
            })
            .collect();
        let next_before = if page.len() > limit {
            page.truncate(limit);
            page.last().map(|l| l.position)
        } else {
            None
        };
        Ok(TransactionsPage {
            user: user.clone(),
            lines: page,
            total_count,
            next_before,
        })
    }

    /// Analytics over `[from, to)`.
    pub async fn analytics(
        &self,
        user: &UserId,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
    ) -> Result<AnalyticsOutcome, AppError> {
        let recorded = self.store.read_stream(user).await?;
        let events: Vec<luna_core::Event> = recorded.into_iter().map(|r| r.event).collect();
        Ok(AnalyticsOutcome {
            user: user.clone(),
            analytics: history::analytics(&events, from, to, self.clock.now()),
        })
    }
}
