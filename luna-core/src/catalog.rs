//! The cost grid and the pack catalogue: validated once when built from plain data.
//!
//! Loading them from TOML happens outside core; here they are values with invariants.

use std::collections::BTreeMap;
use std::fmt;

use crate::units::{ActionName, Cents, Currency, Energy, Money, PackId};

/// How demanding an action is (display only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    /// 5–10 units.
    Simple,
    /// 10–20 units.
    Medium,
    /// 20–40 units.
    Complex,
    /// 35–50 units.
    Premium,
}

impl Category {
    /// Parses `simple|medium|complex|premium`.
    pub fn parse(s: &str) -> Option<Category> {
        Some(match s {
            "simple" => Category::Simple,
            "medium" => Category::Medium,
            "complex" => Category::Complex,
            "premium" => Category::Premium,
            _ => return None,
        })
    }

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Simple => "simple",
            Category::Medium => "medium",
            Category::Complex => "complex",
            Category::Premium => "premium",
        }
    }
}

/// One row of the cost grid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionSpec {
    /// The action's name.
    pub name: ActionName,
    /// Its cost in energy (≥ 1).
    pub cost: Energy,
    /// Its category.
    pub category: Category,
    /// The apps that offer it.
    pub apps: Vec<String>,
}

/// An action resolved against a grid: what a consume records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedAction {
    /// The action.
    pub name: ActionName,
    /// The cost under `grid_version`.
    pub cost: Energy,
    /// The grid version the cost comes from.
    pub grid_version: std::sync::Arc<str>,
}

/// The largest cost a grid may give one action.
pub const MAX_ACTION_COST: u32 = 100_000;

/// The cost grid: a version and the cost of each action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostGrid {
    version: std::sync::Arc<str>,
    actions: BTreeMap<ActionName, ActionSpec>,
}

impl CostGrid {
    /// Validates a grid: a non-empty version, at least one action, unique names, costs in
    /// `1..=MAX_ACTION_COST`.
    pub fn new(version: impl Into<String>, actions: Vec<ActionSpec>) -> Result<Self, CatalogError> {
        let version = version.into();
        if version.trim().is_empty() {
            return Err(CatalogError::EmptyGridVersion);
        }
        if actions.is_empty() {
            return Err(CatalogError::EmptyGrid);
        }
        let mut map = BTreeMap::new();
        for a in actions {
            if a.cost.is_zero() || a.cost.units() > MAX_ACTION_COST {
                return Err(CatalogError::CostOutOfRange(a.name.to_string()));
            }
            if map.contains_key(&a.name) {
                return Err(CatalogError::DuplicateAction(a.name.to_string()));
            }
            map.insert(a.name.clone(), a);
        }
        Ok(CostGrid {
            version: version.into(),
            actions: map,
        })
    }

    /// The grid's version string.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Every action, by name.
    pub fn actions(&self) -> impl Iterator<Item = &ActionSpec> {
        self.actions.values()
    }

    /// Looks an action up by name.
    pub fn get(&self, name: &str) -> Option<&ActionSpec> {
        // ActionName orders like its string, so a borrowed lookup needs a temporary key.
        ActionName::parse(name)
            .ok()
            .and_then(|n| self.actions.get(&n))
    }

    /// Resolves an action's cost, or `UnknownAction`.
    pub fn price(&self, name: &str) -> Result<PricedAction, UnknownAction> {
        self.get(name)
            .map(|a| PricedAction {
                name: a.name.clone(),
                cost: a.cost,
                grid_version: self.version.clone(),
            })
            .ok_or_else(|| UnknownAction(name.to_owned()))
    }
}

/// An action that is not in the grid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownAction(pub String);

impl fmt::Display for UnknownAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Unknown action: {}", self.0)
    }
}

impl std::error::Error for UnknownAction {}

