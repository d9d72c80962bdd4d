//! The live balance (spec §3.8): `GET /luna/energy/live` (bearer) and `GET /app/live` (the
//! page's cookie) stream Server-Sent Events. An event `balance` carries the body of
//! `/luna/energy/check` and the stream version as its `id`; it is sent at once, then whenever the
//! version moved (coalesced: the latest state). Each stream polls its user's version (one indexed
//! read) every `POLL` — writes never pay for listeners (no NOTIFY per append), and a change made
//! by any instance is seen within a second. The principal is checked again every `RECHECK`: a
//! revoked session, an expired token or a revoked key ends the stream. At most
//! `PER_USER` streams per user (the oldest is closed) and `TOTAL` in all per instance; every
//! stream ends when the hub shuts down.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use luna_core::UserId;
use tokio::sync::watch;

use crate::AppState;
use crate::error::ApiError;

/// How often a stream reads its user's version.
pub const POLL: Duration = Duration::from_millis(400);
/// How often a stream checks its principal again.
pub const RECHECK: Duration = Duration::from_secs(5);
/// Comment lines keeping a quiet stream open.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Streams per user per instance (a new one closes the oldest).
pub const PER_USER: usize = 5;
/// Streams per instance.
pub const TOTAL: usize = 1024;

/// Whether a principal still holds (its session, token or key), checked every `RECHECK`.
pub type Recheck = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;

/// The open streams of this instance.
#[derive(Default)]
pub struct Registry {
    streams: Mutex<Streams>,
}

#[derive(Default)]
struct Streams {
    next: u64,
    total: usize,
    by_user: BTreeMap<UserId, VecDeque<(u64, watch::Sender<bool>)>>,
}

/// A registered stream: closed when `closed` turns true; unregisters on drop.
struct Ticket {
    registry: Arc<Registry>,
    user: UserId,
    id: u64,
    closed: watch::Receiver<bool>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut s = self.registry.lock();
        if let Some(q) = s.by_user.get_mut(&self.user) {
            let before = q.len();
            q.retain(|(id, _)| *id != self.id);
            let removed = before - q.len();
            s.total -= removed;
            if s.by_user.get(&self.user).is_some_and(VecDeque::is_empty) {
                s.by_user.remove(&self.user);
            }
        }
    }
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, Streams> {
        self.streams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a stream for `user`, closing their oldest beyond `PER_USER`; refuses beyond
    /// `TOTAL`.
    fn open(self: &Arc<Self>, user: &UserId) -> Result<Ticket, ApiError> {
        let mut s = self.lock();
        let (tx, rx) = watch::channel(false);
        s.next += 1;
        let id = s.next;
        let queue_len = s.by_user.get(user).map_or(0, VecDeque::len);
        if queue_len >= PER_USER {
            if let Some((_, oldest)) = s.by_user.get_mut(user).and_then(VecDeque::pop_front) {
                let _ = oldest.send(true);
                s.total -= 1;
            }
        }
        if s.total >= TOTAL {
            return Err(ApiError::message(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "Too many live streams, retry",
            )
            .retry_after(5));
        }
        s.total += 1;
        s.by_user
            .entry(user.clone())
            .or_default()
            .push_back((id, tx));
        Ok(Ticket {
            registry: self.clone(),
            user: user.clone(),
            id,
            closed: rx,
        })
    }

    /// Open streams (for tests and metrics).
    pub fn open_streams(&self) -> usize {
        self.lock().total
    }
}

/// A `balance` event: the check body, the version as its id.
fn balance_event(user: &UserId, version: u64, view: &luna_core::view::CheckView) -> Event {
    let body = crate::wire::check_dto(user, view, version);
    Event::default()
        .event("balance")
        .id(version.to_string())
        .json_data(body)
        .unwrap_or_else(|_| Event::default().comment("unrenderable balance"))
}

/// The SSE response for `user`, starting after `last_seen` (`Last-Event-ID`).
pub fn stream(
    state: AppState,
    user: UserId,
    last_seen: Option<u64>,
    recheck: Recheck,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let ticket = state.live.open(&user)?;
    let closing = state.closing.clone();
    let events = futures_util::stream::unfold(
        (
            state,
            user,
            ticket,
            last_seen,
            recheck,
            tokio::time::Instant::now(),
        ),
        move |(state, user, mut ticket, mut last, recheck, mut checked_at)| {
            let mut closing = closing.clone();
            async move {
                loop {
                    if *closing.borrow() || *ticket.closed.borrow() {
                        return None;
                    }
                    if checked_at.elapsed() >= RECHECK {
                        if !recheck().await {
                            return None;
                        }
                        checked_at = tokio::time::Instant::now();
                    }
                    let version = state.hub.stream_version(&user).await.ok();
                    let moved = version.is_some_and(|v| Some(v) != last);
                    if moved {
                        if let Ok((v, view)) = state.hub.peek(&user).await {
                            last = Some(v);
                            let event = balance_event(&user, v, &view);
                            return Some((
                                Ok(event),
                                (state, user, ticket, last, recheck, checked_at),
                            ));
                        }
                    }
                    tokio::select! {
                        () = tokio::time::sleep(POLL) => {}
                        r = closing.changed() => if r.is_err() { return None; },
                        r = ticket.closed.changed() => if r.is_err() { return None; },
                    }
                }
            }
        },
    );
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive")))
}
