//! Key files. Two forms are read:
//! - an Ethereum V3 keystore ([`keystore`]): the secret encrypted under a passphrase,
//!   what `distpos keys new` and `keys import` write;
//! - a plaintext JSON document with the secret, its public key and address (only the
//!   secret is trusted on load), what dev chains, testnets and the demo write, marked
//!   as such; loading one that is not marked logs a warning.
//!
//! A keystore's passphrase comes from `DISTPOS_KEY_PASSPHRASE_FILE` (a file whose first
//! line is the passphrase, e.g. a systemd credential) or `DISTPOS_KEY_PASSPHRASE`.

pub mod keystore;

use distpos_chain::Address;
use distpos_proofs::{codec, PublicKey, SecretKey};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The note plaintext key files written by dev chains, testnets and the demo carry.
pub const DEV_NOTE: &str = "unencrypted key for a dev chain or testnet: not for real value";

/// The stored form of a plaintext key.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    /// The account address (EIP-55).
    pub address: Address,
    /// The compressed public key.
    pub public_key: PublicKey,
    /// The 32-byte secret, `0x` hex.
    pub secret_key: String,
    /// Why it is not encrypted ([`DEV_NOTE`] for dev keys); none in older files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The environment variable naming a file that holds a keystore's passphrase.
pub const PASSPHRASE_FILE_ENV: &str = "DISTPOS_KEY_PASSPHRASE_FILE";
/// The environment variable holding a keystore's passphrase.
pub const PASSPHRASE_ENV: &str = "DISTPOS_KEY_PASSPHRASE";

/// The passphrase from the environment ([`PASSPHRASE_FILE_ENV`] first), if set.
pub fn passphrase_from_env() -> Result<Option<String>, KeyFileError> {
    if let Some(path) = std::env::var_os(PASSPHRASE_FILE_ENV) {
        return passphrase_from_file(Path::new(&path)).map(Some);
    }
    Ok(std::env::var(PASSPHRASE_ENV).ok())
}

/// The passphrase in a file: its first line, without the line break.
pub fn passphrase_from_file(path: &Path) -> Result<String, KeyFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        return Err(KeyFileError::Invalid {
            path: path.display().to_string(),
            message: "the passphrase file is empty".into(),
        });
    }
    Ok(line.to_string())
}

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// I/O.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// Malformed content.
    #[error("key file {path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// No randomness available.
    #[error("cannot get randomness from the OS: {0}")]
    Random(String),
}

/// A fresh random key.
pub fn generate() -> Result<SecretKey, KeyFileError> {
    loop {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| KeyFileError::Random(e.to_string()))?;
        if let Some(k) = SecretKey::from_bytes(&bytes) {
            return Ok(k);
        }
    }
}

/// The account address of a key.
pub fn address(key: &SecretKey) -> Address {
    // A SecretKey's public key is always a valid compressed point.
    Address::from_public_key(&key.public_key()).unwrap_or(Address::ZERO)
}

/// Writes `key` to `path` unencrypted, marked as a dev key ([`DEV_NOTE`]; mode 0600
/// on Unix): for dev chains, testnets and the demo. Refuses to overwrite.
pub fn write(path: &Path, key: &SecretKey) -> Result<(), KeyFileError> {
    let doc = KeyFile {
        address: address(key),
        public_key: key.public_key(),
        secret_key: codec::to_hex(&key.to_bytes()),
        note: Some(DEV_NOTE.into()),
    };
    let text = serde_json::to_string_pretty(&doc).map_err(|e| KeyFileError::Invalid {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    create_private(path, &text)
}

/// Writes `key` to `path` as a V3 keystore encrypted under `passphrase` (scrypt at
/// `params`, mode 0600); refuses to overwrite.
pub fn write_keystore(
    path: &Path,
    key: &SecretKey,
    passphrase: &str,
    params: keystore::ScryptParams,
) -> Result<(), KeyFileError> {
    if passphrase.is_empty() {
        return Err(KeyFileError::Invalid {
            path: path.display().to_string(),
            message: "an empty passphrase does not protect a keystore".into(),
        });
    }
    let text = keystore::encrypt(
        &key.to_bytes(),
        &address(key).to_string(),
        passphrase,
        params,
        &mut |buf| getrandom::fill(buf).map_err(|e| e.to_string()),
    )
    .map_err(|message| KeyFileError::Invalid {
        path: path.display().to_string(),
        message,
    })?;
    create_private(path, &text)
}

/// Creates `path` (and its folder) with `text`, readable by its owner only; refuses
/// to overwrite.
fn create_private(path: &Path, text: &str) -> Result<(), KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    use std::io::Write;
    let mut f = opts.open(path).map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.write_all(b"\n").map_err(io)
}

/// Reads a key file, a keystore's passphrase coming from the environment
/// ([`passphrase_from_env`]). See [`read_with`].
pub fn read(path: &Path) -> Result<SecretKey, KeyFileError> {
    read_with(path, None)
}

/// Whether the file at `path` is an encrypted keystore.
pub fn is_keystore_file(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| keystore::is_keystore(&t))
}

