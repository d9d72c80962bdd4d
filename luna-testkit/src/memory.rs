//! An in-memory store: the reference implementation of the storage ports.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use luna_core::history::UsageCell;
use luna_core::{EntityRef, Summary, Timestamp, UserId};
use luna_ports::{
    AppendBatch, Appended, Clock, EventStore, HistoryEntry, HistoryPage, IdempotencyRecord,
    IdempotencyStore, KeyStore, LoadedWallet, PageQuery, Receipt, RecordedEvent, ServiceKey,
    StoreError, StoredSummary, StreamPage,
};
use std::sync::Arc;

#[derive(Default)]
struct Stream {
    positions: Vec<usize>,
    summary: Summary,
    refs: HashMap<String, Vec<usize>>,
}

#[derive(Default)]
struct Inner {
    events: Vec<RecordedEvent>,
    streams: BTreeMap<UserId, Stream>,
    entity_owner: HashMap<String, UserId>,
    idempotency: HashMap<(String, String), IdempotencyRecord>,
    keys: Vec<(ServiceKey, String)>,
    accounts: AccountsInner,
    billing: BillingInner,
    down: bool,
}

/// An in-memory event store with the same semantics as the SQL ones.
pub struct MemoryStore {
    inner: Mutex<Inner>,
    clock: Arc<dyn Clock>,
}

impl MemoryStore {
    /// A store stamping `recorded_at` with `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        MemoryStore {
            inner: Mutex::new(Inner::default()),
            clock,
        }
    }

    /// Makes every call fail as if the database were unreachable (or reachable again).
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    /// Overwrites a stored summary (to test verification of tampered projections).
    pub fn tamper_summary(&self, stream: &UserId, summary: Summary) {
        if let Some(s) = self.lock().streams.get_mut(stream) {
            s.summary = summary;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn guard(&self) -> Result<std::sync::MutexGuard<'_, Inner>, StoreError> {
        let g = self.lock();
        if g.down {
            Err(StoreError::Unavailable("memory store is down".into()))
        } else {
            Ok(g)
        }
    }
}

