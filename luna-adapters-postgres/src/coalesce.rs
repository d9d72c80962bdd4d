//! Projection reads coalesced (issue 9, ADR 0010): a check or a consume reads one projection
//! row, and on PostgreSQL each read is a round trip whose cost (the hub's driver, PostgreSQL's
//! protocol handling, two wake-ups) dwarfs the row. At most [`IN_FLIGHT`] batches go to the
//! database at once; a read arriving while they are all busy waits, and the next batch reads
//! every waiting stream in one statement (`= ANY($1)`). An idle hub reads at once, alone: no
//! read waits for a timer, only behind a busy database.
//!
//! Freshness: a batch is sent after every read in it arrived, so each read sees every write
//! committed before the read began, as if it had run alone (the hub stays stateless).
//!
//! No background task: a read that finds a free slot leads its own batch (taking the waiting
//! reads with it); a finished batch hands its slot to the first waiting read, which leads the
//! next. The slot is a guard, so a leader dropped mid-read still hands it on, and its batch's
//! reads, whose answers it held, read again. The wait is bounded ([`MAX_WAITING`]): beyond it
//! a read goes to the database alone (the pool's own limit applies).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use luna_ports::StoreError;
use tokio::sync::oneshot;

/// Batches of reads in flight at once. Fewer in flight make larger batches: on this 2-vCPU
/// machine, PostgreSQL check at 64 connections measured ~40 000 req/s with 2 (28 µs of hub CPU
/// each), ~24 000 with 4 (~50 µs), ~20 000–24 000 with 8; 1 was faster still in one run and
/// slower in another, and queues every read behind one round trip.
pub(crate) const IN_FLIGHT: usize = 2;
/// Most streams one batch reads.
pub(crate) const MAX_BATCH: usize = 64;
/// Most reads waiting for a slot.
pub(crate) const MAX_WAITING: usize = 1024;

/// What a waiting read is told.
enum Message<K, V> {
    /// Its row (`None`: the key has none), or the batch's error.
    Row(Result<Option<V>, StoreError>),
    /// A slot is free: lead the next batch.
    Lead(Slot<K, V>),
}

struct Queue<K, V> {
    waiting: VecDeque<(K, oneshot::Sender<Message<K, V>>)>,
    in_flight: usize,
}

/// Coalesces reads of one row by key (a stream, a stream's session); `V` is the row.
pub(crate) struct Coalescer<K, V> {
    queue: Arc<Mutex<Queue<K, V>>>,
}

/// A read's place among the [`IN_FLIGHT`] batches; dropped, it passes to the first waiting
/// read still there, or frees the place.
struct Slot<K, V> {
    queue: Option<Arc<Mutex<Queue<K, V>>>>,
}

fn lock<K, V>(queue: &Mutex<Queue<K, V>>) -> MutexGuard<'_, Queue<K, V>> {
    // The queue is consistent after every statement under the lock: a panic elsewhere
    // leaves nothing half-done in it.
    queue.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<K, V> Drop for Slot<K, V> {
    fn drop(&mut self) {
        let Some(queue) = self.queue.take() else {
            return;
        };
        loop {
            let next = {
                let mut q = lock(&queue);
                let next = q.waiting.pop_front();
                if next.is_none() {
                    q.in_flight -= 1;
                }
                next
            };
            let Some((_, tx)) = next else {
                return;
            };
            let slot = Slot {
                queue: Some(queue.clone()),
            };
            match tx.send(Message::Lead(slot)) {
                Ok(()) => return,
                // That read is gone: the slot goes to the next one.
                Err(Message::Lead(mut unsent)) => unsent.queue = None,
                Err(Message::Row(_)) => unreachable!("a slot was sent"),
            }
        }
    }
}

/// The same error for every read of a failed batch.
fn copy_err(e: &StoreError) -> StoreError {
    match e {
        StoreError::Conflict => StoreError::Conflict,
        StoreError::Busy => StoreError::Busy,
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Backend(b) => StoreError::backend(std::io::Error::other(b.to_string())),
    }
}

impl<K: Clone + Ord + Hash, V: Clone> Coalescer<K, V> {
    pub(crate) fn new() -> Coalescer<K, V> {
        Coalescer {
            queue: Arc::new(Mutex::new(Queue {
                waiting: VecDeque::new(),
                in_flight: 0,
            })),
        }
    }