/// Reads a key file: a V3 keystore (opened with `passphrase`, or the environment's if
/// `None`) or a plaintext key (a warning is logged unless it is marked as a dev key).
/// On Unix a key file that other users can read or write (any group or other
/// permission bit) is refused, as ssh refuses such a private key.
pub fn read_with(path: &Path, passphrase: Option<&str>) -> Result<SecretKey, KeyFileError> {
    let p = path.display().to_string();
    if let Some(mode) = shared_mode(path) {
        return Err(KeyFileError::Invalid {
            path: p.clone(),
            message: format!(
                "other users can read or change it (mode {mode:04o}); run: chmod 600 {p}"
            ),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Io {
        path: p.clone(),
        source,
    })?;
    if keystore::is_keystore(&text) {
        let from_env;
        let pass = match passphrase {
            Some(p) => p,
            None => {
                from_env = passphrase_from_env()?.ok_or_else(|| KeyFileError::Invalid {
                    path: p.clone(),
                    message: format!(
                        "an encrypted keystore: give its passphrase in {PASSPHRASE_FILE_ENV} \
                         (a file) or {PASSPHRASE_ENV}"
                    ),
                })?;
                from_env.as_str()
            }
        };
        let (secret, claimed) =
            keystore::decrypt(&text, pass).map_err(|e| KeyFileError::Invalid {
                path: p.clone(),
                message: e.to_string(),
            })?;
        let key = SecretKey::from_bytes(&secret).ok_or_else(|| KeyFileError::Invalid {
            path: p.clone(),
            message: "the keystore holds no valid secp256k1 key".into(),
        })?;
        let ours = address(&key).to_string().to_ascii_lowercase();
        if claimed.is_some_and(|c| !c.is_empty() && ours.trim_start_matches("0x") != c) {
            return Err(KeyFileError::Invalid {
                path: p,
                message: "the keystore's address is not its key's".into(),
            });
        }
        return Ok(key);
    }
    let doc: KeyFile = serde_json::from_str(&text).map_err(|e| KeyFileError::Invalid {
        path: p.clone(),
        message: e.to_string(),
    })?;
    let bytes = codec::parse_hex(&doc.secret_key).map_err(|m| KeyFileError::Invalid {
        path: p.clone(),
        message: m,
    })?;
    let arr: [u8; 32] = bytes.try_into().map_err(|_| KeyFileError::Invalid {
        path: p.clone(),
        message: "secret_key must be 32 bytes".into(),
    })?;
    let key = SecretKey::from_bytes(&arr).ok_or_else(|| KeyFileError::Invalid {
        path: p.clone(),
        message: "secret_key is not a valid key".into(),
    })?;
    if key.public_key() != doc.public_key || address(&key) != doc.address {
        return Err(KeyFileError::Invalid {
            path: p,
            message: "public_key/address do not match secret_key".into(),
        });
    }
    if doc.note.is_none() {
        tracing::warn!(path = %p, "key file is not encrypted: fine for a dev chain; for real value \
            convert it to a keystore (distpos keys import --plain FILE --out NEW)");
    }
    Ok(key)
}

/// The file's permission bits when group or others have any access to it (Unix);
/// `None` when only its owner does, or where modes do not apply.
pub fn shared_mode(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Writes `text` to `path` readable by its owner only (mode 0600 on Unix), replacing
/// what was there: for files that hold a secret, such as a config with the operator
/// token.
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    use std::io::Write;
    let mut f = opts.open(path)?;
    #[cfg(unix)]
    {
        // An existing file keeps its mode on open: narrow it too.
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.json");
        write(&path, &generate().unwrap()).unwrap();
        assert!(read(&path).is_ok());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read(&path).unwrap_err().to_string();
        assert!(e.contains("chmod 600") && e.contains("0644"), "{e}");
        // A secret written with `write_private` is the owner's only, even over a
        // file that was readable before.
        let cfg = dir.path().join("node.toml");
        std::fs::write(&cfg, "old").unwrap();
        std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&cfg, "api_token = \"x\"").unwrap();
        assert_eq!(shared_mode(&cfg), None);
        assert_eq!(std::fs::read_to_string(&cfg).unwrap(), "api_token = \"x\"");
    }

    #[test]
    fn round_trip_and_refuse_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.json");
        let key = generate().unwrap();
        write(&path, &key).unwrap();
        assert_eq!(read(&path).unwrap().public_key(), key.public_key());
        assert!(write(&path, &key).is_err());
    }

    #[test]
    fn mismatched_fields_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.json");
        write(&path, &SecretKey::from_seed(b"a")).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let other = SecretKey::from_seed(b"b");
        let forged = text.replace(
            &codec::to_hex(&SecretKey::from_seed(b"a").to_bytes()),
            &codec::to_hex(&other.to_bytes()),
        );
        std::fs::write(&path, forged).unwrap();
        assert!(read(&path)
            .unwrap_err()
            .to_string()
            .contains("do not match"));
    }
}
