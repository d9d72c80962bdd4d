//! Every endpoint of the hub (spec §3), as a method. `user` is `None` when a user's own token
//! acts for itself; a service key must name the user.

use luna_api::{
    AnalyticsResponse, BillingHistoryResponse, CanPerformBody, CanPerformResponse,
    CancelSubscriptionBody, CancelSubscriptionResponse, CheckBody, CheckResponse, CommitBody,
    ConfirmPaymentBody, ConfirmPaymentResponse, ConsumeBody, ConsumeResponse, CostsResponse,
    CreateIntentBody, CreateIntentResponse, CreateSubscriptionBody, CreateSubscriptionResponse,
    EventsResponse, GrantBody, GrantResponse, HealthResponse, LoginBody, LogoutResponse,
    MessageResponse, NarrativeResponse, PacksResponse, PostEventBody, PostEventResponse,
    ProfileResponse, PurchaseBody, PurchaseResponse, ReadyResponse, RefundBody,
    RefundPolicyResponse, RefundResponse, RegisterBody, ReleaseBody, ReleaseResponse, ReserveBody,
    ReserveResponse, SessionsResponse, TokenResponse, TransactionsResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::transport::{Call, Credentials, Retry, Tokens};
use crate::{ClientConfig, Error, LunaClient};

fn raw(context: Option<&serde_json::Value>) -> Result<Option<Box<RawValue>>, Error> {
    context
        .map(|c| serde_json::value::to_raw_value(c).map_err(|e| Error::Decode(e.to_string())))
        .transpose()
}

fn segment(s: &str) -> String {
    // Path segments are ids: anything else is escaped so it cannot change the route.
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn page(limit: Option<u32>, before: Option<&str>) -> Vec<(&'static str, String)> {
    let mut q = Vec::new();
    if let Some(l) = limit {
        q.push(("limit", l.to_string()));
    }
    if let Some(b) = before {
        q.push(("before", b.to_owned()));
    }
    q
}

impl LunaClient {
    async fn get<R: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<R, Error> {
        self.transport
            .call(&self.credentials, &Call::get(path, query))
            .await
    }

    async fn post<R: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<R, Error> {
        let call = Call::post(path, body, self.mutation_key())?;
        self.transport.call(&self.credentials, &call).await
    }

    async fn delete<R: DeserializeOwned>(&self, path: &str) -> Result<R, Error> {
        let call = Call {
            method: reqwest::Method::DELETE,
            path,
            query: &[],
            body: None,
            idempotency_key: None,
            retry: Retry::Safe,
        };
        self.transport.call(&self.credentials, &call).await
    }

    // ---- energy ------------------------------------------------------------------------

    /// The balance (opens an unknown user's account with its welcome energy).
    ///
    /// ```no_run
    /// # async fn demo(luna: luna_client::LunaClient) -> Result<(), luna_client::Error> {
    /// let b = luna.check(Some("marie")).await?;
    /// println!("{} units", b.current_energy);
    /// # Ok(()) }
    /// ```
    pub async fn check(&self, user: Option<&str>) -> Result<CheckResponse, Error> {
        let body = CheckBody {
            user_id: user.map(str::to_owned),
        };
        self.post("/luna/energy/check", &body).await
    }

    /// Whether an action can be performed ("cannot" is an answer, with the pack to buy).
    ///
    /// ```no_run
    /// # async fn demo(luna: luna_client::LunaClient) -> Result<(), luna_client::Error> {
    /// let c = luna.can_perform(Some("marie"), "mirror_match").await?;
    /// if !c.can_perform { println!("buy {:?}", c.required_pack); }
    /// # Ok(()) }
    /// ```
    pub async fn can_perform(
        &self,
        user: Option<&str>,
        action: &str,
    ) -> Result<CanPerformResponse, Error> {
        let body = CanPerformBody {
            user_id: user.map(str::to_owned),
            action_name: action.to_owned(),
        };
        self.post("/luna/energy/can-perform", &body).await
    }

    /// Consumes an action's cost (402 → [`Error::InsufficientEnergy`]).
    ///
    /// ```no_run
    /// # async fn demo(luna: luna_client::LunaClient) -> Result<(), luna_client::Error> {
    /// let done = luna.consume(Some("marie"), "lettre_motivation").await?;
    /// # Ok(()) }
    /// ```
    pub async fn consume(
        &self,
        user: Option<&str>,
        action: &str,
    ) -> Result<ConsumeResponse, Error> {
        self.consume_with(user, action, None).await
    }

    /// Consumes with a context object (≤ 8 KiB, kept verbatim; `app_source` names the app).
    ///
    /// ```no_run
    /// # async fn demo(luna: luna_client::LunaClient) -> Result<(), luna_client::Error> {
    /// let ctx = serde_json::json!({"app_source": "letters", "target_role": "Data Analyst"});
    /// luna.consume_with(Some("marie"), "lettre_motivation", Some(&ctx)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn consume_with(
        &self,
        user: Option<&str>,
        action: &str,
        context: Option<&serde_json::Value>,
    ) -> Result<ConsumeResponse, Error> {
        let body = ConsumeBody {
            user_id: user.map(str::to_owned),
            action_name: action.to_owned(),
            context: raw(context)?,
        };
        self.post("/luna/energy/consume", &body).await
    }

    /// Puts an action's cost on hold for `ttl_seconds` (default 300).
    ///
    /// ```no_run
    /// # async fn demo(luna: luna_client::LunaClient) -> Result<(), luna_client::Error> {
    /// let hold = luna.reserve(Some("marie"), "mirror_match", Some(120), None).await?;
    /// # Ok(()) }
    /// ```
    pub async fn reserve(
        &self,
        user: Option<&str>,
        action: &str,
        ttl_seconds: Option<i64>,
        context: Option<&serde_json::Value>,
    ) -> Result<ReserveResponse, Error> {
        let body = ReserveBody {
            user_id: user.map(str::to_owned),
            action_name: action.to_owned(),
            ttl_seconds,
            context: raw(context)?,
        };
        self.post("/luna/energy/reserve", &body).await
    }

    /// Commits a hold: the consume happens now (again → the same answer).
    ///
    /// ```no_run
    /// # async fn demo(luna: luna_client::LunaClient, id: &str) -> Result<(), luna_client::Error> {
    /// let done = luna.commit(id, None).await?;
    /// # Ok(()) }
    /// ```
    pub async fn commit(
        &self,
        reservation_id: &str,
        context: Option<&serde_json::Value>,
    ) -> Result<ConsumeResponse, Error> {
        let path = format!(
            "/luna/energy/reservations/{}/commit",
            segment(reservation_id)
        );
        let body = CommitBody {
            context: raw(context)?,
        };
        self.post(&path, &body).await
    }

    /// Releases a hold (again → the same answer).
    ///
    /// ```no_run
    /// # async fn demo(luna: luna_client::LunaClient, id: &str) -> Result<(), luna_client::Error> {
    /// luna.release(id).await?;
    /// # Ok(()) }
    /// ```
    pub async fn release(&self, reservation_id: &str) -> Result<ReleaseResponse, Error> {
        let path = format!(
            "/luna/energy/reservations/{}/release",
            segment(reservation_id)
        );
        self.post(&path, &ReleaseBody {}).await
    }

    /// Refunds a consume (once, within the window).
    ///
    /// ```no_run
    /// # async fn demo(luna: luna_client::LunaClient) -> Result<(), luna_client::Error> {
    /// use luna_client::api::RefundBody;
    /// luna.refund(&RefundBody { user_id: Some("marie".into()), transaction_id: "…".into(),
    ///     amount: None, reason: "generation failed".into() }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn refund(&self, body: &RefundBody) -> Result<RefundResponse, Error> {
        self.post("/luna/energy/refund", body).await
    }

    /// The refund policy (public).
    ///
    /// ```no_run
    /// # async fn demo(luna: luna_client::LunaClient) -> Result<(), luna_client::Error> {
    /// let days = luna.refund_policy().await?.policy.window_days;
    /// # Ok(()) }
    /// ```
    pub async fn refund_policy(&self) -> Result<RefundPolicyResponse, Error> {
        self.get("/luna/energy/refund-policy", &[]).await
    }

    /// Grants energy (an `admin` key).
    ///
    /// ```no_run
    /// # async fn demo(luna: luna_client::LunaClient) -> Result<(), luna_client::Error> {
    /// use luna_client::api::GrantBody;
    /// luna.grant(&GrantBody { user_id: "marie".into(), amount: 50, reason: "support".into() }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn grant(&self, body: &GrantBody) -> Result<GrantResponse, Error> {
        self.post("/luna/energy/grant", body).await
    }

    /// A page of a user's transactions, newest first (`before`: the previous `next_cursor`).
    ///
    /// ```no_run
    /// # async fn demo(luna: luna_client::LunaClient) -> Result<(), luna_client::Error> {
    /// let page = luna.transactions("marie", Some(20), None).await?;
    /// # Ok(()) }
    /// ```
    pub async fn transactions(
        &self,
        user: &str,
        limit: Option<u32>,
        before: Option<&str>,
    ) -> Result<TransactionsResponse, Error> {
        let path = format!("/luna/energy/transactions/{}", segment(user));
        self.get(&path, &page(limit, before)).await
    }

    /// A user's analytics over `[from, to)` (RFC 3339 or dates).
    ///
    /// ```no_run
    /// # async fn demo(luna: luna_client::LunaClient) -> Result<(), luna_client::Error> {
    /// let a = luna.analytics("marie", Some("2026-11-01"), None).await?;
    /// # Ok(()) }
    /// ```
    pub async fn analytics(
        &self,
        user: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<AnalyticsResponse, Error> {
        let path = format!("/luna/energy/analytics/{}", segment(user));
        let mut q = Vec::new();
        if let Some(f) = from {
            q.push(("from", f.to_owned()));
        }
        if let Some(t) = to {
            q.push(("to", t.to_owned()));
        }
        self.get(&path, &q).await
    }

    /// The cost grid and packs (public).
    ///
    /// ```no_run
    /// # async fn demo(luna: luna_client::LunaClient) -> Result<(), luna_client::Error> {
    /// let costs = luna.costs().await?;
    /// # Ok(()) }
    /// ```
    pub async fn costs(&self) -> Result<CostsResponse, Error> {
        self.get("/luna/energy/costs", &[]).await
    }

    // ---- events and narrative ------------------------------------------------------------

    /// Records an app event.
    ///
    /// ```no_run
    /// # async fn demo(luna: luna_client::LunaClient) -> Result<(), luna_client::Error> {
    /// use luna_client::api::PostEventBody;
    /// let data = serde_json::value::to_raw_value(&serde_json::json!({"words": 320})).unwrap();
    /// luna.post_event(&PostEventBody { user_id: Some("marie".into()), event_type: "letter.generated".into(),
    ///     app_source: "letters".into(), event_data: data, metadata: None }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn post_event(&self, body: &PostEventBody) -> Result<PostEventResponse, Error> {
        self.post("/luna/events", body).await
    }

    /// A page of a user's events, newest first, optionally of one type.
    ///
    /// ```no_run
    /// # async fn demo(luna: luna_client::LunaClient) -> Result<(), luna_client::Error> {
    /// let page = luna.events("marie", Some("letter.generated"), Some(50), None).await?;
    /// # Ok(()) }
    /// ```
    pub async fn events(
        &self,
        user: &str,
        event_type: Option<&str>,
        limit: Option<u32>,
        before: Option<&str>,
    ) -> Result<EventsResponse, Error> {
        let path = format!("/luna/events/{}", segment(user));
        let mut q = page(limit, before);
        if let Some(t) = event_type {
            q.push(("event_type", t.to_owned()));
        }
        self.get(&path, &q).await
    }

    /// The Capital Narratif of a user.
    ///
    /// ```no_run
    /// # async fn demo(luna: luna_client::LunaClient) -> Result<(), luna_client::Error> {
    /// let n = luna.narrative("marie").await?;
    /// # Ok(()) }
    /// ```
    pub async fn narrative(&self, user: &str) -> Result<NarrativeResponse, Error> {
        let path = format!("/luna/narrative/{}", segment(user));
        self.get(&path, &[]).await
    }

    // ---- accounts ------------------------------------------------------------------------

    /// Registers an account and returns a client acting for it, with its tokens.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), luna_client::Error> {
    /// use luna_client::{api::RegisterBody, LunaClient};
    /// let (marie, tokens) = LunaClient::register("http://127.0.0.1:8003", &RegisterBody {
    ///     email: "marie@example.com".into(), password: "correct horse battery".into(), name: None,
    /// }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn register(
        base: &str,
        body: &RegisterBody,
    ) -> Result<(LunaClient, TokenResponse), Error> {
        LunaClient::sign_in(base, "/auth/register", body).await
    }

    /// Logs in and returns a client acting for the user, with its tokens.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), luna_client::Error> {
    /// let (marie, _) = luna_client::LunaClient::login("http://127.0.0.1:8003", "marie@example.com", "correct horse battery").await?;
    /// # Ok(()) }
    /// ```
    pub async fn login(
        base: &str,
        email: &str,
        password: &str,
    ) -> Result<(LunaClient, TokenResponse), Error> {
        let body = LoginBody {
            email: email.to_owned(),
            password: password.to_owned(),
        };
        LunaClient::sign_in(base, "/auth/login", &body).await
    }

    async fn sign_in(
        base: &str,
        path: &str,
        body: &impl Serialize,
    ) -> Result<(LunaClient, TokenResponse), Error> {
        let anon = LunaClient::build(base, Credentials::Anonymous, ClientConfig::default())?;
        let mut call = Call::post(path, body, String::new())?;
        call.idempotency_key = None;
        call.retry = Retry::UnavailableOnly;
        let t: TokenResponse = anon.transport.call(&anon.credentials, &call).await?;
        let mut client = anon;
        client.credentials = std::sync::Arc::new(Credentials::user(Tokens {
            access_token: t.access_token.clone(),
            refresh_token: t.refresh_token.clone(),
        }));
        Ok((client, t))
    }

    /// The signed-in user's profile.
    ///
    /// ```no_run
    /// # async fn demo(marie: luna_client::LunaClient) -> Result<(), luna_client::Error> {
    /// let me = marie.profile().await?;
    /// # Ok(()) }
    /// ```
    pub async fn profile(&self) -> Result<ProfileResponse, Error> {
        self.get("/auth/profile", &[]).await
    }

    /// The signed-in user's live sessions.
    ///
    /// ```no_run
    /// # async fn demo(marie: luna_client::LunaClient) -> Result<(), luna_client::Error> {
    /// let s = marie.sessions().await?;
    /// # Ok(()) }
    /// ```
    pub async fn sessions(&self) -> Result<SessionsResponse, Error> {
        self.get("/auth/sessions", &[]).await
    }

    /// Revokes one of the user's sessions.
    ///
    /// ```no_run
    /// # async fn demo(marie: luna_client::LunaClient) -> Result<(), luna_client::Error> {
    /// marie.revoke_session("0190c7a2-0000-7000-8000-000000000009").await?;
    /// # Ok(()) }
    /// ```
    pub async fn revoke_session(&self, id: &str) -> Result<MessageResponse, Error> {
        self.delete(&format!("/auth/sessions/{}", segment(id)))
            .await
    }

    /// Logs this session out.
    ///
    /// ```no_run
    /// # async fn demo(marie: luna_client::LunaClient) -> Result<(), luna_client::Error> {
    /// marie.logout().await?;
    /// # Ok(()) }
    /// ```
    pub async fn logout(&self) -> Result<LogoutResponse, Error> {
        self.post("/auth/logout", &serde_json::json!({})).await
    }

    /// Logs every session of the user out.
    ///
    /// ```no_run
    /// # async fn demo(marie: luna_client::LunaClient) -> Result<(), luna_client::Error> {
    /// marie.logout_all().await?;
    /// # Ok(()) }
    /// ```
    pub async fn logout_all(&self) -> Result<LogoutResponse, Error> {
        self.post("/auth/logout-all", &serde_json::json!({})).await
    }

    // ---- billing -------------------------------------------------------------------------

    /// The packs on sale (public).
    ///
    /// ```no_run
    /// # async fn demo(luna: luna_client::LunaClient) -> Result<(), luna_client::Error> {
    /// for p in luna.packs().await?.packs { println!("{} {}", p.code, p.price_euro); }
    /// # Ok(()) }
    /// ```
    pub async fn packs(&self) -> Result<PacksResponse, Error> {
        self.get("/billing/packs", &[]).await
    }

    /// Creates a PaymentIntent for a one-off pack (409 `already_unlimited` while Unlimited).
    ///
    /// ```no_run
    /// # async fn demo(marie: luna_client::LunaClient) -> Result<(), luna_client::Error> {
    /// let intent = marie.create_intent(None, "cafe_luna").await?;
    /// // hand intent.client_secret to Stripe.js, then confirm:
    /// marie.confirm_payment(None, &intent.intent_id).await?;
    /// # Ok(()) }
    /// ```
    pub async fn create_intent(
        &self,
        user: Option<&str>,
        pack: &str,
    ) -> Result<CreateIntentResponse, Error> {
        let body = CreateIntentBody {
            user_id: user.map(str::to_owned),
            pack: pack.to_owned(),
            currency: None,
        };
        self.post("/billing/create-intent", &body).await
    }

    /// Credits a succeeded PaymentIntent (once, whichever path comes first).
    ///
    /// ```no_run
    /// # async fn demo(marie: luna_client::LunaClient) -> Result<(), luna_client::Error> {
    /// let c = marie.confirm_payment(None, "pi_…").await?;
    /// # Ok(()) }
    /// ```
    pub async fn confirm_payment(
        &self,
        user: Option<&str>,
        intent_id: &str,
    ) -> Result<ConfirmPaymentResponse, Error> {
        let body = ConfirmPaymentBody {
            user_id: user.map(str::to_owned),
            intent_id: intent_id.to_owned(),
        };
        self.post("/billing/confirm-payment", &body).await
    }

    /// Credits a pack paid with a PaymentIntent (the old clients' route).
    ///
    /// ```no_run
    /// # async fn demo(luna: luna_client::LunaClient) -> Result<(), luna_client::Error> {
    /// use luna_client::api::PurchaseBody;
    /// luna.purchase(&PurchaseBody { user_id: Some("marie".into()), pack_type: "cafe_luna".into(),
    ///     stripe_payment_intent_id: "pi_…".into() }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn purchase(&self, body: &PurchaseBody) -> Result<PurchaseResponse, Error> {
        self.post("/luna/energy/purchase", body).await
    }

    /// Opens (or reuses) a hosted checkout for Luna Unlimited.
    ///
    /// ```no_run
    /// # async fn demo(marie: luna_client::LunaClient) -> Result<(), luna_client::Error> {
    /// use luna_client::api::CreateSubscriptionBody;
    /// let c = marie.create_subscription(&CreateSubscriptionBody { user_id: None,
    ///     plan: "luna_unlimited".into(), success_url: None, cancel_url: None }).await?;
    /// println!("go to {:?}", c.url);
    /// # Ok(()) }
    /// ```
    pub async fn create_subscription(
        &self,
        body: &CreateSubscriptionBody,
    ) -> Result<CreateSubscriptionResponse, Error> {
        self.post("/billing/create-subscription", body).await
    }

    /// Cancels Unlimited at the end of the period (`at_period_end`, the default) or now.
    ///
    /// ```no_run
    /// # async fn demo(marie: luna_client::LunaClient) -> Result<(), luna_client::Error> {
    /// marie.cancel_subscription(None, true).await?;
    /// # Ok(()) }
    /// ```
    pub async fn cancel_subscription(
        &self,
        user: Option<&str>,
        at_period_end: bool,
    ) -> Result<CancelSubscriptionResponse, Error> {
        let body = CancelSubscriptionBody {
            user_id: user.map(str::to_owned),
            at_period_end: Some(at_period_end),
        };
        self.post("/billing/cancel-subscription", &body).await
    }

    /// A page of a user's purchases, with totals and the subscription.
    ///
    /// ```no_run
    /// # async fn demo(luna: luna_client::LunaClient) -> Result<(), luna_client::Error> {
    /// let h = luna.billing_history("marie", None, None).await?;
    /// # Ok(()) }
    /// ```
    pub async fn billing_history(
        &self,
        user: &str,
        limit: Option<u32>,
        before: Option<&str>,
    ) -> Result<BillingHistoryResponse, Error> {
        let path = format!("/billing/history/{}", segment(user));
        self.get(&path, &page(limit, before)).await
    }

    // ---- operations ----------------------------------------------------------------------

    /// Liveness.
    ///
    /// ```no_run
    /// # async fn demo(luna: luna_client::LunaClient) -> Result<(), luna_client::Error> {
    /// assert_eq!(luna.health().await?.status, "healthy");
    /// # Ok(()) }
    /// ```
    pub async fn health(&self) -> Result<HealthResponse, Error> {
        self.get("/health", &[]).await
    }

    /// Readiness (503 → [`Error::Unavailable`] when the database is unreachable).
    ///
    /// ```no_run
    /// # async fn demo(luna: luna_client::LunaClient) -> Result<(), luna_client::Error> {
    /// let ready = luna.ready().await?.ready;
    /// # Ok(()) }
    /// ```
    pub async fn ready(&self) -> Result<ReadyResponse, Error> {
        self.get("/ready", &[]).await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_segment_cannot_change_the_route() {
        assert_eq!(super::segment("a/../b?x=1"), "a%2F..%2Fb%3Fx%3D1");
    }
}
