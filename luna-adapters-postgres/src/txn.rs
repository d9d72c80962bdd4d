//! Transactions that survive cancellation. sqlx's `Pool::begin` is not cancellation-safe on
//! PostgreSQL (sqlx issues #4385 and #4393, present in 0.8.6 and 0.9.0): a future dropped while
//! `BEGIN` is in flight — a client that disconnects mid-request — hands the connection back to
//! the pool inside a transaction nothing ends. The next borrower's statements then run in it:
//! they hold their locks indefinitely (a login waited 30 s on such a lock under `luna-bench
//! http`) and, were the connection closed before some later `COMMIT` on it, acknowledged
//! single-statement writes would be lost. Here the connection is closed instead of returned
//! when `BEGIN` did not complete (closing the session rolls its transaction back); once
//! `BEGIN` has answered, sqlx's own guards roll a dropped transaction back.

use sqlx::pool::PoolConnection;
use sqlx::{Connection, PgPool, Postgres, Transaction};

use crate::map_err;
use luna_ports::StoreError;

/// A pooled connection that is closed, not returned, if a `BEGIN` on it did not complete.
pub(crate) struct Conn {
    conn: PoolConnection<Postgres>,
    beginning: bool,
}

impl Drop for Conn {
    fn drop(&mut self) {
        if self.beginning {
            self.conn.close_on_drop();
        }
    }
}

impl Conn {
    /// A connection from the pool.
    pub(crate) async fn acquire(pool: &PgPool) -> Result<Conn, StoreError> {
        Ok(Conn {
            conn: pool.acquire().await.map_err(map_err)?,
            beginning: false,
        })
    }

    /// Begins a transaction; if this future is dropped (or fails) before `BEGIN` answered,
    /// the connection is closed when this `Conn` is dropped.
    pub(crate) async fn begin(&mut self) -> Result<Transaction<'_, Postgres>, StoreError> {
        self.beginning = true;
        let tx = Connection::begin(&mut *self.conn).await.map_err(map_err)?;
        self.beginning = false;
        Ok(tx)
    }
}

#[cfg(test)]
mod tests {
    use super::Conn;

    /// A `BEGIN` whose future is dropped before its answer leaves no transaction behind: the
    /// next statement on the pool's (only) connection commits on its own, and another session
    /// sees it. With `Pool::begin` this statement ran inside the abandoned transaction and
    /// stayed invisible.
    #[tokio::test]
    async fn a_begin_dropped_in_flight_leaves_no_transaction_behind() {
        let Ok(url) = std::env::var("LUNA_TEST_DATABASE_URL") else {
            assert!(
                std::env::var("LUNA_REQUIRE_POSTGRES").is_err(),
                "LUNA_REQUIRE_POSTGRES is set but LUNA_TEST_DATABASE_URL is not"
            );
            return;
        };
        // The pool reaches PostgreSQL through a proxy that holds every answer 20 ms: BEGIN is
        // still in flight after its first poll, however fast the server (a local server could
        // answer between the write and the read of that poll).
        let options: sqlx::postgres::PgConnectOptions = url.parse().expect("a PostgreSQL URL");
        let proxy = slow_proxy(format!("{}:{}", options.get_host(), options.get_port())).await;
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect_with(options.host("127.0.0.1").port(proxy))
            .await
            .expect("connect");
        let other = sqlx::PgPool::connect(&url).await.expect("connect");
        let table = format!(
            "cancel_probe_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after 1970")
                .as_nanos()
        );
        sqlx::query(&format!("CREATE TABLE {table} (n int)"))
            .execute(&other)
            .await
            .expect("create");
        {
            let mut conn = Conn::acquire(&pool).await.expect("acquire");
            let begin = conn.begin();
            tokio::pin!(begin);
            // One poll: BEGIN is written to the socket and its answer awaited; then dropped.
            tokio::select! {
                biased;
                _ = &mut begin => panic!("BEGIN answered within one poll"),
                () = std::future::ready(()) => {}
            }
        }
        sqlx::query(&format!("INSERT INTO {table} VALUES (1)"))
            .execute(&pool)
            .await
            .expect("insert");
        let seen: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&other)
            .await
            .expect("count");
        assert_eq!(seen, 1, "the insert after the dropped BEGIN is committed");
        // Closing the pool ends any transaction it holds, so the table can be dropped.
        pool.close().await;
        sqlx::query(&format!("DROP TABLE {table}"))
            .execute(&other)
            .await
            .expect("drop");
    }

    /// A TCP proxy to `target` that passes requests at once and holds each answer 20 ms.
    /// Returns its port.
    async fn slow_proxy(target: String) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(&target).await else {
                    return;
                };
                let (mut from_client, mut to_client) = client.into_split();
                let (mut from_server, mut to_server) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut from_client, &mut to_server).await;
                });
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = from_server.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        if to_client.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        port
    }
}