/// What a pack sells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackKind {
    /// A one-off pack of energy, with an optional first-purchase bonus in units.
    OneOff {
        /// The paid energy.
        energy: Energy,
        /// Promotional energy granted on the user's first pack purchase.
        first_purchase_bonus: Energy,
    },
    /// A recurring subscription that makes the user Unlimited while active.
    Subscription {
        /// Billing interval (`month`).
        interval: Interval,
    },
}

/// A subscription's billing interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    /// Monthly.
    Month,
    /// Yearly.
    Year,
}

impl Interval {
    /// Parses `month|year`.
    pub fn parse(s: &str) -> Option<Interval> {
        match s {
            "month" => Some(Interval::Month),
            "year" => Some(Interval::Year),
            _ => None,
        }
    }

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Month => "month",
            Interval::Year => "year",
        }
    }
}

/// One pack of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pack {
    /// Stable id (`cafe_luna`).
    pub id: PackId,
    /// Display name.
    pub name: String,
    /// Display description.
    pub description: String,
    /// Price per purchase (or per interval).
    pub price: Money,
    /// What it sells.
    pub kind: PackKind,
    /// Marked as popular in shop displays.
    pub popular: bool,
}

impl Pack {
    /// The paid energy of a one-off pack.
    pub fn energy(&self) -> Option<Energy> {
        match self.kind {
            PackKind::OneOff { energy, .. } => Some(energy),
            PackKind::Subscription { .. } => None,
        }
    }

    /// The first-purchase bonus in units (zero for subscriptions).
    pub fn first_purchase_bonus(&self) -> Energy {
        match self.kind {
            PackKind::OneOff {
                first_purchase_bonus,
                ..
            } => first_purchase_bonus,
            PackKind::Subscription { .. } => Energy::ZERO,
        }
    }

    /// Whether this is a subscription.
    pub fn is_subscription(&self) -> bool {
        matches!(self.kind, PackKind::Subscription { .. })
    }
}

/// The packs on sale, in display order, all in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackCatalog {
    currency: Currency,
    packs: Vec<Pack>,
}

impl PackCatalog {
    /// Validates: at least one one-off pack, unique ids, one currency, positive prices and
    /// energy, a bonus no larger than the pack.
    pub fn new(packs: Vec<Pack>) -> Result<Self, CatalogError> {
        let Some(first) = packs.first() else {
            return Err(CatalogError::NoOneOffPack);
        };
        let currency = first.price.currency;
        for (i, p) in packs.iter().enumerate() {
            if packs[..i].iter().any(|q| q.id == p.id) {
                return Err(CatalogError::DuplicatePack(p.id.to_string()));
            }
            if p.price.currency != currency {
                return Err(CatalogError::MixedCurrencies);
            }
            if p.price.amount == Cents::new(0) {
                return Err(CatalogError::FreePack(p.id.to_string()));
            }
            if let PackKind::OneOff {
                energy,
                first_purchase_bonus,
            } = p.kind
            {
                if energy.is_zero() || first_purchase_bonus > energy {
                    return Err(CatalogError::PackEnergyOutOfRange(p.id.to_string()));
                }
            }
        }
        if !packs.iter().any(|p| !p.is_subscription()) {
            return Err(CatalogError::NoOneOffPack);
        }
        Ok(PackCatalog { currency, packs })
    }

    /// The catalogue currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// Every pack, in display order.
    pub fn packs(&self) -> &[Pack] {
        &self.packs
    }

    /// Looks a pack up by id.
    pub fn get(&self, id: &str) -> Option<&Pack> {
        self.packs.iter().find(|p| p.id.as_str() == id)
    }