/// The refusals of an append (version, emptiness, a processed provider event, a used key);
/// the stream's current version otherwise.
fn check_append(g: &Inner, batch: &AppendBatch<'_>) -> Result<u64, StoreError> {
    let current = g
        .streams
        .get(&batch.stream)
        .map_or(0, |s| s.positions.len() as u64);
    if current != batch.expected_version {
        return Err(StoreError::Conflict);
    }
    if batch.events.is_empty() {
        return Err(StoreError::backend(std::io::Error::other("empty append")));
    }
    if let Some(event_id) = batch.processed {
        if g.billing
            .processed
            .contains(&(batch.stream.clone(), event_id.to_owned()))
        {
            return Err(StoreError::Conflict);
        }
    }
    if let Some(p) = &batch.idempotency {
        if g.idempotency
            .contains_key(&(p.scope.clone(), p.key.clone()))
        {
            return Err(StoreError::Conflict);
        }
    }
    Ok(current)
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn append(&self, batch: AppendBatch<'_>) -> Result<Appended, StoreError> {
        let now = self.clock.now();
        let mut g = self.guard()?;
        let current = check_append(&g, &batch)?;
        let first = g.events.len();
        let receipts: Vec<Receipt> = batch
            .events
            .iter()
            .enumerate()
            .map(|(i, e)| Receipt {
                event_id: e.event_id,
                version: current + 1 + i as u64,
                position: (first + i + 1) as u64,
                recorded_at: now,
            })
            .collect();
        // Render before mutating anything, so a panic leaves the store untouched.
        let record = batch.idempotency.and_then(|p| {
            let (scope, key, fingerprint, created_at) =
                (p.scope, p.key, p.fingerprint, p.created_at);
            (p.render)(&receipts).map(|response| IdempotencyRecord {
                stream: scope,
                key,
                fingerprint,
                response,
                created_at,
            })
        });
        for (e, r) in batch.events.iter().zip(&receipts) {
            let idx = g.events.len();
            g.events.push(RecordedEvent {
                event_id: e.event_id,
                stream: batch.stream.clone(),
                version: r.version,
                position: r.position,
                event: e.event.clone(),
                metadata: e.metadata.clone(),
                recorded_at: now,
                after: e.after,
            });
            if let Some(entity) = e.event.kind.directory_entity() {
                g.entity_owner
                    .entry(entity.key())
                    .or_insert_with(|| batch.stream.clone());
            }
            let stream = g.streams.entry(batch.stream.clone()).or_default();
            stream.positions.push(idx);
            if let Some(entity) = e.event.kind.entity_ref() {
                stream.refs.entry(entity.key()).or_default().push(idx);
            }
        }
        g.streams.entry(batch.stream.clone()).or_default().summary = batch.summary.clone();
        if let Some(event_id) = batch.processed {
            g.billing
                .processed
                .insert((batch.stream.clone(), event_id.to_owned()));
        }
        if let Some(r) = record {
            g.idempotency.insert((r.stream.clone(), r.key.clone()), r);
        }
        Ok(Appended { receipts })
    }

    async fn load(
        &self,
        stream: &UserId,
        entities: &[EntityRef],
    ) -> Result<LoadedWallet, StoreError> {
        let g = self.guard()?;
        let Some(s) = g.streams.get(stream) else {
            return Ok(LoadedWallet::default());
        };
        let mut idx: Vec<usize> = entities
            .iter()
            .filter_map(|e| s.refs.get(&e.key()))
            .flatten()
            .copied()
            .collect();
        idx.sort_unstable();
        idx.dedup();
        Ok(LoadedWallet {
            version: s.positions.len() as u64,
            summary: s.summary.clone(),
            entity_events: idx.into_iter().map(|i| g.events[i].clone()).collect(),
            cached: false,
        })
    }

    async fn current_version(&self, stream: &UserId) -> Result<u64, StoreError> {
        let g = self.guard()?;
        Ok(g.streams
            .get(stream)
            .map_or(0, |s| s.positions.len() as u64))
    }

    async fn read_stream(&self, stream: &UserId) -> Result<Vec<RecordedEvent>, StoreError> {
        let g = self.guard()?;
        Ok(g.streams
            .get(stream)
            .map(|s| s.positions.iter().map(|i| g.events[*i].clone()).collect())
            .unwrap_or_default())
    }

    async fn read_page(&self, stream: &UserId, q: PageQuery<'_>) -> Result<StreamPage, StoreError> {
        let g = self.guard()?;
        let Some(s) = g.streams.get(stream) else {
            return Ok(StreamPage {
                events: vec![],
                total_count: 0,
                has_more: false,
            });
        };
        let matching: Vec<&RecordedEvent> = s
            .positions
            .iter()
            .rev()
            .map(|i| &g.events[*i])
            .filter(|e| q.event_type.is_none_or(|t| e.event.kind.type_name() == t))
            .collect();
        let total_count = matching.len() as u64;
        let mut page: Vec<RecordedEvent> = matching
            .into_iter()
            .filter(|e| q.before_position.is_none_or(|b| e.position < b))
            .take(q.limit + 1)
            .cloned()
            .collect();
        let has_more = page.len() > q.limit;
        page.truncate(q.limit);
        Ok(StreamPage {
            events: page,
            total_count,
            has_more,
        })
    }

    async fn history_page(
        &self,
        stream: &UserId,
        before_position: Option<u64>,
        limit: usize,
    ) -> Result<HistoryPage, StoreError> {
        // The reference: a fold of the whole stream (the SQL stores keep the rows instead).
        let recorded = self.read_stream(stream).await?;
        let events: Vec<luna_core::Event> = recorded.iter().map(|r| r.event.clone()).collect();
        let rows = luna_core::history::transactions(&events);
        let mut entries: Vec<HistoryEntry> = rows
            .iter()
            .rev()
            .filter(|r| before_position.is_none_or(|b| recorded[r.index].position < b))
            .take(limit + 1)
            .map(|r| HistoryEntry {
                event: recorded[r.index].clone(),
                balance_before: r.energy_before.units(),
                balance_after: r.energy_after.units(),
                cell: r.cell(),
            })
            .collect();
        let has_more = entries.len() > limit;
        entries.truncate(limit);
        Ok(HistoryPage {
            entries,
            total_count: rows.len() as u64,
            has_more,
        })
    }

    async fn usage(
        &self,
        stream: &UserId,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
    ) -> Result<Vec<UsageCell>, StoreError> {
        let events: Vec<luna_core::Event> = self
            .read_stream(stream)
            .await?
            .into_iter()
            .map(|r| r.event)
            .collect();
        Ok(luna_core::history::usage(&events, from, to))
    }

    async fn read_all(
        &self,
        after_position: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let g = self.guard()?;
        let start = usize::try_from(after_position)
            .unwrap_or(usize::MAX)
            .min(g.events.len());
        Ok(g.events[start..].iter().take(limit).cloned().collect())
    }

    async fn find_stream(&self, entity: &EntityRef) -> Result<Option<UserId>, StoreError> {
        Ok(self.guard()?.entity_owner.get(&entity.key()).cloned())
    }

    async fn summaries(
        &self,
        after: Option<&UserId>,
        limit: usize,
    ) -> Result<Vec<StoredSummary>, StoreError> {
        let g = self.guard()?;
        Ok(g.streams
            .iter()
            .filter(|(id, _)| after.is_none_or(|a| *id > a))
            .take(limit)
            .map(|(id, s)| StoredSummary {
                stream: id.clone(),
                version: s.positions.len() as u64,
                summary: s.summary.clone(),
            })
            .collect())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.guard().map(|_| ())
    }
}

