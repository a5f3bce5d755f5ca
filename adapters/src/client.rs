//! A typed client of a node's `/v1` API, for the command line, the launcher, the
//! benchmarks and the tests: builds, signs and submits transactions (nonce, TaPoS
//! and the minimum fee come from the node) and reads answers.

use crate::AdapterError;
use distpos_chain::{Address, Body, Transaction, UnsignedTx};
use distpos_proofs::{header::tapos_prefix, ChainId, Hash32, SecretKey};
use serde::Deserialize;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Deserialize)]
struct Status {
    chain_id: ChainId,
    head: HeadRef,
    #[serde(with = "distpos_proofs::codec::dec_u128")]
    min_fee: u128,
}

#[derive(Deserialize)]
struct HeadRef {
    height: u64,
    id: Hash32,
}

#[derive(Deserialize)]
struct AccountInfo {
    next_nonce: u64,
}

/// How long a signed transaction stays valid.
const TX_LIFETIME_MS: u64 = 10 * 60 * 1000;

/// A node's HTTP API.
pub struct Client {
    http: reqwest::Client,
    base: String,
    /// The operator's bearer token, sent with every request when set.
    token: Option<String>,
}

impl Client {
    /// A client for the node at `base` (requests time out after 30 s).
    pub fn new(base: &str) -> Result<Self, AdapterError> {
        Self::with_timeout(base, Duration::from_secs(30))
    }

    /// A client for the node at `base` whose requests time out after `timeout`.
    pub fn with_timeout(base: &str, timeout: Duration) -> Result<Self, AdapterError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| AdapterError::Unreachable {
                endpoint: base.to_string(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_string(),
            token: None,
        })
    }

    /// This client, sending `token` as the operator's bearer token with every request
    /// (operator routes: the relay queue, route overrides).
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The node's base URL (without a trailing `/`).
    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    fn unreachable(&self, what: &str, e: reqwest::Error) -> AdapterError {
        AdapterError::Unreachable {
            endpoint: format!("{}{what}", self.base),
            reason: e.to_string(),
        }
    }

    /// The body of a successful answer, or the node's error.
    async fn body(&self, what: &str, r: reqwest::Response) -> Result<String, AdapterError> {
        let status = r.status();
        let text = r.text().await.map_err(|e| self.unreachable(what, e))?;
        if !status.is_success() {
            return Err(AdapterError::Status {
                endpoint: format!("{}{what}", self.base),
                status: status.as_u16(),
                body: text,
            });
        }
        Ok(text)
    }

    fn decode<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        text: &str,
    ) -> Result<T, AdapterError> {
        serde_json::from_str(text).map_err(|e| AdapterError::BadResponse {
            endpoint: format!("{}{what}", self.base),
            reason: e.to_string(),
        })
    }

    /// GETs `path` and decodes the JSON answer.
    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<T, AdapterError> {
        let r = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .map_err(|e| self.unreachable(path, e))?;
        let text = self.body(path, r).await?;
        self.decode(path, &text)
    }

    /// POSTs to `path` without a body (an action such as an operator's on a relay
    /// item) and decodes the JSON answer.
    pub async fn post_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<T, AdapterError> {
        let r = self
            .request(reqwest::Method::POST, path)
            .send()
            .await
            .map_err(|e| self.unreachable(path, e))?;
        let text = self.body(path, r).await?;
        self.decode(path, &text)
    }

    /// POSTs `body` as JSON to `path` and decodes the JSON answer.
    pub async fn post_body<B: serde::Serialize + ?Sized, T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, AdapterError> {
        let r = self
            .request(reqwest::Method::POST, path)
            .json(body)
            .send()
            .await
            .map_err(|e| self.unreachable(path, e))?;
        let text = self.body(path, r).await?;
        self.decode(path, &text)
    }

    /// Signs `body` with `key` (nonce, TaPoS and fee from the node) and submits it.
    pub async fn send(
        &self,
        key: &SecretKey,
        body: Body,
        fee: Option<u128>,
    ) -> Result<Hash32, AdapterError> {
        let status: Status = self.get_json("/v1/status").await?;
        let address =
            Address::from_public_key(&key.public_key()).map_err(|e| AdapterError::BadResponse {
                endpoint: self.base.clone(),
                reason: format!("key: {e}"),
            })?;
        let account: AccountInfo = self.get_json(&format!("/v1/accounts/{address}")).await?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let tx = UnsignedTx {
            chain_id: status.chain_id,
            nonce: account.next_nonce,
            fee: fee.unwrap_or(status.min_fee),
            ref_block_num: status.head.height as u16,
            ref_block_prefix: tapos_prefix(&status.head.id),
            expiration: now + TX_LIFETIME_MS,
            body,
        }
        .sign(key);
        self.submit(&tx).await
    }

    /// Submits a signed transaction.
    pub async fn submit(&self, tx: &Transaction) -> Result<Hash32, AdapterError> {
        const PATH: &str = "/v1/txs";
        let r = self
            .request(reqwest::Method::POST, PATH)
            .json(tx)
            .send()
            .await
            .map_err(|e| self.unreachable(PATH, e))?;
        let text = self.body(PATH, r).await?;
        #[derive(Deserialize)]
        struct Accepted {
            hash: Hash32,
        }
        Ok(self.decode::<Accepted>(PATH, &text)?.hash)
    }

    /// Polls until the transaction is included (or `timeout`); returns its status JSON.
    pub async fn wait(
        &self,
        hash: &Hash32,
        timeout: Duration,
    ) -> Result<serde_json::Value, AdapterError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let path = format!("/v1/txs/{hash}");
        loop {
            if let Ok(v) = self.get_json::<serde_json::Value>(&path).await {
                if v["status"] != "pending" {
                    return Ok(v);
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(AdapterError::TimedOut(format!(
                    "transaction {hash} not included within {timeout:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