    /// The pack to recommend for a `deficit`: the cheapest one-off pack whose energy (with the
    /// bonus the user would get) covers it; if none does, the one with the most energy. Ties go
    /// to the cheaper pack, then to catalogue order.
    pub fn required_pack(&self, deficit: u64, first_purchase: bool) -> Option<&Pack> {
        let effective = |p: &Pack| -> u64 {
            let e = p.energy().map_or(0, |e| u64::from(e.units()));
            if first_purchase {
                e + u64::from(p.first_purchase_bonus().units())
            } else {
                e
            }
        };
        let one_offs = || self.packs.iter().filter(|p| !p.is_subscription());
        one_offs()
            .filter(|p| effective(p) >= deficit)
            .min_by_key(|p| p.price.amount)
            .or_else(|| {
                // max_by_key keeps the last maximum; fold keeps the first cheapest.
                one_offs().fold(None, |best: Option<&Pack>, p| match best {
                    Some(b)
                        if effective(b) > effective(p)
                            || (effective(b) == effective(p)
                                && b.price.amount <= p.price.amount) =>
                    {
                        Some(b)
                    }
                    _ => Some(p),
                })
            })
    }

    /// The Café pack's price per unit, the reference for `savings_vs_cafe`: the cheapest
    /// one-off pack of the catalogue (`cafe_luna` in the default one).
    fn reference_pack(&self) -> Option<&Pack> {
        self.get("cafe_luna").or_else(|| {
            self.packs
                .iter()
                .filter(|p| !p.is_subscription())
                .min_by_key(|p| p.price.amount)
        })
    }

    /// The integer percent saved per unit versus the reference (Café) pack, `None` when not
    /// positive or not a one-off pack.
    pub fn savings_vs_cafe(&self, pack: &Pack) -> Option<u32> {
        let reference = self.reference_pack()?;
        let (re, pe) = (
            u128::from(reference.energy()?.units()),
            u128::from(pack.energy()?.units()),
        );
        let (rp, pp) = (
            u128::from(reference.price.amount.minor()),
            u128::from(pack.price.amount.minor()),
        );
        // saving = 1 - (pp/pe) / (rp/re) = 1 - pp*re / (pe*rp); in percent, toward zero.
        let num = pe * rp;
        let den = pp * re;
        if num <= den {
            return None;
        }
        let pct = (num - den) * 100 / num;
        u32::try_from(pct).ok().filter(|p| *p > 0)
    }
}

/// The grid and the packs together: what the hub sells and charges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    /// Action costs.
    pub grid: CostGrid,
    /// Packs on sale.
    pub packs: PackCatalog,
}

/// A catalogue that fails validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogError {
    /// The grid version is blank.
    EmptyGridVersion,
    /// The grid has no action.
    EmptyGrid,
    /// An action is listed twice.
    DuplicateAction(String),
    /// An action's cost is zero or above the maximum.
    CostOutOfRange(String),
    /// A pack is listed twice.
    DuplicatePack(String),
    /// The packs are priced in several currencies.
    MixedCurrencies,
    /// A pack has a zero price.
    FreePack(String),
    /// A one-off pack sells no energy, or its bonus exceeds its energy.
    PackEnergyOutOfRange(String),
    /// There is no one-off pack to recommend.
    NoOneOffPack,
}

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CatalogError::EmptyGridVersion => f.write_str("the cost grid needs a version"),
            CatalogError::EmptyGrid => f.write_str("the cost grid has no action"),
            CatalogError::DuplicateAction(a) => write!(f, "action {a} is listed twice"),
            CatalogError::CostOutOfRange(a) => {
                write!(
                    f,
                    "action {a} must cost between 1 and {MAX_ACTION_COST} units"
                )
            }
            CatalogError::DuplicatePack(p) => write!(f, "pack {p} is listed twice"),
            CatalogError::MixedCurrencies => f.write_str("every pack must use the same currency"),
            CatalogError::FreePack(p) => write!(f, "pack {p} must have a positive price"),
            CatalogError::PackEnergyOutOfRange(p) => {
                write!(
                    f,
                    "pack {p} must sell energy, with a bonus no larger than its energy"
                )
            }
            CatalogError::NoOneOffPack => {
                f.write_str("the catalogue needs at least one one-off pack")
            }
        }
    }
}

impl std::error::Error for CatalogError {}

