//! Account addresses and qualified (cross-chain) addresses (DESIGN §2).
//!
//! An account [`Address`] is 20 bytes: the last 20 bytes of keccak256 over the
//! uncompressed secp256k1 public key without its `0x04` prefix, exactly as in Ethereum.
//! A [`QualifiedAddress`] names an account on a particular chain and is written
//! `<chain-hex>x<40 hex>`, e.g. `e2e4x63ea7F78107dF4C6fd8b17e7b05b1b3D41a5B1Ab`: the
//! chain id takes the place of the `0` in `0x`. So the familiar `0x…` form is the
//! *local* form — chain 0 means "this chain". The chain part is 1–8 lowercase hex
//! digits without leading zeros (only `0` itself may start with `0`).
//!
//! The 40 hex digits use the EIP-55 mixed-case checksum, so that keys and addresses
//! from Ethereum tooling (wallets, hardware signers, block explorers) work unchanged
//! and a mistyped letter is caught before funds are sent. On input the hex part may be
//! all lowercase, all uppercase, or mixed case with a valid checksum; a mixed-case part
//! whose checksum does not match is rejected. Output is always EIP-55. Every malformed
//! input is a typed [`AddressError`], never a panic, whatever Unicode it contains.

use distpos_proofs::codec::truncate;
use distpos_proofs::{ChainId, ChainIdError, PublicKey};
use sha3::{Digest, Keccak256};
use std::{fmt, str::FromStr};

/// Number of hex digits after the `x` separator.
const HEX_DIGITS: usize = 40;

/// Why a text is not an address, or a public key has no address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// The text is empty.
    #[error("address is empty")]
    Empty,
    /// The text contains whitespace (often a stray space or line break from copy-paste).
    #[error("address {0:?} contains whitespace; remove any spaces or line breaks around it")]
    Whitespace(String),
    /// There is no lowercase `x` between the chain part and the 40 hex digits.
    #[error(
        "address {0:?} has no 'x' separator; expected <chain-hex>x<40 hex digits>, \
         e.g. 0x… for a local address"
    )]
    MissingSeparator(String),
    /// The separator is an uppercase `X` (as in `0X…`); only a lowercase `x` is accepted.
    #[error("address {0:?} uses an uppercase 'X' separator; write a lowercase 'x' (e.g. 0x…)")]
    UppercaseSeparator(String),
    /// The part before the `x` is not a valid chain id.
    #[error("chain part of the address is not a valid chain id: {0}")]
    BadChainId(#[from] ChainIdError),
    /// The chain part contains uppercase hex digits; the text form is lowercase.
    #[error("chain part {0:?} of the address must be lowercase hex (write {lower:?})", lower = .0.to_lowercase())]
    UppercaseChain(String),
    /// The part after the `x` does not have exactly 40 hex digits.
    #[error("address has {got} hex digit(s) after the 'x'; exactly 40 are required")]
    WrongLength {
        /// How many hex digits were found after the `x`.
        got: usize,
    },
    /// A character after the `x` is not a hex digit.
    #[error("address contains a non-hex character {0:?} after the 'x'")]
    NotHex(char),
    /// The hex part is mixed case but does not match its EIP-55 checksum.
    #[error("address checksum does not match (EIP-55) in {0:?}: check the address for typos")]
    BadChecksum(String),
    /// A qualified address for another chain was given where a local `0x…` address is
    /// required.
    #[error(
        "expected a local address (0x…), got one qualified with chain {0}; \
         use the 0x… form of the address here"
    )]
    NotLocal(ChainId),
    /// The public key is not a valid secp256k1 point, so it has no address.
    #[error("public key is not a valid secp256k1 point; cannot derive an address from it")]
    BadPublicKey,
}

/// A 20-byte account address (Ethereum-style). Reads and writes as the EIP-55 local
/// form `0x…` in text and JSON, and as exactly 20 raw bytes in the binary encoding.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address(pub [u8; 20]);

impl Address {
    /// Number of bytes.
    pub const LEN: usize = 20;

