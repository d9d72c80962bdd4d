//! reserve → run → commit / release, with the hold released when the work fails, panics
//! unwinding through the future, or is dropped (a cancelled request, a timeout).

use std::future::Future;

use luna_api::{ConsumeResponse, ReserveResponse};

use crate::{Error, LunaClient};

/// Why [`LunaClient::with_hold`] failed.
#[derive(Debug, thiserror::Error)]
pub enum HoldError<E> {
    /// The hub refused or failed (the reserve — e.g. [`Error::InsufficientEnergy`] — or the
    /// commit; when the commit failed the work was done but is not charged).
    #[error(transparent)]
    Luna(Error),
    /// The work failed; its hold was released.
    #[error("the work failed (its hold was released)")]
    Work(E),
}

/// Releases the hold when dropped before it is settled.
struct ReleaseOnDrop {
    client: LunaClient,
    reservation: Option<String>,
}

impl ReleaseOnDrop {
    fn settle(&mut self) {
        self.reservation = None;
    }
}

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        let Some(id) = self.reservation.take() else {
            return;
        };
        // Dropped mid-work: release in the background (the hold also expires on its own).
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let client = self.client.clone();
            runtime.spawn(async move {
                let _ = client.release(&id).await;
            });
        }
    }
}

impl LunaClient {
    /// Reserves `action`'s energy for `user` (with `context`, recorded with the consume), runs
    /// `work` with the hold, then commits it when
    /// the work succeeds and releases it when the work fails — or when this future is dropped
    /// before it finishes.
    ///
    /// ```no_run
    /// # async fn demo(luna: luna_client::LunaClient) -> Result<(), Box<dyn std::error::Error>> {
    /// use luna_client::{Error, HoldError};
    /// let letter = luna
    ///     .with_hold(Some("marie"), "lettre_motivation", None, |_hold| async {
    ///         Ok::<_, std::io::Error>("Dear hiring manager…".to_owned()) // call the model here
    ///     })
    ///     .await;
    /// match letter {
    ///     Ok((text, charged)) => println!("{text} ({} left)", charged.energy_remaining),
    ///     Err(HoldError::Luna(Error::InsufficientEnergy { required_pack, .. })) => {
    ///         println!("buy {required_pack:?}")
    ///     }
    ///     Err(other) => return Err(other.into()),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn with_hold<T, E, F, Fut>(
        &self,
        user: Option<&str>,
        action: &str,
        context: Option<&serde_json::Value>,
        work: F,
    ) -> Result<(T, ConsumeResponse), HoldError<E>>
    where
        F: FnOnce(ReserveResponse) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let hold = self
            .reserve(user, action, None, context)
            .await
            .map_err(HoldError::Luna)?;
        let id = hold.reservation_id.clone();
        let mut guard = ReleaseOnDrop {
            client: self.clone(),
            reservation: Some(id.clone()),
        };
        let outcome = work(hold).await;
        guard.settle();
        match outcome {
            Ok(value) => {
                let charged = self.commit(&id, None).await.map_err(HoldError::Luna)?;
                Ok((value, charged))
            }
            Err(e) => {
                self.release(&id).await.map_err(HoldError::Luna)?;
                Err(HoldError::Work(e))
            }
        }
    }
}
