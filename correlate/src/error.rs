//! The crate's one error type.

use std::path::PathBuf;

/// Why a rule file, a rule document or a rule could not be used.
///
/// Variants are chosen by what the operator should do: fix the file ([`Error::Io`],
/// [`Error::Yaml`]), fix the rule ([`Error::InvalidRule`]), accept that Cairn does not run this kind
/// of rule yet ([`Error::Unsupported`]), or simplify the rule / raise a limit
/// ([`Error::LimitExceeded`]). Messages are lowercase and name the place in the rule
/// (`detection.selection.CommandLine|contians: unknown modifier 'contians'`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A rule file or folder could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid YAML, or is YAML that Cairn refuses to load (too large, too deep,
    /// aliases).
    #[error("invalid yaml: {0}")]
    Yaml(String),
    /// The document is YAML but not a valid Sigma rule.
    #[error("{0}")]
    InvalidRule(String),
    /// A valid Sigma construct that Cairn does not implement (yet).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The rule exceeds a configured complexity limit.
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
}

impl Error {
    /// A short, stable name of the variant (`io`, `yaml`, `invalid`, `unsupported`, `limit`), for
    /// grouping rejections in reports and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Io { .. } => "io",
            Error::Yaml(_) => "yaml",
            Error::InvalidRule(_) => "invalid",
            Error::Unsupported(_) => "unsupported",
            Error::LimitExceeded(_) => "limit",
        }
    }
}

/// A rule (or file) that was not loaded or not compiled, and why.
#[derive(Debug)]
pub struct Rejection {
    /// The file, with ` (document N)` (1-based) when the file holds several YAML documents.
    pub source: String,
    /// The rule's title when it could be read.
    pub title: Option<String>,
    /// The full reason, including where in the rule the problem is.
    pub reason: String,
    /// The typed error behind `reason`.
    pub error: Error,
}

impl Rejection {
    pub(crate) fn new(source: impl Into<String>, title: Option<String>, error: Error) -> Rejection {
        Rejection {
            source: source.into(),
            title,
            reason: error.to_string(),
            error,
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.title {
            Some(title) => write!(f, "{} ({title:?}): {}", self.source, self.reason),
            None => write!(f, "{}: {}", self.source, self.reason),
        }
    }
}