#[async_trait]
impl IdempotencyStore for MemoryStore {
    async fn get(&self, stream: &str, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        Ok(self
            .guard()?
            .idempotency
            .get(&(stream.to_owned(), key.to_owned()))
            .cloned())
    }

    async fn put(&self, record: IdempotencyRecord) -> Result<(), StoreError> {
        let mut g = self.guard()?;
        let id = (record.stream.clone(), record.key.clone());
        if g.idempotency.contains_key(&id) {
            return Err(StoreError::Conflict);
        }
        g.idempotency.insert(id, record);
        Ok(())
    }

    async fn purge(&self, before: Timestamp) -> Result<u64, StoreError> {
        let mut g = self.guard()?;
        let n = g.idempotency.len();
        g.idempotency.retain(|_, r| r.created_at >= before);
        Ok((n - g.idempotency.len()) as u64)
    }
}

#[async_trait]
impl KeyStore for MemoryStore {
    async fn create_key(&self, key: &ServiceKey, secret_hash: &str) -> Result<(), StoreError> {
        let mut g = self.guard()?;
        if g.keys
            .iter()
            .any(|(k, h)| k.id == key.id || h == secret_hash)
        {
            return Err(StoreError::Conflict);
        }
        g.keys.push((key.clone(), secret_hash.to_owned()));
        Ok(())
    }

    async fn find_key(&self, secret_hash: &str) -> Result<Option<ServiceKey>, StoreError> {
        Ok(self
            .guard()?
            .keys
            .iter()
            .find(|(k, h)| h == secret_hash && k.revoked_at.is_none())
            .map(|(k, _)| k.clone()))
    }

    async fn list_keys(&self) -> Result<Vec<ServiceKey>, StoreError> {
        Ok(self.guard()?.keys.iter().map(|(k, _)| k.clone()).collect())
    }

