//! The one canonical binary encoding (postcard) used for every hash, and the serde
//! adapters that let the same types read and write as `0x` hex / decimal strings in
//! JSON.
//!
//! Canonical means: decoding accepts exactly the bytes that encoding produces. Postcard
//! alone would accept over-long varints and ignore trailing bytes, so
//! [`decode_canonical`] re-encodes what it decoded and compares.

use serde::{de::DeserializeOwned, Serialize};

/// Why a byte string is not the canonical encoding of a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The bytes do not decode as the expected type.
    #[error("malformed encoding: {0}")]
    Malformed(String),
    /// A value was decoded but bytes were left over after it.
    #[error("{0} trailing byte(s) after the value")]
    TrailingBytes(usize),
    /// The bytes decode, but are not the one canonical encoding of that value.
    #[error("non-canonical encoding")]
    NonCanonical,
}

/// Encodes `value` canonically.
///
/// Every type in this workspace that is hashed or sent is plain data (structs, enums,
/// sequences of known length), which postcard always encodes; a failure would be a bug
/// in a type definition, caught by the golden-vector tests.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    match postcard::to_stdvec(value) {
        Ok(bytes) => bytes,
        // Unreachable for the plain-data types of this workspace (see above).
        Err(e) => panic!("type cannot be encoded canonically: {e}"),
    }
}

/// Decodes `bytes` as a `T`, accepting only its canonical encoding: no trailing bytes,
/// no alternative encodings of the same value.
pub fn decode_canonical<T: DeserializeOwned + Serialize>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, rest): (T, &[u8]) =
        postcard::take_from_bytes(bytes).map_err(|e| CodecError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CodecError::TrailingBytes(rest.len()));
    }
    if encode(&value) != bytes {
        return Err(CodecError::NonCanonical);
    }
    Ok(value)
}

/// Parses `0x`-prefixed hex (either case) into bytes.
pub fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let digits = s
        .strip_prefix("0x")
        .ok_or_else(|| format!("expected 0x-prefixed hex, got {:?}", truncate(s)))?;
    hex::decode(digits).map_err(|e| format!("invalid hex: {e}"))
}

/// Formats bytes as `0x` + lowercase hex.
pub fn to_hex(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// Shortens untrusted text before it goes into an error message.
pub fn truncate(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head}…")
    }
}

/// Serde adapter for `Vec<u8>`: `0x` hex in JSON, a length-prefixed byte string in the
/// binary encoding. Use with `#[serde(with = "distpos_proofs::codec::hex_bytes")]`.
pub mod hex_bytes {
    use serde::{de, Deserialize, Deserializer, Serializer};

    /// Serializes bytes.
    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&super::to_hex(bytes))
        } else {
            s.serialize_bytes(bytes)
        }
    }

    /// Deserializes bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            super::parse_hex(&s).map_err(de::Error::custom)
        } else {
            Ok(serde_bytes_compat::ByteBuf::deserialize(d)?.0)
        }
    }

    /// Minimal owned byte buffer that asks the deserializer for bytes (postcard encodes
    /// `Vec<u8>` via `serialize_bytes` as varint length + raw bytes).
    mod serde_bytes_compat {
        use serde::de::{self, Deserializer, SeqAccess, Visitor};
        use std::fmt;

        pub(super) struct ByteBuf(pub(super) Vec<u8>);

        impl<'de> serde::Deserialize<'de> for ByteBuf {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = ByteBuf;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a byte string")
                    }
                    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<ByteBuf, E> {
                        Ok(ByteBuf(v.to_vec()))
                    }
                    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<ByteBuf, E> {
                        Ok(ByteBuf(v))
                    }
                    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ByteBuf, A::Error> {
                        let mut out = Vec::new();
                        while let Some(b) = seq.next_element::<u8>()? {
                            out.push(b);
                        }
                        Ok(ByteBuf(out))
                    }
                }
                d.deserialize_byte_buf(V)
            }
        }
    }
}

/// Serde adapter for `u128` amounts: a decimal string in JSON (JavaScript numbers
/// cannot hold them), a varint in the binary encoding.
pub mod dec_u128 {
    use serde::{de, Deserialize, Deserializer, Serializer};

    /// Serializes an amount.
    pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&v.to_string())
        } else {
            s.serialize_u128(*v)
        }
    }

    /// Deserializes an amount. JSON must carry a string of decimal digits only.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            parse_amount(&s).map_err(de::Error::custom)
        } else {
            u128::deserialize(d)
        }
    }

    /// Parses a decimal amount: digits only, no sign, no spaces, no leading zeros
    /// (except "0" itself), at most u128::MAX.
    pub fn parse_amount(s: &str) -> Result<u128, String> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "amount must be a string of decimal digits, got {:?}",
                super::truncate(s)
            ));
        }
        if s.len() > 1 && s.starts_with('0') {
            return Err(format!(
                "amount has leading zeros: {:?}",
                super::truncate(s)
            ));
        }
        s.parse::<u128>()
            .map_err(|_| format!("amount out of range: {:?}", super::truncate(s)))
    }
}

