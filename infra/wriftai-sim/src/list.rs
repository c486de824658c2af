//! `GET /v1/predictions`: newest first, filtered by status, paged with opaque cursors.

use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use crate::Shared;
use crate::error::ApiError;
use crate::prediction::{Status, Summary};
use crate::store::From;

pub const DEFAULT_PAGE_SIZE: usize = 20;
pub const MAX_PAGE_SIZE: usize = 100;

/// Query pairs rather than a struct: `statuses` repeats (`statuses=a&statuses=b`),
/// which a flat struct cannot hold.
pub async fn list(
    State(state): State<Shared>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let mut statuses = Vec::new();
    let mut from = From::Newest;
    let mut page_size = DEFAULT_PAGE_SIZE;
    for (key, value) in &pairs {
        match key.as_str() {
            "statuses" => {
                for raw in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let status =
                        Status::parse(raw).ok_or_else(|| ApiError::unprocessable(format!("unknown status {raw:?}")))?;
                    statuses.push(status);
                }
            }
            "cursor" if !value.is_empty() => from = decode(value)?,
            "page_size" => {
                let n: usize =
                    value.parse().map_err(|_| ApiError::unprocessable("page_size must be a positive integer"))?;
                // Not documented whether WriftAI clamps or refuses; clamping keeps a
                // client that asks for too much working.
                page_size = n.clamp(1, MAX_PAGE_SIZE);
            }
            _ => {}
        }
    }
    let scan = state.store.scan(&statuses, from, page_size);
    let next = scan.more_older.then(|| scan.items.last().map(|(seq, _)| encode('o', *seq))).flatten();
    let previous = scan.more_newer.then(|| scan.items.first().map(|(seq, _)| encode('n', *seq))).flatten();
    let items = scan.items.iter().map(|(_, p)| p.summary()).collect();
    Ok(Json(Page { items, next_cursor: next, previous_cursor: previous }).into_response())
}

#[derive(Serialize)]
struct Page<'a> {
    items: Vec<Summary<'a>>,
    next_cursor: Option<String>,
    previous_cursor: Option<String>,
}

/// Cursors are opaque to clients: base64url of a direction (`o`lder or `n`ewer than)
/// and a creation number.
fn encode(direction: char, seq: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{direction}:{seq}"))
}

fn decode(cursor: &str) -> Result<From, ApiError> {
    let invalid = || ApiError::bad_request("cursor is not one this server issued");
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let raw = String::from_utf8(raw).map_err(|_| invalid())?;
    let (direction, seq) = raw.split_once(':').ok_or_else(invalid)?;
    let seq: u64 = seq.parse().map_err(|_| invalid())?;
    match direction {
        "o" => Ok(From::OlderThan(seq)),
        "n" => Ok(From::NewerThan(seq)),
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_strangers_are_refused() {
        assert_eq!(decode(&encode('o', 3)).ok(), Some(From::OlderThan(3)));
        assert_eq!(decode(&encode('n', 0)).ok(), Some(From::NewerThan(0)));
        assert!(decode("not-a-cursor!").is_err());
        assert!(decode(&URL_SAFE_NO_PAD.encode("x:1")).is_err());
    }
}