fn action(name: &str, cost: u32, category: Category, apps: &[&str]) -> ActionSpec {
    ActionSpec {
        name: ActionName::parse(name).expect("built-in action names are valid"),
        cost: Energy::new(cost),
        category,
        apps: apps.iter().map(|a| (*a).to_owned()).collect(),
    }
}

fn one_off(
    id: &str,
    name: &str,
    description: &str,
    cents: u64,
    energy: u32,
    bonus: u32,
    popular: bool,
) -> Pack {
    Pack {
        id: PackId::parse(id).expect("built-in pack ids are valid"),
        name: name.to_owned(),
        description: description.to_owned(),
        price: Money::new(Cents::new(cents), Currency::EUR),
        kind: PackKind::OneOff {
            energy: Energy::new(energy),
            first_purchase_bonus: Energy::new(bonus),
        },
        popular,
    }
}

impl Catalog {
    /// The default grid of the spec (§2.2), version `2024-01`.
    pub fn default_grid() -> CostGrid {
        use Category::{Complex, Medium, Premium, Simple};
        CostGrid::new(
            "2024-01",
            vec![
                action("conseil_rapide", 5, Simple, &["letters", "cv"]),
                action("correction_ponctuelle", 5, Simple, &["letters", "cv"]),
                action("format_lettre", 8, Simple, &["letters"]),
                action("lettre_motivation", 15, Medium, &["letters"]),
                action("optimisation_cv", 12, Medium, &["cv"]),
                action("analyse_offre", 10, Medium, &["letters", "cv"]),
                action("analyse_cv_complete", 25, Complex, &["cv"]),
                action("mirror_match", 30, Complex, &["cv"]),
                action("strategie_candidature", 35, Complex, &["letters"]),
                action("audit_complet_profil", 45, Premium, &["cv"]),
                action("plan_reconversion", 50, Premium, &["letters"]),
                action("simulation_entretien", 40, Premium, &["cv"]),
            ],
        )
        .expect("the built-in grid is valid")
    }

    /// The default packs of the spec (§2.3): three one-off packs of 100 units and Unlimited.
    pub fn default_packs() -> PackCatalog {
        PackCatalog::new(vec![
            one_off(
                "cafe_luna",
                "Café Luna",
                "Un plein d'énergie pour démarrer",
                299,
                100,
                10,
                false,
            ),
            one_off(
                "petit_dej_luna",
                "Petit-déj Luna",
                "Un plein d'énergie",
                599,
                100,
                0,
                true,
            ),
            one_off(
                "repas_luna",
                "Repas Luna",
                "Un plein d'énergie",
                999,
                100,
                0,
                false,
            ),
            Pack {
                id: PackId::parse("luna_unlimited").expect("valid"),
                name: "Luna Unlimited".to_owned(),
                description: "Énergie illimitée, chaque action reste enregistrée".to_owned(),
                price: Money::new(Cents::new(2999), Currency::EUR),
                kind: PackKind::Subscription {
                    interval: Interval::Month,
                },
                popular: false,
            },
        ])
        .expect("the built-in catalogue is valid")
    }