    /// The all-zero address.
    pub const ZERO: Address = Address([0u8; 20]);

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// Builds from a slice of exactly 20 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 20]>::try_from(bytes).ok().map(Self)
    }

    /// The address of a public key: the last 20 bytes of keccak256 of the uncompressed
    /// point without its `0x04` prefix. Only the compressed SEC1 encodings (tag `0x02`
    /// or `0x03`) are accepted, so one point has exactly one key encoding.
    pub fn from_public_key(key: &PublicKey) -> Result<Address, AddressError> {
        // k256 also decodes the SEC1 "compact" tag 0x05; a PublicKey is compressed only.
        if !matches!(key.0[0], 0x02 | 0x03) {
            return Err(AddressError::BadPublicKey);
        }
        let xy = key
            .uncompressed_xy()
            .map_err(|_| AddressError::BadPublicKey)?;
        Ok(Self::from_uncompressed_xy(&xy))
    }

    /// The address of an uncompressed public key given as x ‖ y (64 bytes, no `0x04`).
    pub fn from_uncompressed_xy(xy: &[u8; 64]) -> Address {
        let hash = Keccak256::digest(xy);
        let mut out = [0u8; 20];
        out.copy_from_slice(&hash[12..]);
        Address(out)
    }

    /// `0x` followed by the 40 hex digits in EIP-55 mixed-case checksum form.
    pub fn to_checksum_hex(&self) -> String {
        format!("0x{}", eip55_body(&self.0))
    }
}

/// The 40 hex digits of `bytes` in EIP-55 form: a letter is uppercase iff the matching
/// nibble of keccak256(lowercase hex ASCII) is at least 8.
fn eip55_body(bytes: &[u8; 20]) -> String {
    let lower = hex::encode(bytes);
    let hash = Keccak256::digest(lower.as_bytes());
    lower
        .chars()
        .enumerate()
        .map(|(i, c)| {
            // i < 40, so i / 2 < 20 < 32: always within the hash.
            let byte = hash[i / 2];
            let nibble = if i % 2 == 0 { byte >> 4 } else { byte & 0x0f };
            if nibble >= 8 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_checksum_hex())
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({})", self.to_checksum_hex())
    }
}

impl FromStr for Address {
    type Err = AddressError;

    /// Parses the local form `0x…` only; a qualified address for any other chain is
    /// [`AddressError::NotLocal`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let q = QualifiedAddress::parse(s)?;
        if q.chain.is_local() {
            Ok(q.address)
        } else {
            Err(AddressError::NotLocal(q.chain))
        }
    }
}

impl serde::Serialize for Address {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_checksum_hex())
        } else {
            use serde::ser::SerializeTuple;
            let mut t = s.serialize_tuple(Self::LEN)?;
            for b in &self.0 {
                t.serialize_element(b)?;
            }
            t.end()
        }
    }
}

impl<'de> serde::Deserialize<'de> for Address {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = <String as serde::Deserialize>::deserialize(d)?;
            s.parse().map_err(serde::de::Error::custom)
        } else {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = Address;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    write!(f, "{} bytes", Address::LEN)
                }
                fn visit_seq<A: serde::de::SeqAccess<'de>>(
                    self,
                    mut seq: A,
                ) -> Result<Address, A::Error> {
                    let mut out = [0u8; 20];
                    for (i, slot) in out.iter_mut().enumerate() {
                        *slot = seq
                            .next_element()?
                            .ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
                    }
                    Ok(Address(out))
                }
            }
            d.deserialize_tuple(Self::LEN, V)
        }
    }
}

/// An account on a particular chain: `<chain-hex>x<EIP-55 40 hex>`. Chain 0 is the
/// local chain and prints as the familiar `0x…`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct QualifiedAddress {
    /// The chain the account lives on; [`ChainId::LOCAL`] (0) means "this chain".
    pub chain: ChainId,
    /// The account on that chain.
    pub address: Address,
}

