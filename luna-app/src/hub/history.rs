//! History: the transactions page and analytics.

use luna_core::history::{self, TxKind};
use luna_core::{Balance, Timestamp, UserId};
use luna_ports::StoreError;

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
        let page = self.store.history_page(user, before, limit).await?;
        let mut lines = Vec::with_capacity(page.entries.len());
        for entry in &page.entries {
            let r = history::row(
                0,
                &entry.event.event,
                Balance::new(entry.balance_before),
                Balance::new(entry.balance_after),
            )
            .ok_or_else(|| {
                AppError::from(StoreError::backend(std::io::Error::other(format!(
                    "history row {} is not an energy event",
                    entry.event.position
                ))))
            })?;
            lines.push(TxLine {
                position: entry.event.position,
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
            });
        }
        let next_before = if page.has_more {
            lines.last().map(|l| l.position)
        } else {
            None
        };
        Ok(TransactionsPage {
            user: user.clone(),
            lines,
            total_count: page.total_count,
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
        // The figures "now" from the projection (one row), the range from the rollups.
        let summary = self.engine.current_summary(user).await?;
        let usage = self.store.usage_totals(user, from, to).await?;
        Ok(AnalyticsOutcome {
            user: user.clone(),
            analytics: history::analytics_of(&summary, &usage, self.clock.now()),
        })
    }
}
