//! The tenant id: the one value that decides which execution environments a record may reach.
//!
//! Lambda accepts 1–256 characters from `[a-zA-Z0-9._:/=+\-@ ]` as `X-Amz-Tenant-Id`
//! (<https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html>). A [`TenantId`] can only be
//! built through [`TenantId::parse`], which enforces exactly that and normalises nothing: trimming or
//! case folding could merge two tenants into one.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Longest tenant id Lambda accepts, in characters (all allowed characters are ASCII).
pub const MAX_TENANT_ID_LEN: usize = 256;

/// A tenant id that Lambda will accept, kept byte for byte as it was given.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TenantId(String);

/// Why a string is not a valid tenant id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantIdError {
    /// The tenant id is the empty string.
    #[error("tenant id is empty")]
    Empty,
    /// The tenant id is longer than Lambda allows.
    #[error("tenant id is {len} characters long, the limit is {MAX_TENANT_ID_LEN}")]
    TooLong {
        /// Length of the rejected value, in bytes.
        len: usize,
    },
    /// The tenant id starts or ends with a space. HTTP drops white space around a header value
    /// (RFC 9110 §5.5), so Lambda would see another tenant id than the one proven.
    #[error(
        "tenant id starts or ends with a space, which HTTP drops from the X-Amz-Tenant-Id header"
    )]
    SurroundingSpace,
    /// The tenant id holds a character outside Lambda's pattern.
    #[error("tenant id has a forbidden character {character:?} at byte {position}")]
    ForbiddenCharacter {
        /// The first offending character.
        character: char,
        /// Its byte offset.
        position: usize,
    },
}

impl TenantId {
    /// Checks `value` against Lambda's tenant-id rules and keeps it unchanged.
    pub fn parse(value: &str) -> Result<Self, TenantIdError> {
        Self::check(value)?;
        Ok(Self(value.to_owned()))
    }

    /// Like [`TenantId::parse`] but takes ownership, avoiding a copy.
    pub fn from_string(value: String) -> Result<Self, TenantIdError> {
        Self::check(&value)?;
        Ok(Self(value))
    }

    fn check(value: &str) -> Result<(), TenantIdError> {
        if value.is_empty() {
            return Err(TenantIdError::Empty);
        }
        if let Some((position, character)) = value.char_indices().find(|(_, c)| !is_allowed(*c)) {
            return Err(TenantIdError::ForbiddenCharacter {
                character,
                position,
            });
        }
        // Every allowed character is one byte, so the byte length is the character count.
        if value.len() > MAX_TENANT_ID_LEN {
            return Err(TenantIdError::TooLong { len: value.len() });
        }
        if value.starts_with(' ') || value.ends_with(' ') {
            return Err(TenantIdError::SurroundingSpace);
        }
        Ok(())
    }

    /// The tenant id as sent in `X-Amz-Tenant-Id`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Gives back the owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

fn is_allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '/' | '=' | '+' | '-' | '@' | ' ')
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for TenantId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for TenantId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        TenantId::from_string(value).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_allowed_character() {
        let all = "azAZ09._:/=+-@ x";
        assert_eq!(TenantId::parse(all).unwrap().as_str(), all);
    }

    #[test]
    fn keeps_the_value_unchanged() {
        assert_eq!(TenantId::parse("ac me").unwrap().as_str(), "ac me");
        assert_ne!(
            TenantId::parse("Acme").unwrap(),
            TenantId::parse("acme").unwrap()
        );
    }

    /// HTTP would drop these spaces from the header, so Lambda would see `acme`.
    #[test]
    fn a_space_at_either_end_is_refused() {
        for bad in ["acme ", " acme", " ", "  acme  "] {
            assert_eq!(
                TenantId::parse(bad),
                Err(TenantIdError::SurroundingSpace),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn length_limits() {
        assert_eq!(TenantId::parse(""), Err(TenantIdError::Empty));
        assert!(TenantId::parse(&"a".repeat(256)).is_ok());
        assert_eq!(
            TenantId::parse(&"a".repeat(257)),
            Err(TenantIdError::TooLong { len: 257 })
        );
    }

    #[test]
    fn forbidden_characters() {
        for bad in ["acme#1", "a\nb", "tenant*", "é", "a\u{0}", "a\tb", "a,b"] {
            assert!(
                matches!(
                    TenantId::parse(bad),
                    Err(TenantIdError::ForbiddenCharacter { .. })
                ),
                "{bad:?} must be refused"
            );
        }
        assert_eq!(
            TenantId::parse("ab#"),
            Err(TenantIdError::ForbiddenCharacter {
                character: '#',
                position: 2
            })
        );
    }

    #[test]
    fn deserialize_validates() {
        assert!(serde_json::from_str::<TenantId>("\"ok\"").is_ok());
        assert!(serde_json::from_str::<TenantId>("\"no#\"").is_err());
    }
}
