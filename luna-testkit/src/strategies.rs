//! proptest strategies: commands (as abstract operations) and the histories `decide` produces.
//!
//! An [`Op`] names what to do with indexes into what exists so far (the k-th reservation, the
//! k-th consume, the k-th payment), so generated commands hit real transactions as often as
//! unknown ones. [`Sim`] turns ops into commands, decides them in order and keeps the events.

use luna_core::{
    Catalog, Cents, ClawbackCause, Command, Context, Currency, DomainError, Energy, Env, Event, Id,
    Money, PackId, PaymentRef, Policy, RawJson, Span, SubscriptionChanged, SubscriptionRef,
    SubscriptionStatus, Timestamp, Wallet, decide,
};
use proptest::prelude::*;

/// One abstract operation on a user's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Consume the i-th action of the grid.
    Consume(usize),
    /// Reserve the i-th action with a TTL.
    Reserve(usize, u32),
    /// Commit the k-th reservation (or an unknown one).
    Commit(usize),
    /// Release the k-th reservation.
    Release(usize),
    /// Refund the k-th consume, maybe partially, as a user or a service.
    Refund(usize, Option<u32>, bool),
    /// Grant energy.
    Grant(u32),
    /// Credit the i-th pack with the k-th payment reference (repeats test exactly-once).
    Purchase(usize, usize),
    /// Claw back the k-th payment: a cumulative refund of the given cents, or a dispute.
    Clawback(usize, Option<u64>),
    /// A subscription update: status, period end (seconds from now), provider time offset.
    Subscription(bool, i64, i64),
    /// A fact of the audit trail (the k-th kind).
    Audit(usize),
    /// Let time pass.
    Advance(i64),
}

/// Any operation.
pub fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..12).prop_map(Op::Consume),
        2 => (0usize..12, 1u32..600).prop_map(|(a, t)| Op::Reserve(a, t)),
        2 => (0usize..6).prop_map(Op::Commit),
        1 => (0usize..6).prop_map(Op::Release),
        2 => (0usize..8, proptest::option::of(0u32..60), any::<bool>()).prop_map(|(k, a, u)| Op::Refund(k, a, u)),
        1 => (1u32..200).prop_map(Op::Grant),
        2 => (0usize..4, 0usize..4).prop_map(|(p, k)| Op::Purchase(p, k)),
        1 => (0usize..4, proptest::option::of(0u64..1200)).prop_map(|(k, c)| Op::Clawback(k, c)),
        1 => (any::<bool>(), -100i64..100_000, -50i64..50).prop_map(|(a, e, c)| Op::Subscription(a, e, c)),
        1 => (0usize..5).prop_map(Op::Audit),
        2 => (1i64..400_000).prop_map(Op::Advance),
    ]
}

/// The k-th kind of audit fact, for session `session`.
pub fn audit(k: usize, session: Id) -> luna_core::AuditEvent {
    use luna_core::{AuditEvent as A, RevocationOfSession as R};
    let address = "203.0.113.7".to_owned();
    match k % 5 {
        0 => A::LoginSucceeded { session, address },
        1 => A::LoginFailed { address },
        2 => A::SessionRefreshReused { session },
        3 => A::SessionRevoked {
            session,
            cause: R::Logout,
        },
        _ => A::SessionRevoked {
            session,
            cause: R::RefreshReused,
        },
    }
}

/// A sequence of operations.
pub fn ops(max_len: usize) -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op(), 0..max_len)
}

/// One decided step of a simulation.
#[derive(Debug, Clone)]
pub struct Step {
    /// The command decided (None for `Advance`).
    pub command: Option<Command>,
    /// The time of the decision.
    pub now: Timestamp,
    /// Balance before.
    pub before: i64,
    /// Balance after.
    pub after: i64,
    /// Whether the user was Unlimited when deciding.
    pub unlimited: bool,
    /// The events produced, or the refusal.
    pub result: Result<Vec<Event>, DomainError>,
}

/// Runs operations through `decide` on one stream, keeping every event and step.
pub struct Sim {
    /// The catalogue used.
    pub catalog: Catalog,
    /// The policy used.
    pub policy: Policy,
    /// The state after every accepted step.
    pub wallet: Wallet,
    /// Every event produced, oldest first.
    pub events: Vec<Event>,
    /// Every step.
    pub steps: Vec<Step>,
    now: Timestamp,
    next_id: u128,
    reservations: Vec<Id>,
    consumes: Vec<Id>,
    sub_created: Timestamp,
}

impl Default for Sim {
    fn default() -> Self {
        Sim::new(Catalog::builtin(), Policy::default())
    }
}

impl Sim {
    /// A simulation over a catalogue and policy, starting at 2026-01-01.
    pub fn new(catalog: Catalog, policy: Policy) -> Sim {
        Sim {
            catalog,
            policy,
            wallet: Wallet::default(),
            events: Vec::new(),
            steps: Vec::new(),
            now: Timestamp::from_secs(1_767_225_600),
            next_id: 1,
            reservations: Vec::new(),
            consumes: Vec::new(),
            sub_created: Timestamp::from_secs(1_767_225_600),
        }
    }

    fn id(&mut self) -> Id {
        self.next_id += 1;
        Id::from_u128(self.next_id)
    }