    /// The built-in catalogue.
    pub fn builtin() -> Catalog {
        Catalog {
            grid: Catalog::default_grid(),
            packs: Catalog::default_packs(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiered() -> PackCatalog {
        PackCatalog::new(vec![
            one_off("cafe_luna", "Café", "", 299, 100, 10, false),
            one_off("petit_dej_luna", "Petit-déj", "", 599, 220, 0, true),
            one_off("repas_luna", "Repas", "", 999, 400, 0, false),
        ])
        .unwrap()
    }

    #[test]
    fn the_default_grid_prices_the_seed_actions() {
        let grid = Catalog::default_grid();
        assert_eq!(
            grid.price("lettre_motivation").unwrap().cost,
            Energy::new(15)
        );
        assert_eq!(
            grid.price("plan_reconversion").unwrap().cost,
            Energy::new(50)
        );
        assert_eq!(grid.actions().count(), 12);
        assert_eq!(grid.price("nope"), Err(UnknownAction("nope".into())));
        assert_eq!(
            UnknownAction("nope".into()).to_string(),
            "Unknown action: nope"
        );
    }

    #[test]
    fn a_grid_refuses_zero_costs_duplicates_and_blank_versions() {
        let a = action("x", 0, Category::Simple, &[]);
        assert_eq!(
            CostGrid::new("v", vec![a]),
            Err(CatalogError::CostOutOfRange("x".into()))
        );
        let b = action("x", 1, Category::Simple, &[]);
        assert_eq!(
            CostGrid::new("v", vec![b.clone(), b.clone()]),
            Err(CatalogError::DuplicateAction("x".into()))
        );
        assert_eq!(
            CostGrid::new(" ", vec![b]),
            Err(CatalogError::EmptyGridVersion)
        );
        assert_eq!(CostGrid::new("v", vec![]), Err(CatalogError::EmptyGrid));
    }

    #[test]
    fn a_catalogue_refuses_mixed_currencies_and_oversized_bonuses() {
        let mut usd = one_off("a", "A", "", 100, 10, 0, false);
        usd.price.currency = Currency::parse("usd").unwrap();
        let eur = one_off("b", "B", "", 100, 10, 0, false);
        assert_eq!(
            PackCatalog::new(vec![eur, usd]),
            Err(CatalogError::MixedCurrencies)
        );
        let big_bonus = one_off("c", "C", "", 100, 10, 11, false);
        assert_eq!(
            PackCatalog::new(vec![big_bonus]),
            Err(CatalogError::PackEnergyOutOfRange("c".into()))
        );
        assert_eq!(PackCatalog::new(vec![]), Err(CatalogError::NoOneOffPack));
    }

    #[test]
    fn required_pack_is_the_cheapest_pack_that_covers_the_deficit() {
        let packs = Catalog::default_packs();
        assert_eq!(
            packs.required_pack(15, false).unwrap().id.as_str(),
            "cafe_luna"
        );
        let tiered = tiered();
        assert_eq!(
            tiered.required_pack(100, false).unwrap().id.as_str(),
            "cafe_luna"
        );
        assert_eq!(
            tiered.required_pack(101, false).unwrap().id.as_str(),
            "petit_dej_luna"
        );
        assert_eq!(
            tiered.required_pack(300, false).unwrap().id.as_str(),
            "repas_luna"
        );
    }

    #[test]
    fn required_pack_counts_the_bonus_the_user_would_get() {
        let tiered = tiered();
        assert_eq!(
            tiered.required_pack(110, true).unwrap().id.as_str(),
            "cafe_luna"
        );
        assert_eq!(
            tiered.required_pack(110, false).unwrap().id.as_str(),
            "petit_dej_luna"
        );
    }

    #[test]
    fn required_pack_falls_back_to_the_largest_pack_then_the_cheaper_one() {
        assert_eq!(
            tiered().required_pack(1000, false).unwrap().id.as_str(),
            "repas_luna"
        );
        // Every default pack holds 100: the tie goes to the cheaper one.
        assert_eq!(
            Catalog::default_packs()
                .required_pack(500, false)
                .unwrap()
                .id
                .as_str(),
            "cafe_luna"
        );
    }

    #[test]
    fn savings_are_per_unit_against_the_cafe() {
        let tiered = tiered();
        let p = tiered.get("petit_dej_luna").unwrap();
        // 2.99/100 vs 5.99/220: 1 - (599*100)/(220*299) = 8.9 % → 8
        assert_eq!(tiered.savings_vs_cafe(p), Some(8));
        let r = tiered.get("repas_luna").unwrap();
        // 1 - 999*100/(400*299) = 16.47 % → 16
        assert_eq!(tiered.savings_vs_cafe(r), Some(16));
        let defaults = Catalog::default_packs();
        assert_eq!(
            defaults.savings_vs_cafe(defaults.get("repas_luna").unwrap()),
            None
        );
        assert_eq!(
            defaults.savings_vs_cafe(defaults.get("cafe_luna").unwrap()),
            None
        );
    }
}