/// Defines a fixed-size byte newtype that reads and writes as `0x` hex in JSON and as
/// exactly N raw bytes (no length prefix) in the binary encoding.
#[macro_export]
macro_rules! fixed_bytes {
    ($(#[$meta:meta])* $name:ident, $len:expr) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// Number of bytes.
            pub const LEN: usize = $len;

            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// Builds from a slice of exactly the right length.
            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                <[u8; $len]>::try_from(bytes).ok().map(Self)
            }
        }

        impl ::std::default::Default for $name {
            fn default() -> Self {
                Self([0u8; $len])
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&$crate::codec::to_hex(&self.0))
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, "{}({})", stringify!($name), $crate::codec::to_hex(&self.0))
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                let bytes = $crate::codec::parse_hex(s)?;
                Self::from_slice(&bytes).ok_or_else(|| {
                    format!("expected {} bytes, got {}", $len, bytes.len())
                })
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.serialize_str(&$crate::codec::to_hex(&self.0))
                } else {
                    use ::serde::ser::SerializeTuple;
                    let mut t = s.serialize_tuple($len)?;
                    for b in &self.0 {
                        t.serialize_element(b)?;
                    }
                    t.end()
                }
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    let s = <String as ::serde::Deserialize>::deserialize(d)?;
                    s.parse().map_err(::serde::de::Error::custom)
                } else {
                    struct V;
                    impl<'de> ::serde::de::Visitor<'de> for V {
                        type Value = $name;
                        fn expecting(
                            &self,
                            f: &mut ::std::fmt::Formatter<'_>,
                        ) -> ::std::fmt::Result {
                            write!(f, "{} bytes", $len)
                        }
                        fn visit_seq<A: ::serde::de::SeqAccess<'de>>(
                            self,
                            mut seq: A,
                        ) -> Result<$name, A::Error> {
                            let mut out = [0u8; $len];
                            for (i, slot) in out.iter_mut().enumerate() {
                                *slot = seq
                                    .next_element()?
                                    .ok_or_else(|| ::serde::de::Error::invalid_length(i, &self))?;
                            }
                            Ok($name(out))
                        }
                    }
                    d.deserialize_tuple($len, V)
                }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        n: u64,
        #[serde(with = "dec_u128")]
        amount: u128,
        #[serde(with = "hex_bytes")]
        memo: Vec<u8>,
    }

    #[test]
    fn round_trips_and_rejects_trailing_bytes() {
        let s = Sample {
            n: 300,
            amount: u128::MAX,
            memo: vec![1, 2, 3],
        };
        let bytes = encode(&s);
        assert_eq!(decode_canonical::<Sample>(&bytes), Ok(s));
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            decode_canonical::<Sample>(&longer),
            Err(CodecError::TrailingBytes(1))
        );
    }

    #[test]
    fn rejects_overlong_varint() {
        // n = 1 encoded as the two-byte varint 0x81 0x00 instead of 0x01.
        let canonical = encode(&Sample {
            n: 1,
            amount: 0,
            memo: vec![],
        });
        assert_eq!(canonical[0], 0x01);
        let mut overlong = vec![0x81, 0x00];
        overlong.extend_from_slice(&canonical[1..]);
        assert_eq!(
            decode_canonical::<Sample>(&overlong),
            Err(CodecError::NonCanonical)
        );
    }

    #[test]
    fn json_uses_strings_for_amounts_and_hex_for_bytes() {
        let s = Sample {
            n: 7,
            amount: 340282366920938463463374607431768211455,
            memo: vec![0xab],
        };
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(
            json,
            r#"{"n":7,"amount":"340282366920938463463374607431768211455","memo":"0xab"}"#
        );
        assert_eq!(serde_json::from_str::<Sample>(&json).unwrap(), s);
    }

    #[test]
    fn amount_parser_is_strict() {
        for bad in [
            "",
            "-1",
            "+1",
            " 1",
            "1 ",
            "01",
            "1e3",
            "0x10",
            "340282366920938463463374607431768211456",
        ] {
            assert!(dec_u128::parse_amount(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(dec_u128::parse_amount("0"), Ok(0));
        assert_eq!(dec_u128::parse_amount("42"), Ok(42));
    }
}
