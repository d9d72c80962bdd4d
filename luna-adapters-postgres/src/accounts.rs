//! Accounts, sessions and login counters over PostgreSQL.

use std::collections::HashMap;

use async_trait::async_trait;
use luna_core::{Email, Id, Timestamp, UserId};
use luna_ports::{Account, AccountStore, Rotation, Session, StoreError, ThrottleStore};
use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::{PgStore, map_err};

fn invalid(what: &str) -> impl FnOnce(luna_core::InvalidValue) -> StoreError + '_ {
    move |e| StoreError::backend(std::io::Error::other(format!("stored {what}: {e}")))
}

fn account_row(r: &PgRow) -> Result<Account, StoreError> {
    let user: String = r.try_get("stream_id").map_err(map_err)?;
    let email: String = r.try_get("email").map_err(map_err)?;
    Ok(Account {
        user: UserId::parse(&user).map_err(invalid("user id"))?,
        email: Email::parse(&email).map_err(invalid("email"))?,
        name: r.try_get("name").map_err(map_err)?,
        password_hash: r.try_get("password_hash").map_err(map_err)?,
        created_at: Timestamp::from_millis(r.try_get("created_at_ms").map_err(map_err)?),
    })
}

const SESSION_COLUMNS: &str = "stream_id, session_id, refresh_hash, created_at_ms, last_seen_ms, \
                               expires_at_ms, revoked_at_ms, user_agent, address";

fn session_row(r: &PgRow) -> Result<Session, StoreError> {
    let user: String = r.try_get("stream_id").map_err(map_err)?;
    let id: String = r.try_get("session_id").map_err(map_err)?;
    Ok(Session {
        user: UserId::parse(&user).map_err(invalid("user id"))?,
        id: Id::parse(&id).map_err(invalid("session id"))?,
        refresh_hash: r.try_get("refresh_hash").map_err(map_err)?,
        created_at: Timestamp::from_millis(r.try_get("created_at_ms").map_err(map_err)?),
        last_seen: Timestamp::from_millis(r.try_get("last_seen_ms").map_err(map_err)?),
        expires_at: Timestamp::from_millis(r.try_get("expires_at_ms").map_err(map_err)?),
        revoked_at: r
            .try_get::<Option<i64>, _>("revoked_at_ms")
            .map_err(map_err)?
            .map(Timestamp::from_millis),
        user_agent: r.try_get("user_agent").map_err(map_err)?,
        address: r.try_get("address").map_err(map_err)?,
    })
}

/// The sessions of a batch of (stream, session id) keys, in one statement, by key.
async fn session_rows(
    pool: &sqlx::PgPool,
    keys: Vec<(String, String)>,
) -> Result<HashMap<(String, String), Session>, StoreError> {
    let (users, ids): (Vec<String>, Vec<String>) = keys.into_iter().unzip();
    let rows = sqlx::query(&format!(
        "SELECT {SESSION_COLUMNS} FROM auth_session WHERE (stream_id, session_id) IN \
         (SELECT * FROM unnest($1::text[], $2::text[]))"
    ))
    .bind(&users)
    .bind(&ids)
    .fetch_all(pool)
    .await
    .map_err(map_err)?;
    rows.iter()
        .map(|r| {
            let user: String = r.try_get("stream_id").map_err(map_err)?;
            let id: String = r.try_get("session_id").map_err(map_err)?;
            Ok(((user, id), session_row(r)?))
        })
        .collect()
}