    /// Reads `key`'s row through `run`, which reads the rows of a batch of keys (each key it
    /// has no row for is absent from its map).
    pub(crate) async fn read<F, Fut>(&self, key: K, run: F) -> Result<Option<V>, StoreError>
    where
        F: Fn(Vec<K>) -> Fut,
        Fut: Future<Output = Result<HashMap<K, V>, StoreError>>,
    {
        loop {
            let waiting = {
                let mut q = lock(&self.queue);
                if q.in_flight < IN_FLIGHT {
                    q.in_flight += 1;
                    None
                } else if q.waiting.len() >= MAX_WAITING {
                    Some(None)
                } else {
                    let (tx, rx) = oneshot::channel();
                    q.waiting.push_back((key.clone(), tx));
                    Some(Some(rx))
                }
            };
            let slot = match waiting {
                None => Slot {
                    queue: Some(self.queue.clone()),
                },
                Some(None) => {
                    return run(vec![key.clone()])
                        .await
                        .map(|mut rows| rows.remove(&key));
                }
                Some(Some(rx)) => match rx.await {
                    Ok(Message::Row(row)) => return row,
                    Ok(Message::Lead(slot)) => slot,
                    // The leader holding this read's answer was dropped: read again.
                    Err(_) => continue,
                },
            };
            return self.lead(slot, key, &run).await;
        }
    }

