//! Configuration errors: each says what is wrong and where.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("config file {0}: no such file")]
    MissingFile(PathBuf),
    #[error("{0}")]
    Invalid(Box<figment::Error>),
    #[error("invalid setting {key}: {reason}")]
    Setting { key: &'static str, reason: String },
}

impl From<figment::Error> for Error {
    fn from(e: figment::Error) -> Self {
        Error::Invalid(Box::new(e))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