    /// The k-th known id, or an unknown one when k is past the end.
    fn pick(list: &[Id], k: usize, fallback: Id) -> Id {
        list.get(k).copied().unwrap_or(fallback)
    }

    /// The command an operation stands for now (None for `Advance`).
    pub fn command(&mut self, op: &Op) -> Option<Command> {
        let grid = self.catalog.grid.clone();
        let actions: Vec<_> = grid.actions().map(|a| a.name.clone()).collect();
        let price = |i: usize| {
            grid.price(actions[i % actions.len()].as_str())
                .expect("grid action")
        };
        let unknown = Id::from_u128(u128::MAX);
        Some(match op {
            Op::Consume(i) => {
                let ctx = Context::new(
                    RawJson::new("{\"app_source\":\"letters\"}"),
                    Some("letters".into()),
                    None,
                    None,
                );
                Command::Consume {
                    tx: self.id(),
                    action: price(*i),
                    context: Some(ctx),
                }
            }
            Op::Reserve(i, ttl) => Command::Reserve {
                tx: self.id(),
                action: price(*i),
                ttl_seconds: Some(*ttl),
                context: None,
            },
            Op::Commit(k) => Command::Commit {
                tx: Self::pick(&self.reservations, *k, unknown),
                context: None,
            },
            Op::Release(k) => Command::Release {
                tx: Self::pick(&self.reservations, *k, unknown),
            },
            Op::Refund(k, amount, by_user) => Command::Refund {
                tx: self.id(),
                of: Self::pick(&self.consumes, *k, unknown),
                amount: amount.map(Energy::new),
                reason: "test".into(),
                by_user: *by_user,
            },
            Op::Grant(a) => Command::Grant {
                tx: self.id(),
                amount: Energy::new(*a),
                reason: "test".into(),
            },
            Op::Purchase(..) | Op::Clawback(..) | Op::Subscription(..) => self.billing(op),
            Op::Audit(k) => Command::RecordAudit(audit(*k, self.id())),
            Op::Advance(_) => return None,
        })
    }

    /// The billing command of an operation.
    fn billing(&mut self, op: &Op) -> Command {
        match op {
            Op::Purchase(p, k) => {
                let packs = self.catalog.packs.packs();
                let pack = packs[p % packs.len()].clone();
                Command::CreditPurchase {
                    tx: self.id(),
                    bonus_tx: self.id(),
                    pack: pack.id.clone(),
                    payment: PaymentRef::parse(&format!("pi_{k}")).expect("valid"),
                    paid: pack.price,
                    reversal: None,
                }
            }
            Op::Clawback(k, cents) => Command::Clawback {
                tx: self.id(),
                bonus_tx: self.id(),
                payment: PaymentRef::parse(&format!("pi_{k}")).expect("valid"),
                cause: cents.map_or(ClawbackCause::Disputed, |c| ClawbackCause::Refunded {
                    amount_refunded: Cents::new(c),
                }),
            },
            Op::Subscription(active, end, created) => {
                self.sub_created = self.sub_created.plus(Span::seconds(*created));
                Command::ChangeSubscription(SubscriptionChanged {
                    subscription: SubscriptionRef::parse("sub_1").expect("valid"),
                    status: if *active {
                        SubscriptionStatus::Active
                    } else {
                        SubscriptionStatus::Canceled
                    },
                    current_period_end: Some(self.now.plus(Span::seconds(*end))),
                    cancel_at_period_end: false,
                    unlimited_plan: true,
                    provider_created: self.sub_created,
                })
            }
            _ => unreachable!("billing operations only"),
        }
    }

    /// Applies one operation.
    pub fn step(&mut self, op: &Op) {
        if let Op::Advance(s) = op {
            self.now = self.now.plus(Span::seconds(*s));
            return;
        }
        let command = self.command(op).expect("not an advance");
        let welcome_tx = self.id();
        let env = Env {
            now: self.now,
            catalog: &self.catalog,
            policy: &self.policy,
            welcome_tx,
        };
        let before = self.wallet.summary.balance.units();
        let unlimited = self.wallet.summary.is_unlimited(self.now);
        let result = decide(&self.wallet, &command, &env);
        if let Ok(events) = &result {
            for e in events {
                self.wallet.apply(e);
                match &e.kind {
                    luna_core::EventKind::EnergyReserved(r) => self.reservations.push(r.tx),
                    luna_core::EventKind::EnergyConsumed(c) => self.consumes.push(c.tx),
                    _ => {}
                }
            }
            self.events.extend(events.iter().cloned());
        }
        let after = self.wallet.summary.balance.units();
        self.steps.push(Step {
            command: Some(command),
            now: self.now,
            before,
            after,
            unlimited,
            result,
        });
    }

    /// Runs every operation.
    pub fn run(ops: &[Op]) -> Sim {
        let mut sim = Sim::default();
        for op in ops {
            sim.step(op);
        }
        sim
    }
}

/// A history `decide` produced from random operations.
pub fn history(max_len: usize) -> impl Strategy<Value = Vec<Event>> {
    ops(max_len).prop_map(|ops| Sim::run(&ops).events)
}

/// A euro amount, for tests that need one.
pub fn eur(cents: u64) -> Money {
    Money::new(Cents::new(cents), Currency::EUR)
}

/// A pack id, for tests that need one.
pub fn pack_id(s: &str) -> PackId {
    PackId::parse(s).expect("valid pack id")
}
