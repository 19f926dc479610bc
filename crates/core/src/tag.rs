use crate::ids::{TagId, TeamId};
use crate::ticket::Tier;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A validated tag name: lowercase ASCII letters, digits and `-_.:`, 1–64 chars.
/// Input is trimmed and lowercased so `L1-Billing` and `l1-billing` are one tag.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct TagName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagNameError {
    #[error("a tag cannot be empty")]
    Empty,
    #[error("a tag is at most 64 characters")]
    TooLong,
    #[error("tag {0:?} may only use a-z, 0-9 and - _ . :")]
    InvalidChar(String),
}

impl TagName {
    pub const MAX_LEN: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, TagNameError> {
        let name = raw.trim().to_ascii_lowercase();
        if name.is_empty() {
            return Err(TagNameError::Empty);
        }
        if name.chars().count() > Self::MAX_LEN {
            return Err(TagNameError::TooLong);
        }
        if !name.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.' | ':')
        }) {
            return Err(TagNameError::InvalidChar(raw.to_string()));
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for TagName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        TagName::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for TagName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tag definition. Ownership (tier and/or team) is what makes tagging routing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub id: TagId,
    pub name: TagName,
    pub description: String,
    pub owner_tier: Option<Tier>,
    pub owner_team: Option<TeamId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_names_are_normalised() {
        assert_eq!(
            TagName::parse(" L1-Billing ").map(|t| t.0),
            Ok("l1-billing".into())
        );
        assert_eq!(TagName::parse("o365").map(|t| t.0), Ok("o365".into()));
        assert_eq!(
            TagName::parse("team:net.ops_2").map(|t| t.0),
            Ok("team:net.ops_2".into())
        );
    }

    #[test]
    fn bad_tag_names_are_refused() {
        assert_eq!(TagName::parse("   "), Err(TagNameError::Empty));
        assert_eq!(TagName::parse(&"a".repeat(65)), Err(TagNameError::TooLong));
        assert!(matches!(
            TagName::parse("has space"),
            Err(TagNameError::InvalidChar(_))
        ));
        assert!(matches!(
            TagName::parse("émoji"),
            Err(TagNameError::InvalidChar(_))
        ));
        assert!(matches!(
            TagName::parse("a,b"),
            Err(TagNameError::InvalidChar(_))
        ));
    }

    #[test]
    fn deserialising_validates() {
        assert!(serde_json::from_str::<TagName>("\"VPN\"").is_ok());
        assert!(serde_json::from_str::<TagName>("\"v p n\"").is_err());
    }
}