    /// Reads `key` with the reads waiting (up to a batch), answers them, and then hands the
    /// slot on.
    async fn lead<F, Fut>(&self, slot: Slot<K, V>, key: K, run: &F) -> Result<Option<V>, StoreError>
    where
        F: Fn(Vec<K>) -> Fut,
        Fut: Future<Output = Result<HashMap<K, V>, StoreError>>,
    {
        let followers: Vec<(K, oneshot::Sender<Message<K, V>>)> = {
            let mut q = lock(&self.queue);
            let n = q.waiting.len().min(MAX_BATCH - 1);
            q.waiting.drain(..n).collect()
        };
        let mut keys: Vec<K> = Vec::with_capacity(followers.len() + 1);
        keys.push(key.clone());
        keys.extend(followers.iter().map(|(k, _)| k.clone()));
        keys.sort_unstable();
        keys.dedup();
        let read = run(keys).await;
        drop(slot);
        match read {
            Ok(mut rows) => {
                for (k, tx) in followers {
                    let _ = tx.send(Message::Row(Ok(rows.get(&k).cloned())));
                }
                Ok(rows.remove(&key))
            }
            Err(e) => {
                for (_, tx) in followers {
                    let _ = tx.send(Message::Row(Err(copy_err(&e))));
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use tokio::sync::Semaphore;

    use super::*;

    /// A database stand-in: each batch waits for a permit, then answers every stream's row
    /// as its own name reversed (absent for "none"), recording the batch.
    struct Fake {
        gate: Semaphore,
        batches: Mutex<Vec<Vec<String>>>,
        started: AtomicUsize,
    }

    impl Fake {
        fn new() -> Arc<Fake> {
            Arc::new(Fake {
                gate: Semaphore::new(0),
                batches: Mutex::new(Vec::new()),
                started: AtomicUsize::new(0),
            })
        }

        async fn run(&self, streams: Vec<String>) -> Result<HashMap<String, String>, StoreError> {
            self.started.fetch_add(1, Ordering::SeqCst);
            self.gate.acquire().await.expect("open").forget();
            self.batches.lock().expect("lock").push(streams.clone());
            Ok(streams
                .into_iter()
                .filter(|s| s != "none")
                .map(|s| {
                    let row = s.chars().rev().collect();
                    (s, row)
                })
                .collect())
        }
    }

    /// Waits until `cond` holds (a loaded machine may take a while to run the tasks).
    async fn until(what: &str, cond: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(tokio::time::Instant::now() < deadline, "never: {what}");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    fn started(fake: &Fake) -> usize {
        fake.started.load(Ordering::SeqCst)
    }

    fn waiting(c: &Coalescer<String, String>) -> usize {
        lock(&c.queue).waiting.len()
    }

    fn spawn_read(c: &Arc<Coalescer<String, String>>, fake: &Arc<Fake>, stream: &str) -> Handle {
        let (c, fake, stream) = (c.clone(), fake.clone(), stream.to_owned());
        tokio::spawn(async move { c.read(stream, |s| fake.run(s)).await })
    }

    type Handle = tokio::task::JoinHandle<Result<Option<String>, StoreError>>;

    /// A coalescer whose every slot is taken by a read held at the fake's gate.
    async fn busy_slots() -> (Arc<Coalescer<String, String>>, Arc<Fake>, Vec<Handle>) {
        let c = Arc::new(Coalescer::new());
        let fake = Fake::new();
        let leaders = (0..IN_FLIGHT)
            .map(|i| spawn_read(&c, &fake, &format!("lead{i}")))
            .collect();
        until("every slot busy", || started(&fake) == IN_FLIGHT).await;
        (c, fake, leaders)
    }

    /// Starts a read of `stream` and waits until it is the `nth` waiting.
    async fn queue(
        c: &Arc<Coalescer<String, String>>,
        fake: &Arc<Fake>,
        stream: &str,
        nth: usize,
    ) -> Handle {
        let read = spawn_read(c, fake, stream);
        until(stream, || waiting(c) == nth).await;
        read
    }

    /// Reads arriving while every slot is busy wait and go together, each answered its own
    /// row (a dispatch that answered the leader's row, or dropped one, fails).
    #[tokio::test]
    async fn reads_behind_busy_slots_share_one_batch_and_each_gets_its_own_row() {
        let (c, fake, leaders) = busy_slots().await;
        let queued: Vec<_> = ["ab", "cd", "none", "ab"]
            .iter()
            .map(|s| spawn_read(&c, &fake, s))
            .collect();
        until("four reads waiting", || waiting(&c) == 4).await;
        assert_eq!(started(&fake), IN_FLIGHT, "they wait");
        // One batch ends: its slot goes to the first waiting read, which takes the others.
        fake.gate.add_permits(1);
        until("the next batch", || started(&fake) == IN_FLIGHT + 1).await;
        assert_eq!(waiting(&c), 0, "one batch took them all");
        fake.gate.add_permits(100);
        for (i, l) in leaders.into_iter().enumerate() {
            let row = l.await.expect("join").expect("read");
            assert_eq!(row, Some(format!("{i}dael")));
        }
        let rows = tokio::time::timeout(Duration::from_secs(5), answers(queued))
            .await
            .expect("every waiting read answered");
        assert_eq!(
            rows,
            vec![
                Some("ba".to_owned()),
                Some("dc".to_owned()),
                None,
                Some("ba".to_owned())
            ]
        );
        let batches = fake.batches.lock().expect("lock").clone();
        assert_eq!(
            batches.len(),
            IN_FLIGHT + 1,
            "one batch for the waiting reads"
        );
        let last = batches
            .iter()
            .find(|b| b.contains(&"cd".to_owned()))
            .expect("batch");
        assert_eq!(last, &["ab", "cd", "none"], "every waiting stream, once");
    }

    async fn answers(handles: Vec<Handle>) -> Vec<Option<String>> {
        let mut rows = Vec::new();
        for h in handles {
            rows.push(h.await.expect("join").expect("read"));
        }
        rows
    }

    /// A leader dropped while its batch is in flight: the read it held reads again and the
    /// slot passes on (without the guard that read would wait forever).
    #[tokio::test]
    async fn a_leader_dropped_mid_read_leaves_no_read_waiting() {
        let (c, fake, leaders) = busy_slots().await;
        let dropped = queue(&c, &fake, "xy", 1).await;
        let held = queue(&c, &fake, "zw", 2).await;
        // One batch ends; "xy" leads the next, holding "zw", and is dropped mid-read.
        fake.gate.add_permits(1);
        until("xy's batch", || started(&fake) == IN_FLIGHT + 1).await;
        assert_eq!(waiting(&c), 0, "xy holds zw");
        dropped.abort();
        until("zw reads again", || started(&fake) == IN_FLIGHT + 2).await;
        fake.gate.add_permits(100);
        let rows = tokio::time::timeout(Duration::from_secs(5), answers(vec![held]))
            .await
            .expect("no read left waiting");
        assert_eq!(rows, vec![Some("wz".to_owned())]);
        answers(leaders).await;
        until("every slot freed", || lock(&c.queue).in_flight == 0).await;
    }

    /// A waiting read dropped before its turn: the slot skips it.
    #[tokio::test]
    async fn a_waiting_read_dropped_is_skipped() {
        let (c, fake, leaders) = busy_slots().await;
        let gone = queue(&c, &fake, "gone", 1).await;
        let kept = queue(&c, &fake, "kept", 2).await;
        gone.abort();
        assert!(gone.await.expect_err("aborted").is_cancelled());
        fake.gate.add_permits(100);
        for l in leaders {
            l.await.expect("join").expect("read");
        }
        let row = tokio::time::timeout(Duration::from_secs(5), kept)
            .await
            .expect("answered")
            .expect("join")
            .expect("read");
        assert_eq!(row, Some("tpek".to_owned()));
        until("every slot freed", || lock(&c.queue).in_flight == 0).await;
    }
}
