//! secp256k1 keys and ECDSA signatures (k256). Every signature in the protocol is over a
//! domain-separated SHA-256 hash that includes the chain id, so a signature made for one
//! chain or one kind of object is worthless for any other. Only low-S signatures are
//! valid: a high-S twin of a valid signature is rejected, so one signer has exactly one
//! valid signature per message.

use crate::hash::Hash32;
use k256::ecdsa::{signature::hazmat::PrehashVerifier, SigningKey, VerifyingKey};

crate::fixed_bytes!(
    /// A compressed (33-byte, SEC1) secp256k1 public key.
    PublicKey,
    33
);

crate::fixed_bytes!(
    /// An ECDSA signature, `r ‖ s`, 64 bytes, low-S.
    Signature,
    64
);

/// Why a signature does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The public key is not a valid compressed secp256k1 point.
    #[error("public key is not a valid compressed secp256k1 point")]
    BadPublicKey,
    /// `r` or `s` is zero or not below the group order.
    #[error("signature is malformed (r or s out of range)")]
    Malformed,
    /// `s` is in the upper half of the group order (a malleated twin).
    #[error("signature has a high S value (only low-S signatures are valid)")]
    HighS,
    /// The signature is well-formed but not by this key over this message.
    #[error("signature does not match the key and message")]
    Mismatch,
}

impl PublicKey {
    /// Parses the point, checking it is on the curve.
    pub fn verifying_key(&self) -> Result<VerifyingKey, SignatureError> {
        // Only the compressed tags: k256 also parses other 33-byte forms, which would
        // give one point two byte strings (two producer identities for one key).
        if !matches!(self.0[0], 0x02 | 0x03) {
            return Err(SignatureError::BadPublicKey);
        }
        VerifyingKey::from_sec1_bytes(&self.0).map_err(|_| SignatureError::BadPublicKey)
    }

    /// The 64-byte uncompressed point without the `0x04` prefix (what Ethereum-style
    /// addresses hash).
    pub fn uncompressed_xy(&self) -> Result<[u8; 64], SignatureError> {
        let vk = self.verifying_key()?;
        let point = vk.to_encoded_point(false);
        let bytes = point.as_bytes();
        let mut out = [0u8; 64];
        // An uncompressed SEC1 point is 0x04 ‖ x ‖ y: 65 bytes.
        if bytes.len() != 65 {
            return Err(SignatureError::BadPublicKey);
        }
        out.copy_from_slice(&bytes[1..]);
        Ok(out)
    }
}

/// Verifies `signature` by `key` over the prehashed message `hash`. Rejects high-S.
pub fn verify(key: &PublicKey, hash: &Hash32, signature: &Signature) -> Result<(), SignatureError> {
    let sig =
        k256::ecdsa::Signature::from_slice(&signature.0).map_err(|_| SignatureError::Malformed)?;
    if sig.normalize_s().is_some() {
        // normalize_s returns Some only when s was high.
        return Err(SignatureError::HighS);
    }
    let vk = key.verifying_key()?;
    vk.verify_prehash(&hash.0, &sig)
        .map_err(|_| SignatureError::Mismatch)
}

/// Verifies like [`verify`] and also returns the key's uncompressed point (x ‖ y), so
/// a caller deriving an address from the key decompresses it only once.
pub fn verify_and_uncompress(
    key: &PublicKey,
    hash: &Hash32,
    signature: &Signature,
) -> Result<[u8; 64], SignatureError> {
    let sig =
        k256::ecdsa::Signature::from_slice(&signature.0).map_err(|_| SignatureError::Malformed)?;
    if sig.normalize_s().is_some() {
        return Err(SignatureError::HighS);
    }
    let vk = key.verifying_key()?;
    vk.verify_prehash(&hash.0, &sig)
        .map_err(|_| SignatureError::Mismatch)?;
    let point = vk.to_encoded_point(false);
    let mut out = [0u8; 64];
    let bytes = point.as_bytes();
    if bytes.len() != 65 {
        return Err(SignatureError::BadPublicKey);
    }
    out.copy_from_slice(&bytes[1..]);
    Ok(out)
}

/// A private signing key. Holds no I/O: where the 32 secret bytes come from (a key file,
/// the OS RNG) is the caller's business.
#[derive(Clone)]
pub struct SecretKey(SigningKey);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({})", self.public_key())
    }
}

