//! Key files: a JSON document holding a secp256k1 secret key with its public key and
//! address (for the operator's convenience; only the secret is trusted on load).

use distpos_chain::Address;
use distpos_proofs::{codec, PublicKey, SecretKey};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The stored form of a key.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    /// The account address (EIP-55).
    pub address: Address,
    /// The compressed public key.
    pub public_key: PublicKey,
    /// The 32-byte secret, `0x` hex.
    pub secret_key: String,
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

/// Writes `key` to `path` (mode 0600 on Unix); refuses to overwrite.
pub fn write(path: &Path, key: &SecretKey) -> Result<(), KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.display().to_string(),
        source,
    };
    let doc = KeyFile {
        address: address(key),
        public_key: key.public_key(),
        secret_key: codec::to_hex(&key.to_bytes()),
    };
    let text = serde_json::to_string_pretty(&doc).map_err(|e| KeyFileError::Invalid {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
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

/// Reads a key file. On Unix a key file that other users can read or write (any
/// group or other permission bit) is refused, as ssh refuses such a private key.
pub fn read(path: &Path) -> Result<SecretKey, KeyFileError> {
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
