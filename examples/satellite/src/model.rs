//! The text model behind the satellite: Google Gemini's REST `generateContent` (plain reqwest,
//! `x-goog-api-key`), or a deterministic fake when no key is configured.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

/// What a model was asked.
#[derive(Debug, Clone)]
pub struct Prompt {
    /// How to behave.
    pub system: String,
    /// The request.
    pub text: String,
}

/// Why a generation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// The model refused or could not be reached (after its retries).
    #[error("model unavailable: {0}")]
    Unavailable(String),
    /// The prompt was blocked (`promptFeedback.blockReason`).
    #[error("prompt blocked: {0}")]
    Blocked(String),
    /// An answer without text.
    #[error("empty answer ({0})")]
    Empty(String),
}

/// A text model.
#[async_trait]
pub trait Model: Send + Sync {
    /// Generates text for a prompt.
    async fn generate(&self, prompt: &Prompt) -> Result<String, ModelError>;
}

/// A deterministic model for development and tests: the same prompt, the same letter.
pub struct FakeModel;

#[async_trait]
impl Model for FakeModel {
    async fn generate(&self, prompt: &Prompt) -> Result<String, ModelError> {
        Ok(format!(
            "Madame, Monsieur,\n\n{}\n\n(generated offline)",
            prompt.text
        ))
    }
}

/// Google Gemini over REST.
pub struct Gemini {
    http: reqwest::Client,
    base: String,
    key: String,
    model: String,
    /// Retries after the first attempt (429, 500, 503).
    pub max_retries: u32,
    /// The longest wait before a retry (a `RetryInfo` asking for more fails at once).
    pub max_wait: Duration,
}

/// Gemini's public endpoint.
pub const GEMINI_BASE: &str = "https://generativelanguage.googleapis.com";

impl Gemini {
    /// A client for `model` (`gemini-2.5-flash`) at `base` (tests point it at a fake).
    pub fn new(base: &str, key: &str, model: &str) -> Gemini {
        Gemini {
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap_or_else(|_| reqwest::Client::new()),
            base: base.trim_end_matches('/').to_owned(),
            key: key.to_owned(),
            model: model.to_owned(),
            max_retries: 2,
            max_wait: Duration::from_secs(10),
        }
    }

    fn request(prompt: &Prompt) -> Value {
        json!({
            "systemInstruction": {"parts": [{"text": prompt.system}]},
            "contents": [{"role": "user", "parts": [{"text": prompt.text}]}],
            "generationConfig": {"temperature": 0.7, "maxOutputTokens": 1024},
        })
    }
}

/// `google.rpc.RetryInfo.retryDelay` (`"53s"`, `"0.5s"`) of an error body, if any.
pub fn retry_delay(body: &Value) -> Option<Duration> {
    body["error"]["details"]
        .as_array()?
        .iter()
        .find(|d| d["@type"] == "type.googleapis.com/google.rpc.RetryInfo")?["retryDelay"]
        .as_str()?
        .strip_suffix('s')?
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

/// The text of a `generateContent` answer: the first candidate's parts, thoughts skipped.
pub fn answer_text(body: &Value) -> Result<String, ModelError> {
    if let Some(reason) = body["promptFeedback"]["blockReason"].as_str() {
        return Err(ModelError::Blocked(reason.to_owned()));
    }
    let candidate = &body["candidates"][0];
    let text: String = candidate["content"]["parts"]
        .as_array()
        .map(|parts| {
            parts
                .iter()
                .filter(|p| p["thought"] != Value::Bool(true))
                .filter_map(|p| p["text"].as_str())
                .collect()
        })
        .unwrap_or_default();
    if text.trim().is_empty() {
        let why = candidate["finishReason"].as_str().unwrap_or("no candidate");
        return Err(ModelError::Empty(why.to_owned()));
    }
    Ok(text)
}

#[async_trait]
impl Model for Gemini {
    async fn generate(&self, prompt: &Prompt) -> Result<String, ModelError> {
        let url = format!("{}/v1beta/models/{}:generateContent", self.base, self.model);
        let body = Gemini::request(prompt);
        let mut attempt = 0;
        loop {
            let sent = self
                .http
                .post(&url)
                .header("x-goog-api-key", &self.key)
                .json(&body)
                .send()
                .await;
            let (status, answer) = match sent {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let v = r.json::<Value>().await.unwrap_or(Value::Null);
                    (status, v)
                }
                Err(e) => (0, json!({"error": {"message": e.to_string()}})),
            };
            if status == 200 {
                return answer_text(&answer);
            }
            let retryable = matches!(status, 0 | 429 | 500 | 503);
            let backoff = Duration::from_millis(500 * 2u64.pow(attempt));
            let wait = retry_delay(&answer).unwrap_or(backoff);
            if !retryable || attempt >= self.max_retries || wait > self.max_wait {
                let message = answer["error"]["message"].as_str().unwrap_or("no message");
                return Err(ModelError::Unavailable(format!("HTTP {status}: {message}")));
            }
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_skips_thoughts_and_refusals_are_typed() {
        let ok = json!({"candidates": [{"content": {"role": "model", "parts": [
            {"text": "thinking…", "thought": true}, {"text": "Dear "}, {"text": "team"}]},
            "finishReason": "STOP"}]});
        assert_eq!(answer_text(&ok), Ok("Dear team".into()));
        let blocked = json!({"promptFeedback": {"blockReason": "SAFETY"}});
        assert_eq!(
            answer_text(&blocked),
            Err(ModelError::Blocked("SAFETY".into()))
        );
        let empty =
            json!({"candidates": [{"content": {"role": "model"}, "finishReason": "MAX_TOKENS"}]});
        assert_eq!(
            answer_text(&empty),
            Err(ModelError::Empty("MAX_TOKENS".into()))
        );
        let rate = json!({"error": {"code": 429, "details": [
            {"@type": "type.googleapis.com/google.rpc.Help"},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.25s"}]}});
        assert_eq!(retry_delay(&rate), Some(Duration::from_millis(250)));
        assert_eq!(retry_delay(&json!({"error": {"code": 429}})), None);
    }
}