impl QualifiedAddress {
    /// An address on the given chain.
    pub fn new(chain: ChainId, address: Address) -> Self {
        Self { chain, address }
    }

    /// An address on the local chain (chain 0, written `0x…`).
    pub fn local(address: Address) -> Self {
        Self::new(ChainId::LOCAL, address)
    }

    /// True when this address is on `our_chain`: its chain is 0 ("this chain") or
    /// equals `our_chain`.
    pub fn is_local_to(self, our_chain: ChainId) -> bool {
        self.chain.is_local() || self.chain == our_chain
    }

    /// Parses `<chain-hex>x<40 hex>` strictly (see the module documentation).
    pub fn parse(s: &str) -> Result<Self, AddressError> {
        if s.is_empty() {
            return Err(AddressError::Empty);
        }
        if s.chars().any(char::is_whitespace) {
            return Err(AddressError::Whitespace(truncate(s)));
        }
        let Some((chain_part, hex_part)) = s.split_once('x') else {
            return Err(if s.contains('X') {
                AddressError::UppercaseSeparator(truncate(s))
            } else {
                AddressError::MissingSeparator(truncate(s))
            });
        };

        let chain = ChainId::parse(chain_part)?;
        if chain_part.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(AddressError::UppercaseChain(truncate(chain_part)));
        }

        if let Some(c) = hex_part.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err(AddressError::NotHex(c));
        }
        // Every character is now an ASCII hex digit, so bytes == characters.
        if hex_part.len() != HEX_DIGITS {
            return Err(AddressError::WrongLength {
                got: hex_part.len(),
            });
        }
        let mut bytes = [0u8; 20];
        hex::decode_to_slice(hex_part, &mut bytes).map_err(|e| match e {
            hex::FromHexError::InvalidHexCharacter { c, .. } => AddressError::NotHex(c),
            _ => AddressError::WrongLength {
                got: hex_part.len(),
            },
        })?;

        let has_upper = hex_part.bytes().any(|b| b.is_ascii_uppercase());
        let has_lower = hex_part.bytes().any(|b| b.is_ascii_lowercase());
        if has_upper && has_lower && hex_part != eip55_body(&bytes) {
            return Err(AddressError::BadChecksum(truncate(s)));
        }
        Ok(Self::new(chain, Address(bytes)))
    }
}

impl fmt::Display for QualifiedAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.chain, eip55_body(&self.address.0))
    }
}

impl FromStr for QualifiedAddress {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for QualifiedAddress {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            serde::Serialize::serialize(&(self.chain, self.address), s)
        }
    }
}