#[async_trait]
impl AccountStore for PgStore {
    async fn create_account(&self, a: &Account) -> Result<(), StoreError> {
        let mut conn = crate::txn::Conn::acquire(&self.pool).await?;
        let mut tx = conn.begin().await?;
        sqlx::query("INSERT INTO account_email (email, stream_id) VALUES ($1, $2)")
            .bind(a.email.as_str())
            .bind(a.user.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query(
            "INSERT INTO account (stream_id, email, name, password_hash, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(a.user.as_str())
        .bind(a.email.as_str())
        .bind(a.name.as_deref())
        .bind(&a.password_hash)
        .bind(a.created_at.millis())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn account_by_email(&self, email: &Email) -> Result<Option<Account>, StoreError> {
        sqlx::query(
            "SELECT a.stream_id, a.email, a.name, a.password_hash, a.created_at_ms \
             FROM account_email e JOIN account a ON a.stream_id = e.stream_id WHERE e.email = $1",
        )
        .bind(email.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?
        .as_ref()
        .map(account_row)
        .transpose()
    }

    async fn account(&self, user: &UserId) -> Result<Option<Account>, StoreError> {
        sqlx::query(
            "SELECT stream_id, email, name, password_hash, created_at_ms FROM account WHERE stream_id = $1",
        )
        .bind(user.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?
        .as_ref()
        .map(account_row)
        .transpose()
    }

    async fn create_session(&self, s: &Session) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO auth_session ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(s.user.as_str())
        .bind(s.id.to_string())
        .bind(&s.refresh_hash)
        .bind(s.created_at.millis())
        .bind(s.last_seen.millis())
        .bind(s.expires_at.millis())
        .bind(s.revoked_at.map(Timestamp::millis))
        .bind(s.user_agent.as_deref())
        .bind(&s.address)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn session(&self, user: &UserId, id: Id) -> Result<Option<Session>, StoreError> {
        // Every request with a user token reads its session: coalesced under load like the
        // projection reads (ADR 0010).
        self.session_reads
            .read((user.as_str().to_owned(), id.to_string()), |keys| {
                session_rows(&self.pool, keys)
            })
            .await
    }

    async fn sessions(&self, user: &UserId) -> Result<Vec<Session>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM auth_session WHERE stream_id = $1 \
             ORDER BY created_at_ms DESC, session_id"
        ))
        .bind(user.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(session_row).collect()
    }

    async fn rotate_refresh(
        &self,
        user: &UserId,
        id: Id,
        (old, new): (&str, &str),
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<Rotation, StoreError> {
        let mut conn = crate::txn::Conn::acquire(&self.pool).await?;
        let mut tx = conn.begin().await?;
        let rotated = sqlx::query(
            "UPDATE auth_session SET refresh_hash = $1, last_seen_ms = $2, expires_at_ms = $3 \
             WHERE stream_id = $4 AND session_id = $5 AND refresh_hash = $6 \
             AND revoked_at_ms IS NULL AND expires_at_ms > $7",
        )
        .bind(new)
        .bind(now.millis())
        .bind(expires_at.millis())
        .bind(user.as_str())
        .bind(id.to_string())
        .bind(old)
        .bind(now.millis())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?
        .rows_affected()
            == 1;
        let outcome = if rotated {
            sqlx::query(
                "INSERT INTO refresh_history (stream_id, refresh_hash, session_id) VALUES ($1, $2, $3)",
            )
            .bind(user.as_str())
            .bind(old)
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
            Rotation::Rotated
        } else {
            let rotated_before: Option<i32> = sqlx::query_scalar(
                "SELECT 1 FROM refresh_history WHERE stream_id = $1 AND refresh_hash = $2 AND session_id = $3",
            )
            .bind(user.as_str())
            .bind(old)
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
            if rotated_before.is_some() {
                Rotation::Reused
            } else {
                Rotation::Invalid
            }
        };
        tx.commit().await.map_err(map_err)?;
        Ok(outcome)
    }

    async fn revoke_session(
        &self,
        user: &UserId,
        id: Id,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE auth_session SET revoked_at_ms = $1 \
             WHERE stream_id = $2 AND session_id = $3 AND revoked_at_ms IS NULL",
        )
        .bind(now.millis())
        .bind(user.as_str())
        .bind(id.to_string())
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn revoke_all_sessions(&self, user: &UserId, now: Timestamp) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE auth_session SET revoked_at_ms = $1 WHERE stream_id = $2 AND revoked_at_ms IS NULL",
        )
        .bind(now.millis())
        .bind(user.as_str())
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn signing_secret(&self, candidate: &str) -> Result<String, StoreError> {
        sqlx::query("INSERT INTO setting (name, value) VALUES ('jwt_secret', $1) ON CONFLICT (name) DO NOTHING")
            .bind(candidate)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        sqlx::query_scalar("SELECT value FROM setting WHERE name = 'jwt_secret'")
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)
    }
}

#[async_trait]
impl ThrottleStore for PgStore {
    async fn hit(
        &self,
        bucket: &str,
        expires_at: Timestamp,
        limit: u32,
    ) -> Result<bool, StoreError> {
        let counted: Option<i32> = sqlx::query_scalar(
            "INSERT INTO login_throttle (bucket, count, expires_at_ms) VALUES ($1, 1, $2) \
             ON CONFLICT (bucket) DO UPDATE SET count = login_throttle.count + 1 WHERE login_throttle.count < $3 \
             RETURNING count",
        )
        .bind(bucket)
        .bind(expires_at.millis())
        .bind(i32::try_from(limit).unwrap_or(i32::MAX))
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(counted.is_some_and(|c| i64::from(c) <= i64::from(limit)))
    }

    async fn undo(&self, bucket: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE login_throttle SET count = count - 1 WHERE bucket = $1 AND count > 0")
            .bind(bucket)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn clear(&self, prefix: &str) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM login_throttle WHERE left(bucket, length($1)) = $2")
            .bind(prefix)
            .bind(prefix)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn purge(&self, now: Timestamp) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM login_throttle WHERE expires_at_ms <= $1")
            .bind(now.millis())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }
}
