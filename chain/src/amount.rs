//! Signed amounts (correspondent balances) in the same string form as unsigned ones.

/// Serde adapter for `i128`: a decimal string (with optional leading `-`) in JSON, a
/// zigzag varint in the binary encoding.
pub mod dec_i128 {
    use serde::{de, Deserialize, Deserializer, Serializer};

    /// Serializes.
    pub fn serialize<S: Serializer>(v: &i128, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&v.to_string())
        } else {
            s.serialize_i128(*v)
        }
    }

    /// Deserializes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i128, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            let (neg, digits) = match s.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, s.as_str()),
            };
            let magnitude =
                distpos_proofs::codec::dec_u128::parse_amount(digits).map_err(de::Error::custom)?;
            let v =
                i128::try_from(magnitude).map_err(|_| de::Error::custom("amount out of range"))?;
            Ok(if neg { -v } else { v })
        } else {
            i128::deserialize(d)
        }
    }
}
