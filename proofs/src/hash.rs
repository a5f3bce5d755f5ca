//! 32-byte hashes and the domain-separated SHA-256 that every commitment uses.

use sha2::{Digest, Sha256};

crate::fixed_bytes!(
    /// A SHA-256 digest: block ids, transaction hashes, Merkle roots, state digests.
    Hash32,
    32
);

impl Hash32 {
    /// The all-zero hash, used where "none yet" must be encoded (e.g. a first reveal).
    pub const ZERO: Hash32 = Hash32([0u8; 32]);

    /// True when every byte is zero.
    pub fn is_zero(&self) -> bool {
        self.0 == [0u8; 32]
    }
}

/// `sha256(domain ‖ part₀ ‖ part₁ ‖ …)`. Every hash in the protocol names its domain
/// (e.g. `b"DISTPOS/TX/v1"`) so that a value of one kind can never be passed off as
/// another.
pub fn hash_domain(domain: &[u8], parts: &[&[u8]]) -> Hash32 {
    let mut h = Sha256::new();
    h.update(domain);
    for p in parts {
        h.update(p);
    }
    Hash32(h.finalize().into())
}

/// Plain `sha256(data)`, for the places the protocol defines it so (commit/reveal).
pub fn sha256(data: &[u8]) -> Hash32 {
    Hash32(Sha256::digest(data).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_changes_the_hash() {
        assert_ne!(hash_domain(b"A", &[b"x"]), hash_domain(b"B", &[b"x"]));
        assert_eq!(
            hash_domain(b"A", &[b"x", b"y"]),
            hash_domain(b"Ax", &[b"y"])
        );
    }

    #[test]
    fn hex_round_trip() {
        let h = sha256(b"abc");
        assert_eq!(
            h.to_string(),
            "0xba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(h.to_string().parse::<Hash32>(), Ok(h));
        assert!("ba7816".parse::<Hash32>().is_err());
        assert!("0xba".parse::<Hash32>().is_err());
    }
}
