//! US Privacy string (`1YNN`), also carried as GPP section 6 (`uspv1`).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::{SignalError, SignalResult};

/// One flag of a US Privacy string; its serde form is the string's own
/// character, `"Y"`, `"N"` or `"-"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UspFlag {
    /// `Y`
    Yes,
    /// `N`
    No,
    /// `-`: not applicable.
    NotApplicable,
}

impl UspFlag {
    fn parse(c: u8, position: usize) -> SignalResult<Self> {
        match c {
            b'Y' | b'y' => Ok(Self::Yes),
            b'N' | b'n' => Ok(Self::No),
            b'-' => Ok(Self::NotApplicable),
            _ => Err(SignalError::InvalidUsPrivacy {
                position,
                reason: "expected Y, N or -",
            }),
        }
    }

    fn as_char(self) -> char {
        match self {
            Self::Yes => 'Y',
            Self::No => 'N',
            Self::NotApplicable => '-',
        }
    }
}

impl Serialize for UspFlag {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 4];
        s.serialize_str(self.as_char().encode_utf8(&mut buf))
    }
}

impl<'de> Deserialize<'de> for UspFlag {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_bytes() {
            [c] => UspFlag::parse(*c, 0).map_err(|_| {
                serde::de::Error::custom(format!("expected \"Y\", \"N\" or \"-\", got {s:?}"))
            }),
            _ => Err(serde::de::Error::custom(format!(
                "expected \"Y\", \"N\" or \"-\", got {s:?}"
            ))),
        }
    }
}

/// A decoded US Privacy string. Its serde form is
/// [`super::json::UspJson`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "super::json::UspJson", try_from = "super::json::UspJson")]
pub struct UsPrivacy {
    /// Specification version; only 1 exists.
    pub version: u8,
    /// Explicit notice / opportunity to opt out given.
    pub notice: UspFlag,
    /// The user opted out of the sale of personal information.
    pub opt_out_sale: UspFlag,
    /// The publisher is a signatory of the IAB LSPA.
    pub lspa_covered: UspFlag,
}

impl UsPrivacy {
    /// Decodes a four-character US Privacy string. Flags are accepted in
    /// either case and re-encoded in upper case.
    ///
    /// ```
    /// use privseg::consent::signals::usp::{UsPrivacy, UspFlag};
    /// let u = UsPrivacy::decode("1YYN")?;
    /// assert_eq!(u.opt_out_sale, UspFlag::Yes);
    /// assert_eq!(u.encode(), "1YYN");
    /// # Ok::<(), privseg::consent::signals::SignalError>(())
    /// ```
    pub fn decode(s: &str) -> SignalResult<Self> {
        let b = s.as_bytes();
        if b.len() != 4 {
            return Err(SignalError::InvalidUsPrivacy {
                position: b.len().min(4),
                reason: "a US Privacy string has exactly 4 characters",
            });
        }
        if b[0] != b'1' {
            return Err(SignalError::InvalidUsPrivacy {
                position: 0,
                reason: "only version 1 is defined",
            });
        }
        Ok(Self {
            version: 1,
            notice: UspFlag::parse(b[1], 1)?,
            opt_out_sale: UspFlag::parse(b[2], 2)?,
            lspa_covered: UspFlag::parse(b[3], 3)?,
        })
    }

    /// Encodes to the four-character form.
    pub fn encode(&self) -> String {
        self.to_string()
    }

    /// True for `1---`: the CCPA does not apply.
    pub fn ccpa_not_applicable(&self) -> bool {
        self.notice == UspFlag::NotApplicable
            && self.opt_out_sale == UspFlag::NotApplicable
            && self.lspa_covered == UspFlag::NotApplicable
    }
}

impl fmt::Display for UsPrivacy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}{}{}",
            self.version,
            self.notice.as_char(),
            self.opt_out_sale.as_char(),
            self.lspa_covered.as_char()
        )
    }
}
