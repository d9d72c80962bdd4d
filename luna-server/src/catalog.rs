//! The catalogue TOML loader: plain data in, validated `luna_core::Catalog` out.

use std::collections::BTreeMap;

use luna_core::{
    ActionName, ActionSpec, Catalog, Category, Cents, CostGrid, Currency, Energy, Interval, Money,
    Pack, PackCatalog, PackId, PackKind,
};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    grid: GridFile,
    packs: Vec<PackFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GridFile {
    version: String,
    actions: BTreeMap<String, ActionFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionFile {
    cost: u32,
    category: String,
    #[serde(default)]
    apps: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PackFile {
    id: String,
    name: String,
    #[serde(default)]
    description: String,
    price_cents: u64,
    currency: String,
    energy: Option<u32>,
    #[serde(default)]
    bonus_first_purchase: u32,
    #[serde(default)]
    subscription: bool,
    interval: Option<String>,
    #[serde(default)]
    popular: bool,
}

/// Parses and validates a catalogue file's text.
pub fn parse(text: &str) -> anyhow::Result<Catalog> {
    let file: CatalogFile = toml::from_str(text)?;
    let mut actions = Vec::new();
    for (name, a) in file.grid.actions {
        actions.push(ActionSpec {
            name: ActionName::parse(&name)?,
            cost: Energy::new(a.cost),
            category: Category::parse(&a.category).ok_or_else(|| {
                anyhow::anyhow!("action {name}: category must be simple|medium|complex|premium")
            })?,
            apps: a.apps,
        });
    }
    let grid = CostGrid::new(file.grid.version, actions)?;
    let mut packs = Vec::new();
    for p in file.packs {
        let kind = if p.subscription {
            let interval = p.interval.as_deref().unwrap_or("month");
            PackKind::Subscription {
                interval: Interval::parse(interval)
                    .ok_or_else(|| anyhow::anyhow!("pack {}: interval must be month|year", p.id))?,
            }
        } else {
            PackKind::OneOff {
                energy: Energy::new(
                    p.energy.ok_or_else(|| {
                        anyhow::anyhow!("pack {}: one-off packs need energy", p.id)
                    })?,
                ),
                first_purchase_bonus: Energy::new(p.bonus_first_purchase),
            }
        };
        packs.push(Pack {
            id: PackId::parse(&p.id)?,
            name: p.name,
            description: p.description,
            price: Money::new(Cents::new(p.price_cents), Currency::parse(&p.currency)?),
            kind,
            popular: p.popular,
        });
    }
    Ok(Catalog {
        grid,
        packs: PackCatalog::new(packs)?,
    })
}

/// Loads a catalogue file.
pub fn load(path: &std::path::Path) -> anyhow::Result<Catalog> {
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// A human-readable listing of a catalogue (`luna catalog`).
pub fn describe(c: &Catalog) -> String {
    use std::fmt::Write;
    let mut out = format!("Cost grid {}\n", c.grid.version());
    for a in c.grid.actions() {
        let _ = writeln!(
            out,
            "  {:<24} {:>4}  {:<8} {}",
            a.name,
            a.cost,
            a.category.as_str(),
            a.apps.join(", ")
        );
    }
    let _ = writeln!(out, "Packs ({})", c.packs.currency().upper());
    for p in c.packs.packs() {
        let what = match p.kind {
            PackKind::OneOff {
                energy,
                first_purchase_bonus,
            } if !first_purchase_bonus.is_zero() => {
                format!("{energy} units (+{first_purchase_bonus} first purchase)")
            }
            PackKind::OneOff { energy, .. } => format!("{energy} units"),
            PackKind::Subscription { interval } => format!("Unlimited, per {}", interval.as_str()),
        };
        let _ = writeln!(
            out,
            "  {:<16} {:<16} {:>7}  {what}",
            p.id,
            p.name,
            p.price.amount.decimal_string()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = env!("CARGO_MANIFEST_DIR");

    #[test]
    fn the_default_example_file_equals_the_built_in_catalogue() {
        let c = load(&std::path::Path::new(ROOT).join("../examples/catalog-default.toml")).unwrap();
        assert_eq!(c, Catalog::builtin());
    }

    #[test]
    fn the_tiered_example_sells_100_220_400() {
        let c = load(&std::path::Path::new(ROOT).join("../examples/catalog-tiered.toml")).unwrap();
        let energies: Vec<_> = c
            .packs
            .packs()
            .iter()
            .filter_map(luna_core::Pack::energy)
            .map(Energy::units)
            .collect();
        assert_eq!(energies, [100, 220, 400]);
    }

    #[test]
    fn an_invalid_catalogue_is_refused_with_the_reason() {
        let bad = "[grid]\nversion = \"v\"\n[grid.actions.x]\ncost = 0\ncategory = \"simple\"\n[[packs]]\nid = \"a\"\nname = \"A\"\nprice_cents = 1\ncurrency = \"eur\"\nenergy = 1\n";
        let err = parse(bad).unwrap_err().to_string();
        assert!(err.contains("between 1"), "{err}");
        assert!(parse("[grid]\nversion = \"v\"\nunknown = 1\n").is_err());
    }
}
