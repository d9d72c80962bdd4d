//! The pages' texts, French first (as the seed), English when `Accept-Language` prefers it.

use axum::http::HeaderMap;

/// Every text a page shows.
#[derive(Debug, Clone, Copy)]
pub struct Texts {
    pub lang: &'static str,
    pub title: &'static str,
    pub nav_dashboard: &'static str,
    pub nav_buy: &'static str,
    pub nav_history: &'static str,
    pub nav_narrative: &'static str,
    pub nav_sessions: &'static str,
    pub logout: &'static str,
    pub login: &'static str,
    pub register: &'static str,
    pub email: &'static str,
    pub password: &'static str,
    pub name: &'static str,
    pub no_account: &'static str,
    pub have_account: &'static str,
    pub energy: &'static str,
    pub reserved: &'static str,
    pub unlimited: &'static str,
    pub unlimited_until: &'static str,
    pub what_can_i_do: &'static str,
    pub action: &'static str,
    pub cost: &'static str,
    pub times: &'static str,
    pub recent: &'static str,
    pub date: &'static str,
    pub change: &'static str,
    pub balance_after: &'static str,
    pub nothing_yet: &'static str,
    pub packs: &'static str,
    pub buy: &'static str,
    pub bonus_first: &'static str,
    pub popular: &'static str,
    pub subscribe: &'static str,
    pub unlimited_pitch: &'static str,
    pub already_unlimited: &'static str,
    pub billing_off: &'static str,
    pub cancelled: &'static str,
    pub pending: &'static str,
    pub credited: &'static str,
    pub unknown_payment: &'static str,
    pub refresh: &'static str,
    pub purchases: &'static str,
    pub pack: &'static str,
    pub amount: &'static str,
    pub status: &'static str,
    pub older: &'static str,
    pub timeline: &'static str,
    pub insights: &'static str,
    pub engagement: &'static str,
    pub trajectory: &'static str,
    pub sessions: &'static str,
    pub device: &'static str,
    pub address: &'static str,
    pub last_seen: &'static str,
    pub this_device: &'static str,
    pub revoke: &'static str,
    pub error_credentials: &'static str,
    pub error_generic: &'static str,
}

/// French.
pub const FR: Texts = Texts {
    lang: "fr",
    title: "Luna — votre énergie",
    nav_dashboard: "Tableau de bord",
    nav_buy: "Recharger",
    nav_history: "Achats",
    nav_narrative: "Capital Narratif",
    nav_sessions: "Appareils",
    logout: "Se déconnecter",
    login: "Se connecter",
    register: "Créer un compte",
    email: "E-mail",
    password: "Mot de passe (8 caractères au moins)",
    name: "Prénom (facultatif)",
    no_account: "Pas encore de compte ?",
    have_account: "Déjà un compte ?",
    energy: "Énergie",
    reserved: "réservée",
    unlimited: "Luna Unlimited",
    unlimited_until: "jusqu'au",
    what_can_i_do: "Ce que vous pouvez faire",
    action: "Action",
    cost: "Coût",
    times: "Possible",
    recent: "Dernières opérations",
    date: "Date",
    change: "Variation",
    balance_after: "Solde",
    nothing_yet: "Rien pour l'instant.",
    packs: "Packs d'énergie",
    buy: "Acheter",
    bonus_first: "bonus premier achat",
    popular: "Populaire",
    subscribe: "S'abonner",
    unlimited_pitch: "Énergie illimitée chaque mois ; chaque action reste enregistrée.",
    already_unlimited: "Vous êtes déjà Luna Unlimited.",
    billing_off: "Le paiement n'est pas configuré sur ce hub.",
    cancelled: "Paiement annulé.",
    pending: "Paiement en cours de confirmation…",
    credited: "Paiement reçu : votre énergie est créditée.",
    unknown_payment: "Paiement introuvable.",
    refresh: "Actualiser",
    purchases: "Vos achats",
    pack: "Pack",
    amount: "Montant",
    status: "État",
    older: "Plus anciens",
    timeline: "Parcours",
    insights: "Analyse",
    engagement: "Engagement",
    trajectory: "Trajectoire",
    sessions: "Appareils connectés",
    device: "Appareil",
    address: "Adresse",
    last_seen: "Vu le",
    this_device: "cet appareil",
    revoke: "Déconnecter",
    error_credentials: "E-mail ou mot de passe incorrect.",
    error_generic: "Une erreur est survenue.",
};

/// English.
pub const EN: Texts = Texts {
    lang: "en",
    title: "Luna — your energy",
    nav_dashboard: "Dashboard",
    nav_buy: "Top up",
    nav_history: "Purchases",
    nav_narrative: "Capital Narratif",
    nav_sessions: "Devices",
    logout: "Log out",
    login: "Log in",
    register: "Create an account",
    email: "Email",
    password: "Password (at least 8 characters)",
    name: "First name (optional)",
    no_account: "No account yet?",
    have_account: "Already have an account?",
    energy: "Energy",
    reserved: "on hold",
    unlimited: "Luna Unlimited",
    unlimited_until: "until",
    what_can_i_do: "What you can do",
    action: "Action",
    cost: "Cost",
    times: "Possible",
    recent: "Recent activity",
    date: "Date",
    change: "Change",
    balance_after: "Balance",
    nothing_yet: "Nothing yet.",
    packs: "Energy packs",
    buy: "Buy",
    bonus_first: "first-purchase bonus",
    popular: "Popular",
    subscribe: "Subscribe",
    unlimited_pitch: "Unlimited energy every month; every action stays recorded.",
    already_unlimited: "You are already Luna Unlimited.",
    billing_off: "Payments are not configured on this hub.",
    cancelled: "Payment cancelled.",
    pending: "Confirming your payment…",
    credited: "Payment received: your energy is credited.",
    unknown_payment: "Payment not found.",
    refresh: "Refresh",
    purchases: "Your purchases",
    pack: "Pack",
    amount: "Amount",
    status: "Status",
    older: "Older",
    timeline: "Journey",
    insights: "Insights",
    engagement: "Engagement",
    trajectory: "Trajectory",
    sessions: "Signed-in devices",
    device: "Device",
    address: "Address",
    last_seen: "Last seen",
    this_device: "this device",
    revoke: "Sign out",
    error_credentials: "Invalid email or password.",
    error_generic: "Something went wrong.",
};

/// The texts for a request: English when `Accept-Language` ranks English above French.
pub fn for_request(headers: &HeaderMap) -> &'static Texts {
    let accept = headers
        .get(axum::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut best: Option<(&'static Texts, f32)> = None;
    for part in accept.split(',').take(16) {
        let mut it = part.trim().split(';');
        let tag = it.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = it
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        let texts = if tag.starts_with("fr") {
            &FR
        } else if tag.starts_with("en") {
            &EN
        } else {
            continue;
        };
        if best.is_none_or(|(_, bq)| q > bq) {
            best = Some((texts, q));
        }
    }
    best.map_or(&FR, |(t, _)| t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lang(accept: &str) -> &'static str {
        let mut h = HeaderMap::new();
        h.insert(axum::http::header::ACCEPT_LANGUAGE, accept.parse().unwrap());
        for_request(&h).lang
    }

    #[test]
    fn french_first_english_when_preferred() {
        assert_eq!(for_request(&HeaderMap::new()).lang, "fr");
        assert_eq!(lang("en-US,en;q=0.9"), "en");
        assert_eq!(lang("fr-FR,fr;q=0.9,en;q=0.8"), "fr");
        assert_eq!(lang("de-DE,en;q=0.5"), "en");
        assert_eq!(lang("de-DE"), "fr");
    }
}
