//! Service keys over PostgreSQL (a small reference table).

use async_trait::async_trait;
use luna_codec::{KeyRow, decode_key, encode_scopes};
use luna_core::Timestamp;
use luna_ports::{KeyStore, ServiceKey, StoreError};
use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::{PgStore, map_err};

fn key_row(r: &PgRow) -> Result<ServiceKey, StoreError> {
    let row = KeyRow {
        id: r.try_get("id").map_err(map_err)?,
        name: r.try_get("name").map_err(map_err)?,
        scopes: r.try_get("scopes").map_err(map_err)?,
        created_at_ms: r.try_get("created_at_ms").map_err(map_err)?,
        revoked_at_ms: r.try_get("revoked_at_ms").map_err(map_err)?,
    };
    decode_key(&row).map_err(StoreError::backend)
}

#[async_trait]
impl KeyStore for PgStore {
    async fn create_key(&self, key: &ServiceKey, secret_hash: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO service_key (id, name, scopes, secret_hash, created_at_ms, revoked_at_ms) \
             VALUES ($1, $2, $3, $4, $5, NULL)",
        )
        .bind(key.id.to_string())
        .bind(&key.name)
        .bind(encode_scopes(&key.scopes))
        .bind(secret_hash)
        .bind(key.created_at.millis())
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn find_key(&self, secret_hash: &str) -> Result<Option<ServiceKey>, StoreError> {
        sqlx::query(
            "SELECT id, name, scopes, created_at_ms, revoked_at_ms FROM service_key \
             WHERE secret_hash = $1 AND revoked_at_ms IS NULL",
        )
        .bind(secret_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?
        .as_ref()
        .map(key_row)
        .transpose()
    }

    async fn list_keys(&self) -> Result<Vec<ServiceKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, scopes, created_at_ms, revoked_at_ms FROM service_key ORDER BY created_at_ms, id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(key_row).collect()
    }

    async fn revoke_key(&self, id: luna_core::Id, at: Timestamp) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE service_key SET revoked_at_ms = $1 WHERE id = $2 AND revoked_at_ms IS NULL",
        )
        .bind(at.millis())
        .bind(id.to_string())
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }
}
