//! Billing records over PostgreSQL: customer links, processed provider events, open checkouts,
//! unmatched payments.

use async_trait::async_trait;
use luna_core::{Cents, Currency, PaymentRef, Timestamp, UserId};
use luna_ports::{BillingStore, OpenCheckout, StoreError, UnmatchedPayment};
use sqlx::Row;

use crate::{PgStore, map_err};

fn invalid(e: impl std::fmt::Display) -> StoreError {
    StoreError::backend(std::io::Error::other(format!("stored billing value: {e}")))
}

#[async_trait]
impl BillingStore for PgStore {
    async fn customer_of(&self, user: &UserId) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT customer_id FROM billing_customer WHERE stream_id = $1")
            .bind(user.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)
    }

    async fn user_of_customer(&self, customer: &str) -> Result<Option<UserId>, StoreError> {
        let found: Option<String> =
            sqlx::query_scalar("SELECT stream_id FROM customer_stream WHERE customer_id = $1")
                .bind(customer)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
        found
            .map(|u| UserId::parse(&u).map_err(invalid))
            .transpose()
    }

    async fn link_customer(&self, user: &UserId, customer: &str) -> Result<(), StoreError> {
        let mut conn = crate::txn::Conn::acquire(&self.pool).await?;
        let mut tx = conn.begin().await?;
        sqlx::query(
            "INSERT INTO billing_customer (stream_id, customer_id) VALUES ($1, $2) \
             ON CONFLICT (stream_id) DO NOTHING",
        )
        .bind(user.as_str())
        .bind(customer)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query(
            "INSERT INTO customer_stream (customer_id, stream_id) VALUES ($1, $2) \
             ON CONFLICT (customer_id) DO NOTHING",
        )
        .bind(customer)
        .bind(user.as_str())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn is_processed(&self, user: &UserId, event_id: &str) -> Result<bool, StoreError> {
        let found: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM webhook_event WHERE stream_id = $1 AND event_id = $2",
        )
        .bind(user.as_str())
        .bind(event_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(found.is_some())
    }

    async fn open_checkout(&self, user: &UserId) -> Result<Option<OpenCheckout>, StoreError> {
        let row = sqlx::query(
            "SELECT checkout_id, url, expires_at_ms FROM billing_checkout WHERE stream_id = $1",
        )
        .bind(user.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.map(|r| {
            Ok(OpenCheckout {
                id: r.try_get("checkout_id").map_err(map_err)?,
                url: r.try_get("url").map_err(map_err)?,
                expires_at: Timestamp::from_millis(r.try_get("expires_at_ms").map_err(map_err)?),
            })
        })
        .transpose()
    }

    async fn keep_checkout(
        &self,
        user: &UserId,
        previous: Option<&str>,
        c: &OpenCheckout,
    ) -> Result<bool, StoreError> {
        let query = match previous {
            None => sqlx::query("INSERT INTO billing_checkout (stream_id, checkout_id, url, expires_at_ms) VALUES ($1, $2, $3, $4) ON CONFLICT (stream_id) DO NOTHING"),
            Some(prev) => sqlx::query("UPDATE billing_checkout SET checkout_id = $3, url = $4, expires_at_ms = $5 WHERE stream_id = $2 AND checkout_id = $1").bind(prev),
        };
        // Parameters bind in order: the update's previous id is its first.
        let done = query
            .bind(user.as_str())
            .bind(&c.id)
            .bind(&c.url)
            .bind(c.expires_at.millis())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn record_unmatched(&self, u: &UnmatchedPayment) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO unmatched_payment (payment_ref, reason, amount_cents, currency, user_id, pack, seen_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (payment_ref) DO NOTHING",
        )
        .bind(u.payment.as_str())
        .bind(&u.reason)
        .bind(i64::try_from(u.amount.minor()).map_err(invalid)?)
        .bind(u.currency.as_str())
        .bind(u.user_id.as_deref())
        .bind(u.pack.as_deref())
        .bind(u.seen_at.millis())
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn unmatched_since(&self, since: Timestamp) -> Result<Vec<UnmatchedPayment>, StoreError> {
        let rows = sqlx::query(
            "SELECT payment_ref, reason, amount_cents, currency, user_id, pack, seen_at_ms \
             FROM unmatched_payment WHERE seen_at_ms >= $1 ORDER BY seen_at_ms, payment_ref",
        )
        .bind(since.millis())
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                let payment: String = r.try_get("payment_ref").map_err(map_err)?;
                let currency: String = r.try_get("currency").map_err(map_err)?;
                let amount: i64 = r.try_get("amount_cents").map_err(map_err)?;
                Ok(UnmatchedPayment {
                    payment: PaymentRef::parse(&payment).map_err(invalid)?,
                    reason: r.try_get("reason").map_err(map_err)?,
                    amount: Cents::new(u64::try_from(amount).map_err(invalid)?),
                    currency: Currency::parse(&currency).map_err(invalid)?,
                    user_id: r.try_get("user_id").map_err(map_err)?,
                    pack: r.try_get("pack").map_err(map_err)?,
                    seen_at: Timestamp::from_millis(r.try_get("seen_at_ms").map_err(map_err)?),
                })
            })
            .collect()
    }
}