impl SecretKey {
    /// Builds a key from 32 secret bytes; `None` if they are zero or not below the group
    /// order.
    pub fn from_bytes(bytes: &[u8; 32]) -> Option<Self> {
        SigningKey::from_bytes(bytes.into()).ok().map(Self)
    }

    /// The 32 secret bytes (for writing a key file).
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes().into()
    }

    /// A deterministic key for tests and dev networks: derived from `seed` by hashing,
    /// retried until valid. Never use for real funds.
    pub fn from_seed(seed: &[u8]) -> Self {
        let mut h = crate::hash::hash_domain(b"DISTPOS/DEVKEY/v1", &[seed]);
        loop {
            if let Some(k) = Self::from_bytes(&h.0) {
                return k;
            }
            h = crate::hash::sha256(&h.0);
        }
    }

    /// The compressed public key.
    pub fn public_key(&self) -> PublicKey {
        let point = self.0.verifying_key().to_encoded_point(true);
        let mut out = [0u8; 33];
        out.copy_from_slice(point.as_bytes());
        PublicKey(out)
    }

    /// Signs a prehashed message (RFC 6979 deterministic nonce; always low-S).
    pub fn sign(&self, hash: &Hash32) -> Signature {
        // Signing a 32-byte prehash with a valid key cannot fail in k256; should it ever,
        // the zero signature produced here simply fails verification downstream.
        let sig: k256::ecdsa::Signature = match self.0.sign_prehash_recoverable(&hash.0) {
            Ok((sig, _)) => sig,
            Err(_) => return Signature([0u8; 64]),
        };
        let sig = sig.normalize_s().unwrap_or(sig);
        let mut out = [0u8; 64];
        out.copy_from_slice(&sig.to_bytes());
        Signature(out)
    }
}

/// Returns the high-S twin of a signature (same r, s' = n − s). For tests of malleability.
pub fn high_s_twin(sig: &Signature) -> Option<Signature> {
    use k256::elliptic_curve::ops::Neg;
    let parsed = k256::ecdsa::Signature::from_slice(&sig.0).ok()?;
    let (r, s) = parsed.split_scalars();
    let twin = k256::ecdsa::Signature::from_scalars(r, s.as_ref().neg()).ok()?;
    let mut out = [0u8; 64];
    out.copy_from_slice(&twin.to_bytes());
    Some(Signature(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::sha256;

    #[test]
    fn sign_and_verify() {
        let k = SecretKey::from_seed(b"alice");
        let msg = sha256(b"hello");
        let sig = k.sign(&msg);
        assert_eq!(verify(&k.public_key(), &msg, &sig), Ok(()));
        assert_eq!(
            verify(&k.public_key(), &sha256(b"other"), &sig),
            Err(SignatureError::Mismatch)
        );
        let other = SecretKey::from_seed(b"bob").public_key();
        assert_eq!(verify(&other, &msg, &sig), Err(SignatureError::Mismatch));
    }

    #[test]
    fn high_s_twin_is_rejected() {
        let k = SecretKey::from_seed(b"alice");
        let msg = sha256(b"hello");
        let sig = k.sign(&msg);
        let twin = high_s_twin(&sig).unwrap();
        assert_ne!(twin, sig);
        assert_eq!(
            verify(&k.public_key(), &msg, &twin),
            Err(SignatureError::HighS)
        );
    }

    #[test]
    fn signatures_are_always_low_s() {
        let k = SecretKey::from_seed(b"carol");
        for i in 0u32..64 {
            let msg = sha256(&i.to_le_bytes());
            assert_eq!(verify(&k.public_key(), &msg, &k.sign(&msg)), Ok(()));
        }
    }

    #[test]
    fn malformed_inputs_are_errors() {
        let k = SecretKey::from_seed(b"alice");
        let msg = sha256(b"hello");
        assert_eq!(
            verify(&k.public_key(), &msg, &Signature([0u8; 64])),
            Err(SignatureError::Malformed)
        );
        let mut bad_key = k.public_key();
        bad_key.0[0] = 0x05;
        assert_eq!(
            verify(&bad_key, &msg, &k.sign(&msg)),
            Err(SignatureError::BadPublicKey)
        );
        assert!(SecretKey::from_bytes(&[0u8; 32]).is_none());
        assert!(SecretKey::from_bytes(&[0xffu8; 32]).is_none());
    }

    #[test]
    fn secret_key_round_trip() {
        let k = SecretKey::from_seed(b"x");
        let again = SecretKey::from_bytes(&k.to_bytes()).unwrap();
        assert_eq!(again.public_key(), k.public_key());
    }
}
