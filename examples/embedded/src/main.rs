//! Luna embedded: `luna-core` alone, no I/O. Opens an account, consumes, buys a pack,
//! refunds, and prints the history and the Capital Narratif.
//!
//! Run with `cargo run -p luna-example-embedded`.

use luna_core::history::transactions;
use luna_core::narrative::narrative;
use luna_core::{
    Catalog, Command, Context, DomainError, Env, Event, Id, PackId, PaymentRef, Policy, RawJson,
    Span, Timestamp, Wallet, decide,
};

/// A tiny in-process "store": the events, and the wallet they fold to.
struct Account {
    events: Vec<Event>,
    wallet: Wallet,
    next_id: u128,
}

impl Account {
    fn run(
        &mut self,
        catalog: &Catalog,
        policy: &Policy,
        now: Timestamp,
        command: &Command,
    ) -> Result<(), DomainError> {
        self.next_id += 1;
        let env = Env {
            now,
            catalog,
            policy,
            welcome_tx: Id::from_u128(self.next_id),
        };
        for e in decide(&self.wallet, command, &env)? {
            self.wallet.apply(&e);
            self.events.push(e);
        }
        Ok(())
    }

    fn id(&mut self) -> Id {
        self.next_id += 1;
        Id::from_u128(self.next_id)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let catalog = Catalog::builtin();
    let policy = Policy::default();
    let mut now = Timestamp::from_secs(1_767_225_600);
    let mut account = Account {
        events: Vec::new(),
        wallet: Wallet::default(),
        next_id: 0,
    };
    let letters = Context::new(
        RawJson::new(r#"{"app_source":"letters","target_role":"Data Analyst"}"#),
        Some("letters".into()),
        Some("Data Analyst".into()),
        None,
    );

    // 1. A cover letter (15) and a strategy (35) on the 85 welcome units.
    let letter = account.id();
    let cmd = Command::Consume {
        tx: letter,
        action: catalog.grid.price("lettre_motivation")?,
        context: Some(letters.clone()),
    };
    account.run(&catalog, &policy, now, &cmd)?;
    let cmd = Command::Consume {
        tx: account.id(),
        action: catalog.grid.price("strategie_candidature")?,
        context: Some(letters),
    };
    account.run(&catalog, &policy, now, &cmd)?;
    println!(
        "balance after two actions: {}",
        account.wallet.summary.balance
    );

    // 2. A premium action does not fit: the refusal names the pack to buy.
    now = now.plus(Span::seconds(60));
    let cmd = Command::Consume {
        tx: account.id(),
        action: catalog.grid.price("plan_reconversion")?,
        context: None,
    };
    if let Err(DomainError::InsufficientEnergy(s)) = account.run(&catalog, &policy, now, &cmd) {
        println!(
            "refused: deficit {}, buy {:?}",
            s.deficit,
            s.required_pack.map(|p| p.to_string())
        );
    }

    // 3. Buy the Café pack (first purchase: +10 bonus), then retry.
    let cafe = catalog.packs.get("cafe_luna").ok_or("no cafe pack")?;
    let credit = Command::CreditPurchase {
        tx: account.id(),
        bonus_tx: account.id(),
        pack: PackId::parse("cafe_luna")?,
        payment: PaymentRef::parse("pi_example")?,
        paid: cafe.price,
        reversal: None,
    };
    account.run(&catalog, &policy, now, &credit)?;
    account.run(&catalog, &policy, now, &cmd)?;
    println!(
        "balance after the Café pack and the plan: {}",
        account.wallet.summary.balance
    );

    // 4. The letter's AI call failed: refund it.
    let refund = Command::Refund {
        tx: account.id(),
        of: letter,
        amount: None,
        reason: "generation failed".into(),
        by_user: false,
    };
    account.run(&catalog, &policy, now, &refund)?;

    report(&account, now);
    Ok(())
}

/// Prints the history and the Capital Narratif.
fn report(account: &Account, now: Timestamp) {
    println!("\nhistory:");
    for row in transactions(&account.events) {
        println!(
            "  {:<8} {:>4}  {:>4} → {:<4} {}",
            row.kind.as_str(),
            row.amount,
            row.energy_before,
            row.energy_after,
            row.reason
        );
    }

    let n = narrative(&account.events, now);
    println!("\nCapital Narratif:");
    println!("  events analysed: {}", n.events_analyzed);
    println!("  apps mastered: {:?}", n.apps_mastered);
    println!("  career progression: {:?}", n.career_progression);
    println!("  engagement score: {}", n.engagement_score);
    println!("  trajectory: {}", n.growth_trajectory.as_str());
    for r in &n.recommendations {
        println!("  → {} : {}", r.code, r.message);
    }
}