impl<'de> serde::Deserialize<'de> for QualifiedAddress {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = <String as serde::Deserialize>::deserialize(d)?;
            Self::parse(&s).map_err(serde::de::Error::custom)
        } else {
            let (chain, address) = <(ChainId, Address) as serde::Deserialize>::deserialize(d)?;
            Ok(Self::new(chain, address))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use distpos_proofs::codec::{decode_canonical, encode};
    use distpos_proofs::SecretKey;
    use proptest::prelude::*;

    /// The mixed-case vectors from the EIP-55 specification.
    const EIP55_MIXED: [&str; 4] = [
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    ];

    /// The single-case vectors from the EIP-55 specification (their checksum happens to
    /// make every letter the same case).
    const EIP55_SINGLE_CASE: [&str; 4] = [
        "0x52908400098527886E0F7030069857D2E4169EE7",
        "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
        "0xde709f2102306220921060314715629080e2fb77",
        "0x27b1fdb04752bbc536007a920d24acb045561c26",
    ];

    /// 40 lowercase hex digits of a sample account.
    const SAMPLE: &str = "63ea7f78107df4c6fd8b17e7b05b1b3d41a5b1ab";

    fn sample() -> Address {
        format!("0x{SAMPLE}").parse().unwrap()
    }

    #[test]
    fn eip55_spec_vectors_parse_in_every_case_and_display_exactly() {
        for v in EIP55_MIXED.iter().chain(EIP55_SINGLE_CASE.iter()) {
            let body = &v[2..];
            let from_checksum: Address = v.parse().unwrap();
            let from_lower: Address = format!("0x{}", body.to_lowercase()).parse().unwrap();
            let from_upper: Address = format!("0x{}", body.to_uppercase()).parse().unwrap();
            assert_eq!(from_lower, from_checksum, "{v}");
            assert_eq!(from_upper, from_checksum, "{v}");
            assert_eq!(from_checksum.to_string(), *v);
            assert_eq!(from_checksum.to_checksum_hex(), *v);
            assert_eq!(
                from_checksum.0.to_vec(),
                hex::decode(body.to_lowercase()).unwrap()
            );
            assert_eq!(format!("{from_checksum:?}"), format!("Address({v})"));
        }
    }

    #[test]
    fn flipping_the_case_of_any_letter_breaks_the_checksum() {
        for v in EIP55_MIXED {
            for (i, c) in v.char_indices().skip(2) {
                if !c.is_ascii_alphabetic() {
                    continue;
                }
                let flipped_char = if c.is_ascii_uppercase() {
                    c.to_ascii_lowercase()
                } else {
                    c.to_ascii_uppercase()
                };
                let mut flipped = v.to_string();
                flipped.replace_range(i..i + 1, &flipped_char.to_string());
                assert!(
                    matches!(
                        QualifiedAddress::parse(&flipped),
                        Err(AddressError::BadChecksum(_))
                    ),
                    "{flipped} accepted"
                );
                assert!(matches!(
                    flipped.parse::<Address>(),
                    Err(AddressError::BadChecksum(_))
                ));
            }
        }
    }

    #[test]
    fn derives_the_well_known_ethereum_address() {
        let secret: [u8; 32] =
            hex::decode("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
                .unwrap()
                .try_into()
                .unwrap();
        let key = SecretKey::from_bytes(&secret).unwrap();
        let address = Address::from_public_key(&key.public_key()).unwrap();
        assert_eq!(
            address.to_string(),
            "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"
        );
    }

    #[test]
    fn derivation_is_deterministic_and_rejects_bad_keys() {
        let a = SecretKey::from_seed(b"alice").public_key();
        let b = SecretKey::from_seed(b"bob").public_key();
        assert_eq!(Address::from_public_key(&a), Address::from_public_key(&a));
        assert_ne!(Address::from_public_key(&a), Address::from_public_key(&b));
        let mut bad = a;
        bad.0[0] = 0x05;
        assert_eq!(
            Address::from_public_key(&bad),
            Err(AddressError::BadPublicKey)
        );
        assert_eq!(
            Address::from_public_key(&PublicKey([0u8; 33])),
            Err(AddressError::BadPublicKey)
        );
        // x = 2^256 - 1 is not a field element, so no point has it.
        let mut off_curve = [0xffu8; 33];
        off_curve[0] = 0x02;
        assert_eq!(
            Address::from_public_key(&PublicKey(off_curve)),
            Err(AddressError::BadPublicKey)
        );
        // Both compressed tags are accepted and give different points.
        let mut other_y = a;
        other_y.0[0] ^= 0x01;
        let (x, y) = (
            Address::from_public_key(&a).unwrap(),
            Address::from_public_key(&other_y).unwrap(),
        );
        assert_ne!(x, y);
    }

    #[test]
    fn qualified_address_round_trips() {
        let a = sample();
        let q = QualifiedAddress::new(ChainId(0xe2e4), a);
        let text = q.to_string();
        // The chain id replaces the 0 of 0x; the 40 digits are the EIP-55 form.
        assert_eq!(text, format!("e2e4x{}", &a.to_checksum_hex()[2..]));
        // The example of DESIGN §2 is this very address, correctly checksummed.
        assert_eq!(text, "e2e4x63ea7F78107dF4C6fd8b17e7b05b1b3D41a5B1Ab");
        assert_eq!(QualifiedAddress::parse(&text), Ok(q));
        assert_eq!(text.parse::<QualifiedAddress>(), Ok(q));
        assert_eq!(QualifiedAddress::parse(&format!("e2e4x{SAMPLE}")), Ok(q));
        assert_eq!(
            QualifiedAddress::parse(&format!("e2e4x{}", SAMPLE.to_uppercase())),
            Ok(q)
        );

        let max = QualifiedAddress::new(ChainId(u32::MAX), a);
        assert!(max.to_string().starts_with("ffffffffx"));
        assert_eq!(QualifiedAddress::parse(&max.to_string()), Ok(max));

        // A local-only parse refuses another chain's address.
        assert_eq!(
            text.parse::<Address>(),
            Err(AddressError::NotLocal(ChainId(0xe2e4)))
        );
    }

    #[test]
    fn chain_zero_is_the_local_0x_form() {
        let a = sample();
        let local = QualifiedAddress::local(a);
        assert_eq!(local, QualifiedAddress::new(ChainId::LOCAL, a));
        assert_eq!(local.to_string(), a.to_string());
        assert!(local.to_string().starts_with("0x"));
        assert_eq!(QualifiedAddress::parse(&a.to_string()), Ok(local));
        assert_eq!(Address::ZERO.to_string(), format!("0x{}", "0".repeat(40)));
    }

    #[test]
    fn is_local_to_accepts_chain_zero_and_our_chain_only() {
        let a = sample();
        let ours = ChainId(0xe2e4);
        assert!(QualifiedAddress::local(a).is_local_to(ours));
        assert!(QualifiedAddress::new(ours, a).is_local_to(ours));
        assert!(!QualifiedAddress::new(ChainId(0xe2e5), a).is_local_to(ours));
        assert!(!QualifiedAddress::new(ChainId(1), a).is_local_to(ours));
    }

    #[test]
    fn each_bad_input_gets_its_specific_error() {
        use AddressError as E;
        let good = &sample().to_checksum_hex()[2..];
        let parse = QualifiedAddress::parse;

        assert_eq!(
            parse(&format!("e2e4x{}", &SAMPLE[..39])),
            Err(E::WrongLength { got: 39 })
        );
        assert_eq!(
            parse(&format!("e2e4x{SAMPLE}a")),
            Err(E::WrongLength { got: 41 })
        );
        assert_eq!(parse("e2e4x"), Err(E::WrongLength { got: 0 }));

        // Swap the case of the first letter of a correctly checksummed address.
        let bad_sum = format!("e2e4x{}", good.replacen('F', "f", 1));
        assert!(matches!(parse(&bad_sum), Err(E::BadChecksum(_))));

        assert_eq!(
            parse(&format!("zz12x{good}")),
            Err(E::BadChainId(ChainIdError::NotHex('z')))
        );
        assert_eq!(
            parse(&format!("123456789x{good}")),
            Err(E::BadChainId(ChainIdError::TooLong(9)))
        );
        assert_eq!(
            parse(&format!("x{good}")),
            Err(E::BadChainId(ChainIdError::Empty))
        );
        assert_eq!(
            parse(&format!("0e2e4x{good}")),
            Err(E::BadChainId(ChainIdError::LeadingZero))
        );
        assert_eq!(
            parse(&format!("E2E4x{good}")),
            Err(E::UppercaseChain("E2E4".into()))
        );
        assert_eq!(
            parse(&format!("e2E4x{good}")),
            Err(E::UppercaseChain("e2E4".into()))
        );

        assert!(matches!(
            parse(&format!(" e2e4x{good}")),
            Err(E::Whitespace(_))
        ));
        assert!(matches!(
            parse(&format!("e2e4x{good} ")),
            Err(E::Whitespace(_))
        ));
        assert!(matches!(
            parse(&format!("e2e4x{good}\n")),
            Err(E::Whitespace(_))
        ));
        assert!(matches!(
            parse(&format!("0x{good}\t")),
            Err(E::Whitespace(_))
        ));
        assert!(matches!(parse("e2e4x 63ea"), Err(E::Whitespace(_))));

        assert_eq!(parse(""), Err(E::Empty));
        assert!(matches!(
            parse(&format!("e2e4{good}")),
            Err(E::MissingSeparator(_))
        ));
        assert!(matches!(
            parse(&format!("0X{good}")),
            Err(E::UppercaseSeparator(_))
        ));
        assert!(matches!(
            parse(&format!("0X{SAMPLE}")),
            Err(E::UppercaseSeparator(_))
        ));

        assert_eq!(parse(&format!("0x{}g", &SAMPLE[..39])), Err(E::NotHex('g')));
        assert_eq!(
            parse(&format!("0x0x{}", &SAMPLE[..38])),
            Err(E::NotHex('x'))
        );
        assert_eq!(parse("0x-1"), Err(E::NotHex('-')));

        // The local-only parser rejects the same inputs the same way.
        assert_eq!("".parse::<Address>(), Err(E::Empty));
        assert_eq!(
            format!("e2e4x{}", &SAMPLE[..39]).parse::<Address>(),
            Err(E::WrongLength { got: 39 })
        );
    }

    #[test]
    fn non_ascii_input_is_an_error_not_a_panic() {
        use AddressError as E;
        let parse = QualifiedAddress::parse;
        // "é" is two bytes: 39 hex digits + é is 41 bytes but must not be sliced.
        assert_eq!(parse(&format!("0x{}é", &SAMPLE[..39])), Err(E::NotHex('é')));
        assert_eq!(parse(&format!("0xé{}", &SAMPLE[..39])), Err(E::NotHex('é')));
        assert_eq!(
            parse(&format!("🦀x{SAMPLE}")),
            Err(E::BadChainId(ChainIdError::NotHex('🦀')))
        );
        assert_eq!(
            parse(&format!("e2🦀x{SAMPLE}")),
            Err(E::BadChainId(ChainIdError::NotHex('🦀')))
        );
        assert!(matches!(parse("🦀🦀🦀"), Err(E::MissingSeparator(_))));
        // Unicode whitespace counts as whitespace.
        assert!(matches!(
            parse(&format!("0x{SAMPLE}\u{a0}")),
            Err(E::Whitespace(_))
        ));
        // Fullwidth digits are not hex digits.
        assert_eq!(
            parse(&format!("０x{SAMPLE}")),
            Err(E::BadChainId(ChainIdError::NotHex('０')))
        );
    }

    #[test]
    fn error_messages_are_clear_and_quote_truncated_input() {
        let long = format!("{}{}", "é".repeat(200), "y");
        let msg = QualifiedAddress::parse(&long).unwrap_err().to_string();
        assert!(msg.contains("no 'x' separator"), "{msg}");
        assert!(msg.contains("é…"), "{msg}");
        assert!(msg.chars().count() < 200, "{msg}");

        let bad_sum = format!(
            "0x{}",
            sample().to_checksum_hex()[2..].replacen('F', "f", 1)
        );
        let msg = QualifiedAddress::parse(&bad_sum).unwrap_err().to_string();
        assert!(msg.contains("checksum does not match (EIP-55)"), "{msg}");
        assert!(msg.contains(&bad_sum), "{msg}");

        let msg = QualifiedAddress::parse(&format!(" 0x{SAMPLE}"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains(&format!("\" 0x{SAMPLE}\"")), "{msg}");

        let msg = QualifiedAddress::parse(&format!("E2E4x{SAMPLE}"))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("\"E2E4\"") && msg.contains("\"e2e4\""),
            "{msg}"
        );

        let msg = format!("e2e4x{SAMPLE}")
            .parse::<Address>()
            .unwrap_err()
            .to_string();
        assert!(msg.contains("chain e2e4") && msg.contains("local"), "{msg}");
    }

    #[test]
    fn json_round_trips_and_rejects_bad_checksums() {
        let a = sample();
        let q = QualifiedAddress::new(ChainId(0xe2e4), a);

        let json = serde_json::to_string(&q).unwrap();
        assert_eq!(json, format!("\"{q}\""));
        assert_eq!(serde_json::from_str::<QualifiedAddress>(&json).unwrap(), q);

        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, format!("\"{}\"", a.to_checksum_hex()));
        assert_eq!(serde_json::from_str::<Address>(&json).unwrap(), a);
        assert_eq!(
            serde_json::from_str::<Address>(&format!("\"0x{SAMPLE}\"")).unwrap(),
            a
        );

        let bad = format!("\"0x{}\"", a.to_checksum_hex()[2..].replacen('F', "f", 1));
        let err = serde_json::from_str::<Address>(&bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("checksum"), "{err}");
        assert!(serde_json::from_str::<QualifiedAddress>(&bad).is_err());
        // A JSON Address must be local; a qualified one must be well-formed.
        assert!(serde_json::from_str::<Address>(&format!("\"{q}\"")).is_err());
        assert!(serde_json::from_str::<QualifiedAddress>("\"e2e4\"").is_err());
        assert!(serde_json::from_str::<Address>("42").is_err());
    }

    #[test]
    fn binary_encoding_is_raw_bytes() {
        let a = sample();
        let bytes = postcard::to_stdvec(&a).unwrap();
        assert_eq!(bytes.len(), 20);
        assert_eq!(bytes, a.0.to_vec());
        assert_eq!(decode_canonical::<Address>(&bytes), Ok(a));
        assert!(decode_canonical::<Address>(&bytes[..19]).is_err());

        let q = QualifiedAddress::new(ChainId(0xe2e4), a);
        let bytes = encode(&q);
        let mut expected = encode(&0xe2e4u32);
        assert_eq!(expected, vec![0xe4, 0xc5, 0x03]);
        expected.extend_from_slice(&a.0);
        assert_eq!(bytes, expected);
        assert_eq!(decode_canonical::<QualifiedAddress>(&bytes), Ok(q));
    }

    fn check_parse(s: &str) -> Result<(), TestCaseError> {
        if let Ok(q) = QualifiedAddress::parse(s) {
            let shown = q.to_string();
            prop_assert_eq!(QualifiedAddress::parse(&shown), Ok(q));
            // The text form is unique up to the case of the hex digits.
            prop_assert_eq!(shown.to_lowercase(), s.to_lowercase());
        }
        // The local-only parser must not panic either.
        let _ = s.parse::<Address>();
        Ok(())
    }

    proptest! {
        #[test]
        fn parse_never_panics_on_arbitrary_text(s in "\\PC{0,60}") {
            check_parse(&s)?;
        }

        #[test]
        fn parse_never_panics_on_hex_and_x_mixes(s in "[0-9a-fA-FxX]{0,60}") {
            check_parse(&s)?;
        }

        #[test]
        fn parse_handles_near_valid_addresses(
            s in "[0-9a-fA-F]{0,10}[xX]([0-9a-f]{38,42}|[0-9A-F]{38,42}|[0-9a-fA-F]{38,42})"
        ) {
            check_parse(&s)?;
        }

        #[test]
        fn display_parse_round_trip_in_every_case(bytes: [u8; 20], chain: u32) {
            let a = Address(bytes);
            let q = QualifiedAddress::new(ChainId(chain), a);
            let text = q.to_string();
            prop_assert_eq!(QualifiedAddress::parse(&text), Ok(q));
            let (chain_part, hex_part) = text.split_once('x').unwrap();
            prop_assert_eq!(chain_part, format!("{chain:x}"));
            prop_assert_eq!(hex_part.len(), 40);
            let lower = format!("{chain_part}x{}", hex_part.to_lowercase());
            let upper = format!("{chain_part}x{}", hex_part.to_uppercase());
            prop_assert_eq!(QualifiedAddress::parse(&lower), Ok(q));
            prop_assert_eq!(QualifiedAddress::parse(&upper), Ok(q));
            prop_assert_eq!(a.to_string().parse::<Address>(), Ok(a));
            prop_assert_eq!(format!("0x{}", hex_part), a.to_string());
        }
    }
}
