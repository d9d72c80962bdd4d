//! App events: recording what satellites post, the events page, and the narrative's input.

use luna_core::{AppEvent, Command, Id, UserId};
use luna_ports::{EventMetadata, PageQuery, Receipt, StreamPage};

use super::{Hub, MAX_PAGE};
use crate::engine::{Decided, Idempotency, Reply, Run};
use crate::error::AppError;
use crate::outcome::{AppEventOutcome, NarrativeInput};

impl Hub {
    /// Records an app event.
    pub async fn record_app_event(
        &self,
        user: &UserId,
        event: AppEvent,
        meta: &EventMetadata,
        idem: Option<&Idempotency<AppEventOutcome>>,
    ) -> Result<Reply<AppEventOutcome>, AppError> {
        let outcome = |d: &Decided<'_>| {
            let r = d.receipts.last().copied().unwrap_or(Receipt {
                event_id: d.new_events.last().map_or(Id::from_u128(0), |e| e.event_id),
                version: d.version,
                position: 0,
                recorded_at: d.now,
            });
            Ok(AppEventOutcome {
                user: user.clone(),
                event_id: r.event_id,
                stream_version: r.version,
                position: r.position,
                recorded_at: r.recorded_at,
            })
        };
        let command = Command::RecordAppEvent(event);
        let run = Run {
            user,
            entities: &[],
            command: &command,
            meta,
            idem,
            processed: None,
        };
        self.engine.run(run, &outcome).await
    }

    /// A page of a user's events, newest first.
    pub async fn events(
        &self,
        user: &UserId,
        before: Option<u64>,
        limit: usize,
        event_type: Option<&str>,
    ) -> Result<StreamPage, AppError> {
        let query = PageQuery {
            before_position: before,
            limit: limit.clamp(1, MAX_PAGE),
            event_type,
        };
        Ok(self.store.read_page(user, query).await?)
    }

    /// Everything the narrative needs.
    pub async fn narrative(&self, user: &UserId) -> Result<NarrativeInput, AppError> {
        // The position first: events appended after it are not in the input (it may lag, it
        // never claims events the input lacks).
        let last_position = self
            .store
            .read_page(
                user,
                PageQuery {
                    before_position: None,
                    limit: 1,
                    event_type: None,
                },
            )
            .await?
            .events
            .first()
            .map(|r| r.position);
        let events = self.store.read_events(user).await?;
        Ok(NarrativeInput {
            user: user.clone(),
            events,
            last_position,
            now: self.clock.now(),
        })
    }
}
