//! The operator's command-line client: builds, signs and submits transactions to a
//! node over HTTP (`distpos tx …`).

use anyhow::{bail, Context};
use distpos_chain::{Body, Transaction, UnsignedTx};
use distpos_proofs::{header::tapos_prefix, ChainId, Hash32, SecretKey};
use serde::Deserialize;
use std::time::Duration;

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

/// A node's HTTP API.
pub struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    /// A client for the node at `base`.
    pub fn new(base: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_string(),
        })
    }

    /// GETs `path` and decodes the JSON answer.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = r.status();
        let text = r.text().await?;
        if !status.is_success() {
            bail!("GET {path}: {status}: {text}");
        }
        serde_json::from_str(&text).with_context(|| format!("GET {path}: unexpected response"))
    }

    /// Signs `body` with `key` (nonce, TaPoS and fee from the node) and submits it.
    pub async fn send(
        &self,
        key: &SecretKey,
        body: Body,
        fee: Option<u128>,
    ) -> anyhow::Result<Hash32> {
        let status: Status = self.get_json("/v1/status").await?;
        let address = crate::keyfile::address(key);
        let account: AccountInfo = self.get_json(&format!("/v1/accounts/{address}")).await?;
        let tx = UnsignedTx {
            chain_id: status.chain_id,
            nonce: account.next_nonce,
            fee: fee.unwrap_or(status.min_fee),
            ref_block_num: status.head.height as u16,
            ref_block_prefix: tapos_prefix(&status.head.id),
            expiration: crate::service::now_ms() + 10 * 60 * 1000,
            body,
        }
        .sign(key);
        self.submit(&tx).await
    }

    /// Submits a signed transaction.
    pub async fn submit(&self, tx: &Transaction) -> anyhow::Result<Hash32> {
        let r = self
            .http
            .post(format!("{}/v1/txs", self.base))
            .json(tx)
            .send()
            .await
            .context("POST /v1/txs")?;
        let status = r.status();
        let text = r.text().await?;
        if !status.is_success() {
            bail!("transaction refused ({status}): {text}");
        }
        #[derive(Deserialize)]
        struct Accepted {
            hash: Hash32,
        }
        Ok(serde_json::from_str::<Accepted>(&text)?.hash)
    }

    /// Polls until the transaction is included (or `timeout`); returns its status JSON.
    pub async fn wait(
        &self,
        hash: &Hash32,
        timeout: Duration,
    ) -> anyhow::Result<serde_json::Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let r = self
                .http
                .get(format!("{}/v1/txs/{hash}", self.base))
                .send()
                .await?;
            if r.status().is_success() {
                let v: serde_json::Value = r.json().await?;
                if v["status"] != "pending" {
                    return Ok(v);
                }
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("transaction {hash} not included within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
