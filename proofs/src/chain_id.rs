//! Chain identifiers (DESIGN §2): a `u32`, written as 1–8 lowercase hex digits without
//! leading zeros. Chain 0 is not a real chain: in an address it means "this chain".

use std::{fmt, str::FromStr};

/// Identifier of a chain. `ChainId(0)` is reserved for "the local chain" in addresses.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ChainId(pub u32);

/// Why a text is not a chain id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainIdError {
    /// No digits at all.
    #[error("chain id is empty")]
    Empty,
    /// More than 8 hex digits.
    #[error("chain id has {0} hex digits; at most 8 are allowed")]
    TooLong(usize),
    /// A character that is not a hex digit.
    #[error("chain id contains a non-hex character {0:?}")]
    NotHex(char),
    /// A leading zero (the one text form of a chain id has none).
    #[error("chain id has a leading zero")]
    LeadingZero,
}

impl ChainId {
    /// The "this chain" id used by local (`0x…`) addresses.
    pub const LOCAL: ChainId = ChainId(0);

    /// True for the reserved local id 0.
    pub fn is_local(self) -> bool {
        self.0 == 0
    }

    /// Parses the text form. `"0"` parses to [`ChainId::LOCAL`].
    pub fn parse(s: &str) -> Result<Self, ChainIdError> {
        if s.is_empty() {
            return Err(ChainIdError::Empty);
        }
        if let Some(c) = s.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err(ChainIdError::NotHex(c));
        }
        if s.len() > 8 {
            return Err(ChainIdError::TooLong(s.len()));
        }
        if s.len() > 1 && s.starts_with('0') {
            return Err(ChainIdError::LeadingZero);
        }
        // Cannot fail: 1..=8 hex digits always fit a u32.
        u32::from_str_radix(s, 16)
            .map(ChainId)
            .map_err(|_| ChainIdError::TooLong(s.len()))
    }
}

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}", self.0)
    }
}

impl fmt::Debug for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainId({:x})", self.0)
    }
}

impl FromStr for ChainId {
    type Err = ChainIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for ChainId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_string())
        } else {
            s.serialize_u32(self.0)
        }
    }
}

impl<'de> serde::Deserialize<'de> for ChainId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            ChainId::parse(&s).map_err(serde::de::Error::custom)
        } else {
            u32::deserialize(d).map(ChainId)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn text_form() {
        assert_eq!(ChainId(0xe2e4).to_string(), "e2e4");
        assert_eq!(ChainId::parse("e2e4"), Ok(ChainId(0xe2e4)));
        assert_eq!(ChainId::parse("AB12CD34"), Ok(ChainId(0xab12cd34)));
        assert_eq!(ChainId::parse("0"), Ok(ChainId::LOCAL));
        assert_eq!(ChainId::parse(""), Err(ChainIdError::Empty));
        assert_eq!(ChainId::parse("123456789"), Err(ChainIdError::TooLong(9)));
        assert_eq!(ChainId::parse("zz12"), Err(ChainIdError::NotHex('z')));
        assert_eq!(ChainId::parse("0e2e4"), Err(ChainIdError::LeadingZero));
        assert_eq!(ChainId::parse(" e2e4"), Err(ChainIdError::NotHex(' ')));
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(v: u32) {
            prop_assert_eq!(ChainId::parse(&ChainId(v).to_string()), Ok(ChainId(v)));
        }

        #[test]
        fn parse_never_panics_and_accepts_only_the_text_form(s in "\\PC{0,12}") {
            if let Ok(id) = ChainId::parse(&s) {
                prop_assert_eq!(id.to_string(), s.to_lowercase());
            }
        }
    }
}