    async fn revoke_key(&self, id: luna_core::Id, at: Timestamp) -> Result<bool, StoreError> {
        let mut g = self.guard()?;
        match g
            .keys
            .iter_mut()
            .find(|(k, _)| k.id == id && k.revoked_at.is_none())
        {
            Some((k, _)) => {
                k.revoked_at = Some(at);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// Accounts, sessions, refresh histories and counters, in memory.
#[derive(Default)]
pub(crate) struct AccountsInner {
    accounts: BTreeMap<UserId, luna_ports::Account>,
    emails: HashMap<String, UserId>,
    sessions: BTreeMap<(UserId, luna_core::Id), luna_ports::Session>,
    history: HashMap<(UserId, String), luna_core::Id>,
    throttle: BTreeMap<String, (u32, Timestamp)>,
    secret: Option<String>,
}

#[async_trait]
impl luna_ports::AccountStore for MemoryStore {
    async fn create_account(&self, a: &luna_ports::Account) -> Result<(), StoreError> {
        let mut g = self.guard()?;
        let acc = &mut g.accounts;
        if acc.emails.contains_key(a.email.as_str()) || acc.accounts.contains_key(&a.user) {
            return Err(StoreError::Conflict);
        }
        acc.emails
            .insert(a.email.as_str().to_owned(), a.user.clone());
        acc.accounts.insert(a.user.clone(), a.clone());
        Ok(())
    }

    async fn account_by_email(
        &self,
        email: &luna_core::Email,
    ) -> Result<Option<luna_ports::Account>, StoreError> {
        let g = self.guard()?;
        Ok(g.accounts
            .emails
            .get(email.as_str())
            .and_then(|u| g.accounts.accounts.get(u))
            .cloned())
    }

    async fn account(&self, user: &UserId) -> Result<Option<luna_ports::Account>, StoreError> {
        Ok(self.guard()?.accounts.accounts.get(user).cloned())
    }

    async fn create_session(&self, s: &luna_ports::Session) -> Result<(), StoreError> {
        let mut g = self.guard()?;
        let key = (s.user.clone(), s.id);
        if g.accounts.sessions.contains_key(&key) {
            return Err(StoreError::Conflict);
        }
        g.accounts.sessions.insert(key, s.clone());
        Ok(())
    }

    async fn session(
        &self,
        user: &UserId,
        id: luna_core::Id,
    ) -> Result<Option<luna_ports::Session>, StoreError> {
        Ok(self
            .guard()?
            .accounts
            .sessions
            .get(&(user.clone(), id))
            .cloned())
    }

    async fn sessions(&self, user: &UserId) -> Result<Vec<luna_ports::Session>, StoreError> {
        let g = self.guard()?;
        let mut out: Vec<luna_ports::Session> = g
            .accounts
            .sessions
            .values()
            .filter(|s| &s.user == user)
            .cloned()
            .collect();
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    async fn rotate_refresh(
        &self,
        user: &UserId,
        id: luna_core::Id,
        (old, new): (&str, &str),
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<luna_ports::Rotation, StoreError> {
        let mut g = self.guard()?;
        let acc = &mut g.accounts;
        if let Some(s) = acc.sessions.get_mut(&(user.clone(), id)) {
            if s.refresh_hash == old && s.is_live(now) {
                new.clone_into(&mut s.refresh_hash);
                s.last_seen = now;
                s.expires_at = expires_at;
                acc.history.insert((user.clone(), old.to_owned()), id);
                return Ok(luna_ports::Rotation::Rotated);
            }
        }
        Ok(
            if acc.history.get(&(user.clone(), old.to_owned())) == Some(&id) {
                luna_ports::Rotation::Reused
            } else {
                luna_ports::Rotation::Invalid
            },
        )
    }

    async fn revoke_session(
        &self,
        user: &UserId,
        id: luna_core::Id,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut g = self.guard()?;
        match g.accounts.sessions.get_mut(&(user.clone(), id)) {
            Some(s) if s.revoked_at.is_none() => {
                s.revoked_at = Some(now);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn revoke_all_sessions(&self, user: &UserId, now: Timestamp) -> Result<u64, StoreError> {
        let mut g = self.guard()?;
        let mut n = 0;
        for s in g.accounts.sessions.values_mut() {
            if &s.user == user && s.revoked_at.is_none() {
                s.revoked_at = Some(now);
                n += 1;
            }
        }
        Ok(n)
    }

    async fn signing_secret(&self, candidate: &str) -> Result<String, StoreError> {
        let mut g = self.guard()?;
        Ok(g.accounts
            .secret
            .get_or_insert_with(|| candidate.to_owned())
            .clone())
    }
}

#[async_trait]
impl luna_ports::ThrottleStore for MemoryStore {
    async fn hit(
        &self,
        bucket: &str,
        expires_at: Timestamp,
        limit: u32,
    ) -> Result<bool, StoreError> {
        let mut g = self.guard()?;
        let entry = g
            .accounts
            .throttle
            .entry(bucket.to_owned())
            .or_insert((0, expires_at));
        if entry.0 >= limit {
            return Ok(false);
        }
        entry.0 += 1;
        Ok(true)
    }

    async fn undo(&self, bucket: &str) -> Result<(), StoreError> {
        if let Some(e) = self.guard()?.accounts.throttle.get_mut(bucket) {
            e.0 = e.0.saturating_sub(1);
        }
        Ok(())
    }

    async fn clear(&self, prefix: &str) -> Result<u64, StoreError> {
        let mut g = self.guard()?;
        let n = g.accounts.throttle.len();
        g.accounts.throttle.retain(|k, _| !k.starts_with(prefix));
        Ok((n - g.accounts.throttle.len()) as u64)
    }

    async fn purge(&self, now: Timestamp) -> Result<u64, StoreError> {
        let mut g = self.guard()?;
        let n = g.accounts.throttle.len();
        g.accounts.throttle.retain(|_, (_, exp)| *exp > now);
        Ok((n - g.accounts.throttle.len()) as u64)
    }
}

/// Billing records, in memory.
#[derive(Default)]
pub(crate) struct BillingInner {
    customers: BTreeMap<UserId, String>,
    customer_users: HashMap<String, UserId>,
    processed: std::collections::HashSet<(UserId, String)>,
    checkouts: BTreeMap<UserId, luna_ports::OpenCheckout>,
    unmatched: BTreeMap<String, luna_ports::UnmatchedPayment>,
}

#[async_trait]
impl luna_ports::BillingStore for MemoryStore {
    async fn customer_of(&self, user: &UserId) -> Result<Option<String>, StoreError> {
        Ok(self.guard()?.billing.customers.get(user).cloned())
    }

    async fn user_of_customer(&self, customer: &str) -> Result<Option<UserId>, StoreError> {
        Ok(self.guard()?.billing.customer_users.get(customer).cloned())
    }

    async fn link_customer(&self, user: &UserId, customer: &str) -> Result<(), StoreError> {
        let mut g = self.guard()?;
        g.billing
            .customers
            .entry(user.clone())
            .or_insert_with(|| customer.to_owned());
        g.billing
            .customer_users
            .entry(customer.to_owned())
            .or_insert_with(|| user.clone());
        Ok(())
    }

    async fn is_processed(&self, user: &UserId, event_id: &str) -> Result<bool, StoreError> {
        Ok(self
            .guard()?
            .billing
            .processed
            .contains(&(user.clone(), event_id.to_owned())))
    }

    async fn open_checkout(
        &self,
        user: &UserId,
    ) -> Result<Option<luna_ports::OpenCheckout>, StoreError> {
        Ok(self.guard()?.billing.checkouts.get(user).cloned())
    }

    async fn keep_checkout(
        &self,
        user: &UserId,
        previous: Option<&str>,
        c: &luna_ports::OpenCheckout,
    ) -> Result<bool, StoreError> {
        let mut g = self.guard()?;
        let kept = g.billing.checkouts.get(user).map(|k| k.id.as_str());
        if kept != previous {
            return Ok(false);
        }
        g.billing.checkouts.insert(user.clone(), c.clone());
        Ok(true)
    }

    async fn record_unmatched(&self, u: &luna_ports::UnmatchedPayment) -> Result<(), StoreError> {
        self.guard()?
            .billing
            .unmatched
            .entry(u.payment.to_string())
            .or_insert_with(|| u.clone());
        Ok(())
    }

    async fn unmatched_since(
        &self,
        since: Timestamp,
    ) -> Result<Vec<luna_ports::UnmatchedPayment>, StoreError> {
        Ok(self
            .guard()?
            .billing
            .unmatched
            .values()
            .filter(|u| u.seen_at >= since)
            .cloned()
            .collect())
    }
}
