//! The body of `POST /v1/txs`: one transaction, or an array of at most
//! [`MAX_TX_BATCH`]. The array's items are counted as the body arrives (past the limit
//! the rest is read and dropped) and again while it is parsed (refused at the
//! (limit + 1)th item), so a body of millions of tiny items costs what the limit
//! allows, never a value per item, nor the whole body in memory.

use super::error::ApiError;
use crate::state::AppState;
use axum::{
    body::HttpBody,
    extract::{FromRequest, Request},
    http::{
        header::{CONTENT_LENGTH, CONTENT_TYPE},
        HeaderMap, StatusCode,
    },
};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::{cell::Cell, fmt, sync::Arc};

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
            Err(_) if over.get() => Err(too_many(limit)),
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

/// Counts the items of a top-level JSON array as its bytes arrive (commas outside
/// strings at depth 1), so that reading can stop keeping a body once it holds more than
/// the limit. It only has to be right for valid JSON: the parser counts again.
#[derive(Debug, Default)]
struct ItemCounter {
    /// Whether the body's first token opened an array; `None` before it.
    array: Option<bool>,
    depth: u32,
    in_string: bool,
    escaped: bool,
    commas: usize,
}

impl ItemCounter {
    /// Feeds the next bytes; true once the array has more than `limit` items.
    fn over(&mut self, bytes: &[u8], limit: usize) -> bool {
        for &b in bytes {
            if self.in_string {
                match b {
                    _ if self.escaped => self.escaped = false,
                    b'\\' => self.escaped = true,
                    b'"' => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            if self.array.is_none() && !b.is_ascii_whitespace() {
                self.array = Some(b == b'[');
            }
            match b {
                b'"' => self.in_string = true,
                b'[' | b'{' => self.depth += 1,
                b']' | b'}' => self.depth = self.depth.saturating_sub(1),
                b',' if self.depth == 1 => self.commas += 1,
                _ => {}
            }
        }
        // n items have n - 1 commas between them.
        self.array == Some(true) && self.commas >= limit
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        code: "body_too_large",
        message: format!("the body is larger than {limit} bytes"),
    }
}

fn too_many(limit: usize) -> ApiError {
    ApiError::bad_request(
        "batch_too_large",
        format!("at most {limit} transactions per batch"),
    )
}

impl FromRequest<Arc<AppState>> for TxsBody {
    type Rejection = ApiError;

    /// Reads the body under `http.body_limit_bytes` (413 beyond it) while counting
    /// its items: past [`MAX_TX_BATCH`] the rest is read and dropped, never kept, so
    /// that the client gets its 400 rather than a reset connection.
    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code: "unsupported_media_type",
                message: "expected `Content-Type: application/json`".into(),
            });
        }
        let limit = state.config.http.body_limit_bytes;
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(too_large(limit));
        }
        let mut body = req.into_body();
        // The declared length is the client's word: reserved only up to 1 MiB.
        let mut kept = Vec::with_capacity(declared.unwrap_or(0).min(1 << 20));
        let mut read = 0usize;
        let mut counter = ItemCounter::default();
        let mut over = false;
        while let Some(frame) =
            std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
        {
            let frame = frame.map_err(|e| {
                ApiError::bad_request("invalid_body", format!("cannot read the body: {e}"))
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            read += data.len();
            if read > limit {
                return Err(too_large(limit));
            }
            if !over {
                over = counter.over(&data, MAX_TX_BATCH);
                kept.extend_from_slice(&data);
            }
            if over {
                kept = Vec::new();
            }
        }
        if over {
            return Err(too_many(MAX_TX_BATCH));
        }
        // Parsing up to the limit is CPU work: off the async workers.
        tokio::task::spawn_blocking(move || Self::parse(&kept, MAX_TX_BATCH))
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
    fn the_counter_counts_top_level_items_only() {
        let over = |chunks: &[&str], limit| {
            let mut c = ItemCounter::default();
            chunks.iter().any(|b| c.over(b.as_bytes(), limit))
        };
        assert!(!over(&["[1,2,3]"], 3));
        assert!(over(&["[1,2,", "3,4]"], 3), "split across chunks");
        assert!(
            !over(&[r#"[{"a":[1,2,3,4]},"x,y,z,\\"]"#], 2),
            "nested and quoted commas"
        );
        assert!(!over(&[r#"["\"",",",","]"#], 3), "escaped quotes");
        assert!(over(&[r#"["\"",",",",",4]"#], 3));
        assert!(
            !over(&[r#"  {"a":1,"b":2,"c":3,"d":4}"#], 2),
            "an object is one item"
        );
        assert!(over(&["\n [0,", "0,0,0,0"], 3), "counted before the end");
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
