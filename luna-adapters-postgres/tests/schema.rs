//! The distribution rule of ADR 0005, held against the migrated schema: every table is declared
//! in `TABLES`, and every unique key of a distributed table includes its distribution column.

use std::collections::BTreeMap;

use luna_adapters_postgres::{Distribution, PgStore, TABLES};
use luna_testkit::FixedClock;
use luna_testkit::pg::{database_url, fresh_schema};
use sqlx::PgPool;

/// Unique indexes (primary keys included) of every table of a schema: table → [(index, columns)].
async fn unique_keys(pool: &PgPool, schema: &str) -> BTreeMap<String, Vec<(String, Vec<String>)>> {
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = $1")
            .bind(schema)
            .fetch_all(pool)
            .await
            .expect("tables");
    let mut out: BTreeMap<String, Vec<(String, Vec<String>)>> =
        tables.into_iter().map(|t| (t, Vec::new())).collect();
    let rows: Vec<(String, String, Vec<String>)> = sqlx::query_as(
        "SELECT c.relname::text, i.relname::text, \
                array_agg(a.attname::text ORDER BY a.attname) \
         FROM pg_index x \
         JOIN pg_class c ON c.oid = x.indrelid \
         JOIN pg_class i ON i.oid = x.indexrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(x.indkey) \
         WHERE n.nspname = $1 AND x.indisunique \
         GROUP BY c.relname, i.relname",
    )
    .bind(schema)
    .fetch_all(pool)
    .await
    .expect("indexes");
    for (table, index, columns) in rows {
        out.entry(table).or_default().push((index, columns));
    }
    out
}

/// What breaks the rule in a schema, given the declared tables.
fn violations(
    keys: &BTreeMap<String, Vec<(String, Vec<String>)>>,
    declared: &[(&str, Distribution)],
) -> Vec<String> {
    let declared: BTreeMap<&str, Distribution> = declared.iter().copied().collect();
    let mut problems = Vec::new();
    for (table, indexes) in keys {
        if table == "_sqlx_migrations" {
            continue;
        }
        let Some(d) = declared.get(table.as_str()) else {
            problems.push(format!("table {table} has no distribution in TABLES"));
            continue;
        };
        let column = match d {
            Distribution::Stream(c) | Distribution::Directory(c) => c,
            Distribution::Reference => continue,
        };
        for (index, columns) in indexes {
            if !columns.iter().any(|c| c == column) {
                problems.push(format!(
                    "{table}: unique key {index} ({}) lacks {column}",
                    columns.join(", ")
                ));
            }
        }
    }
    for table in declared.keys() {
        if !keys.contains_key(*table) {
            problems.push(format!("TABLES names {table}, which the schema lacks"));
        }
    }
    problems
}

async fn migrated(test: &str) -> Option<(PgPool, String)> {
    let url = database_url(test)?;
    let schema = fresh_schema("schema_rule");
    let store = PgStore::connect(
        &url,
        Some(&schema),
        2,
        std::sync::Arc::new(FixedClock::default_start()),
    )
    .await
    .expect("connect and migrate");
    Some((store.pool().clone(), schema))
}

#[tokio::test]
async fn every_table_is_distributed_by_stream_or_key_or_is_a_reference_table() {
    let Some((pool, schema)) = migrated("schema distribution rule").await else {
        return;
    };
    let keys = unique_keys(&pool, &schema).await;
    assert!(keys.contains_key("event") && keys.contains_key("idempotency"));
    let problems = violations(&keys, TABLES);
    assert!(problems.is_empty(), "{problems:#?}");
}

#[tokio::test]
async fn the_rule_catches_a_table_keyed_without_its_stream() {
    let Some((pool, schema)) = migrated("schema rule self-check").await else {
        return;
    };
    sqlx::query(&format!(
        "CREATE TABLE {schema}.purchase (id TEXT PRIMARY KEY, stream_id TEXT NOT NULL)"
    ))
    .execute(&pool)
    .await
    .expect("create");
    let keys = unique_keys(&pool, &schema).await;
    let problems = violations(&keys, TABLES);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("purchase has no distribution")),
        "{problems:?}"
    );
    let mut declared = TABLES.to_vec();
    declared.push(("purchase", Distribution::Stream("stream_id")));
    let problems = violations(&keys, &declared);
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("purchase: unique key") && p.contains("lacks stream_id")),
        "{problems:?}"
    );
}

#[test]
fn the_citus_statements_distribute_every_table() {
    let statements = luna_adapters_postgres::citus_statements();
    assert_eq!(statements.len(), TABLES.len());
    assert!(
        statements.contains(&"SELECT create_distributed_table('event', 'stream_id');".to_owned())
    );
    assert!(statements.contains(&"SELECT create_reference_table('service_key');".to_owned()));
}

/// docs/scaling-out.md shows exactly the statements `citus_statements()` gives.
#[test]
fn the_scaling_out_guide_lists_the_citus_statements() {
    let guide = include_str!("../../docs/scaling-out.md");
    for statement in luna_adapters_postgres::citus_statements() {
        assert!(
            guide.contains(&statement),
            "docs/scaling-out.md lacks {statement}"
        );
    }
    let listed = guide.matches("SELECT create_").count();
    assert_eq!(
        listed,
        TABLES.len(),
        "docs/scaling-out.md lists other tables"
    );
}
