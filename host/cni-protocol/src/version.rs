use crate::{codes, CniError};

/// Spec versions this plugin speaks, oldest first.
pub const SUPPORTED_VERSIONS: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// A supported CNI spec version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(u8, u8, u8);

impl Version {
    pub const V0_3_0: Version = Version(0, 3, 0);
    pub const V0_4_0: Version = Version(0, 4, 0);
    pub const V1_0_0: Version = Version(1, 0, 0);
    pub const V1_1_0: Version = Version(1, 1, 0);

    /// Parses a version the plugin supports; anything else is error 1.
    pub fn parse(text: &str) -> Result<Version, CniError> {
        if !SUPPORTED_VERSIONS.contains(&text) {
            return Err(CniError::new(
                codes::INCOMPATIBLE_VERSION,
                format!("unsupported cniVersion {text:?}"),
                format!("supported versions: {}", SUPPORTED_VERSIONS.join(", ")),
            ));
        }
        let mut parts = text.split('.').map(|p| p.parse::<u8>().unwrap_or(0));
        Ok(Version(
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
        ))
    }

    /// The highest supported version in `versions` (the `cniVersions` list
    /// of a 1.1.0 config), as the spec's negotiation asks.
    pub fn negotiate(versions: &[String]) -> Result<Version, CniError> {
        versions
            .iter()
            .filter_map(|v| Version::parse(v).ok())
            .max()
            .ok_or_else(|| {
                CniError::new(
                    codes::INCOMPATIBLE_VERSION,
                    format!("none of cniVersions {versions:?} is supported"),
                    format!("supported versions: {}", SUPPORTED_VERSIONS.join(", ")),
                )
            })
    }
}

/// The VERSION result: `cniVersion` is the value the input gave, as the
/// spec asks (whether or not this plugin supports it), then the versions
/// it supports.
pub fn version_reply(input_version: &str) -> String {
    serde_json::json!({
        "cniVersion": input_version,
        "supportedVersions": SUPPORTED_VERSIONS,
    })
    .to_string()
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_version_round_trips() {
        for v in SUPPORTED_VERSIONS {
            assert_eq!(Version::parse(v).unwrap().to_string(), v);
        }
    }

    #[test]
    fn unknown_version_is_error_1() {
        assert_eq!(Version::parse("0.2.0").unwrap_err().code, 1);
        assert_eq!(Version::parse("2.0.0").unwrap_err().code, 1);
    }

    #[test]
    fn negotiation_takes_the_highest_supported() {
        let offered = ["0.4.0", "1.1.0", "9.9.9"].map(String::from);
        assert_eq!(Version::negotiate(&offered).unwrap(), Version::V1_1_0);
        assert_eq!(
            Version::negotiate(&["3.0.0".to_string()]).unwrap_err().code,
            1
        );
    }
}
