//! The body of `POST /v1/txs`: one transaction, or an array of at most
//! [`MAX_TX_BATCH`]. The array is counted while it is parsed and refused at its
//! (limit + 1)th item, so a body of millions of tiny items costs what the limit
//! allows, never a value per item.

use super::error::ApiError;
use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
    http::{header::CONTENT_TYPE, HeaderMap, StatusCode},
};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::{cell::Cell, fmt};

/// Most transactions in one `POST /v1/txs`.
pub const MAX_TX_BATCH: usize = 10_000;

/// A parsed `POST /v1/txs` body; each item still to be decoded as a transaction (an
/// item that is not one gets its own error in the answer).
#[derive(Debug, PartialEq)]
pub(super) enum TxsBody {
    /// A single object.
    One(Value),
    /// A JSON array.
    Batch(Vec<Value>),
}

impl TxsBody {
    /// Parses `bytes`, refusing an array of more than `limit` items as soon as the
    /// parser reaches the item past it.
    pub(super) fn parse(bytes: &[u8], limit: usize) -> Result<Self, ApiError> {
        let over = Cell::new(false);
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let parsed = BodySeed { limit, over: &over }
            .deserialize(&mut de)
            .and_then(|body| de.end().map(|()| body));
        match parsed {
            Ok(body) => Ok(body),
            Err(_) if over.get() => Err(ApiError::bad_request(
                "batch_too_large",
                format!("at most {limit} transactions per batch"),
            )),
            Err(e) => Err(ApiError::bad_request(
                "invalid_json",
                format!("the body is not a transaction or an array of them: {e}"),
            )),
        }
    }
}

struct BodySeed<'a> {
    limit: usize,
    over: &'a Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for BodySeed<'_> {
    type Value = TxsBody;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<TxsBody, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for BodySeed<'_> {
    type Value = TxsBody;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "a transaction or an array of at most {} of them",
            self.limit
        )
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<TxsBody, A::Error> {
        serde::Deserialize::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            .map(TxsBody::One)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TxsBody, A::Error> {
        // The hint is the client's word: trusted only up to the limit.
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(self.limit));
        while let Some(item) = seq.next_element::<Value>()? {
            if items.len() == self.limit {
                self.over.set(true);
                return Err(serde::de::Error::custom(format_args!(
                    "more than {} items",
                    self.limit
                )));
            }
            items.push(item);
        }
        Ok(TxsBody::Batch(items))
    }
}

/// Whether the request says its body is JSON (`application/json`, or
/// `application/<anything>+json`), as `axum::Json` requires.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(mime) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = mime
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json"))
}

impl<S: Send + Sync> FromRequest<S> for TxsBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code: "unsupported_media_type",
                message: "expected `Content-Type: application/json`".into(),
            });
        }
        // Read whole under the body limit (413 beyond it), then parsed with the count.
        let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
            let status = rej.status();
            ApiError {
                status: if status.is_client_error() {
                    status
                } else {
                    StatusCode::BAD_REQUEST
                },
                code: if status == StatusCode::PAYLOAD_TOO_LARGE {
                    "body_too_large"
                } else {
                    "invalid_body"
                },
                message: rej.body_text(),
            }
        })?;
        // Parsing up to the limit is CPU work: off the async workers.
        tokio::task::spawn_blocking(move || Self::parse(&bytes, MAX_TX_BATCH))
            .await
            .map_err(ApiError::internal)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_object_or_an_array_within_the_limit() {
        assert_eq!(
            TxsBody::parse(br#"{"a": 1}"#, 3).unwrap(),
            TxsBody::One(serde_json::json!({"a": 1}))
        );
        assert_eq!(
            TxsBody::parse(b"[1, {}, null]", 3).unwrap(),
            TxsBody::Batch(vec![1.into(), serde_json::json!({}), Value::Null])
        );
        assert_eq!(TxsBody::parse(b"[]", 3).unwrap(), TxsBody::Batch(vec![]));
    }

    #[test]
    fn the_item_past_the_limit_stops_the_parse() {
        let e = TxsBody::parse(b"[0, 0, 0, 0]", 3).unwrap_err();
        assert_eq!(
            (e.status, e.code),
            (StatusCode::BAD_REQUEST, "batch_too_large")
        );
        assert!(e.message.contains('3'), "{}", e.message);
        // Refused before the parser reaches the end, even when that end is broken.
        let e = TxsBody::parse(b"[0, 0, 0, 0, not json at all", 3).unwrap_err();
        assert_eq!(e.code, "batch_too_large");
    }

    #[test]
    fn anything_else_is_a_client_error() {
        for body in [&b""[..], b"{", b"[1,", b"3", b"\"x\"", b"null", b"[] []"] {
            let e = TxsBody::parse(body, 3).unwrap_err();
            assert_eq!(
                (e.status, e.code),
                (StatusCode::BAD_REQUEST, "invalid_json")
            );
        }
    }

    #[test]
    fn content_types() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(CONTENT_TYPE, v.parse().unwrap());
            is_json(&h)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        assert!(with("application/vnd.api+json"));
        assert!(!with("text/plain"));
        assert!(!with("application/jsonx"));
        assert!(!is_json(&HeaderMap::new()));
    }
}
