//! Storage providers, named as AIStore names them on the wire.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;

/// Where a bucket's data lives. `Ais` buckets are Trove's own (or a remote AIS cluster's) storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Ais,
    Aws,
    Gcp,
    Azure,
}

impl Provider {
    /// The AIS wire name (`ais`, `aws`, `gcp`, `azure`), also used in the on-disk layout (`@aws`).
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Ais => "ais",
            Provider::Aws => "aws",
            Provider::Gcp => "gcp",
            Provider::Azure => "azure",
        }
    }

    /// The URI scheme AIS prints for this provider (`ais://`, `s3://`, `gs://`, `az://`).
    pub fn scheme(self) -> &'static str {
        match self {
            Provider::Ais => "ais",
            Provider::Aws => "s3",
            Provider::Gcp => "gs",
            Provider::Azure => "az",
        }
    }

    /// Whether objects of this provider live in a cloud and are only cached here.
    pub fn is_remote(self) -> bool {
        !matches!(self, Provider::Ais)
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Provider {
    type Err = Error;

    /// Accepts both the AIS provider names and the URI schemes, as the AIS CLI and SDK do.
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "ais" => Ok(Provider::Ais),
            "aws" | "s3" => Ok(Provider::Aws),
            "gcp" | "gs" => Ok(Provider::Gcp),
            "azure" | "az" => Ok(Provider::Azure),
            other => Err(Error::UnknownProvider(other.to_owned())),
        }
    }
}
