//! The columns of stored rows (events with their metadata, service keys) and their
//! conversions to the ports' types, shared by both SQL adapters.

use luna_core::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{CodecError, Encoded, decode, encode, id, json_err, to_json, valid};

/// The metadata stored beside an event.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MetadataDto {
    /// Who.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Request id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Client idempotency key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// Encodes event metadata.
pub fn encode_metadata(
    actor: Option<&str>,
    correlation_id: Option<&str>,
    idempotency_key: Option<&str>,
) -> String {
    to_json(&MetadataDto {
        actor: actor.map(str::to_owned),
        correlation_id: correlation_id.map(str::to_owned),
        idempotency_key: idempotency_key.map(str::to_owned),
    })
}

/// Decodes event metadata.
pub fn decode_metadata(text: &str) -> Result<MetadataDto, CodecError> {
    serde_json::from_str(text).map_err(json_err("metadata"))
}

/// The columns of a stored event row, as read back.
#[derive(Debug, Clone)]
pub struct EventRow {
    /// Global position.
    pub position: i64,
    /// Event id (UUID text).
    pub event_id: String,
    /// Stream id.
    pub stream_id: String,
    /// Version in the stream.
    pub version: i64,
    /// Type name.
    pub event_type: String,
    /// Schema version.
    pub schema_version: i32,
    /// Payload JSON.
    pub payload: String,
    /// Metadata JSON.
    pub metadata: String,
    /// `occurred_at`, ms since the epoch.
    pub occurred_at_ms: i64,
    /// `recorded_at`, ms since the epoch.
    pub recorded_at_ms: i64,
    /// The balance after the event (`None` before figures were kept, and on app events).
    pub balance_after: Option<i64>,
    /// The available energy after the event.
    pub available_after: Option<i64>,
}

/// The figures of a row, when both columns are set.
fn after_of(balance: Option<i64>, available: Option<i64>) -> Option<luna_ports::EnergyAfter> {
    Some(luna_ports::EnergyAfter {
        balance: balance?,
        available: available?,
    })
}

/// Decodes an event from the columns a fold reads (type, schema version, payload, time).
pub fn decode_event(
    event_type: &str,
    schema_version: i32,
    payload: &str,
    occurred_at_ms: i64,
) -> Result<luna_core::Event, CodecError> {
    Ok(luna_core::Event {
        occurred_at: Timestamp::from_millis(occurred_at_ms),
        kind: decode(event_type, schema_version, payload)?,
    })
}

/// Decodes a stored row into the port's recorded event.
pub fn decode_row(row: &EventRow) -> Result<luna_ports::RecordedEvent, CodecError> {
    let event = decode_event(
        &row.event_type,
        row.schema_version,
        &row.payload,
        row.occurred_at_ms,
    )?;
    let meta = decode_metadata(&row.metadata)?;
    Ok(luna_ports::RecordedEvent {
        event_id: id(&row.event_id)?,
        stream: valid(luna_core::UserId::parse(&row.stream_id))?,
        version: u64::try_from(row.version).map_err(|_| CodecError::Invalid("version".into()))?,
        position: u64::try_from(row.position)
            .map_err(|_| CodecError::Invalid("position".into()))?,
        event,
        metadata: luna_ports::EventMetadata {
            actor: meta.actor,
            correlation_id: meta.correlation_id,
            idempotency_key: meta.idempotency_key,
        },
        recorded_at: Timestamp::from_millis(row.recorded_at_ms),
        after: after_of(row.balance_after, row.available_after),
    })
}

/// The columns of an event to insert.
#[derive(Debug, Clone)]
pub struct NewEventRow {
    /// Event id (UUID text).
    pub event_id: String,
    /// Type, schema version, entity key and payload.
    pub encoded: Encoded,
    /// Metadata JSON.
    pub metadata: String,
    /// `occurred_at`, ms since the epoch.
    pub occurred_at_ms: i64,
    /// `balance_after` column.
    pub balance_after: Option<i64>,
    /// `available_after` column.
    pub available_after: Option<i64>,
}

/// Encodes an event to insert.
pub fn encode_new(e: &luna_ports::NewEvent) -> NewEventRow {
    NewEventRow {
        event_id: e.event_id.to_string(),
        encoded: encode(&e.event.kind),
        metadata: encode_metadata(
            e.metadata.actor.as_deref(),
            e.metadata.correlation_id.as_deref(),
            e.metadata.idempotency_key.as_deref(),
        ),
        occurred_at_ms: e.event.occurred_at.millis(),
        balance_after: e.after.map(|a| a.balance),
        available_after: e.after.map(|a| a.available),
    }
}

/// A service key row as read back.
#[derive(Debug, Clone)]
pub struct KeyRow {
    /// Id (UUID text).
    pub id: String,
    /// Label.
    pub name: String,
    /// Space-separated scopes.
    pub scopes: String,
    /// Creation time, ms.
    pub created_at_ms: i64,
    /// Revocation time, ms.
    pub revoked_at_ms: Option<i64>,
}

/// Space-separated scopes, as stored.
pub fn encode_scopes(scopes: &[luna_ports::Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Decodes a stored service key.
pub fn decode_key(row: &KeyRow) -> Result<luna_ports::ServiceKey, CodecError> {
    let scopes = row
        .scopes
        .split_whitespace()
        .map(|s| {
            luna_ports::Scope::parse(s).ok_or_else(|| CodecError::Invalid(format!("scope {s}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(luna_ports::ServiceKey {
        id: id(&row.id)?,
        name: row.name.clone(),
        scopes,
        created_at: Timestamp::from_millis(row.created_at_ms),
        revoked_at: row.revoked_at_ms.map(Timestamp::from_millis),
    })
}
