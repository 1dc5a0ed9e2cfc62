//! [`DataError`]: what went wrong while reading a dataset, in one line that names the file
//! (and the line, row or byte offset where it applies) and says what to do about it.

use std::path::PathBuf;

/// The valid forms of a data specification, quoted by [`DataError::Spec`].
pub const SPEC_FORMS: &str = "synthetic | synthetic:KEY=V,... | mnist:DIR | frey:FILE | \
     csv:FILE | csv:FILE?window=N&hop=N&label=COL&columns=A,B,...&rate=HZ&normal=A,B,...&group=COL&\
     split=TRAIN,VALID,TEST&shuffle=BOOL";

/// Why a dataset could not be loaded. The `Display` text is one line:
/// `KIND: PATH: what is wrong; what to do`.
///
/// `KIND` is the format being read (`mnist`, `idx`, `frey`, `mat`, `csv`). I/O errors are
/// written into the message rather than chained as a `source`, so that printing the error
/// alone (or with `anyhow`'s `{:#}`) says everything exactly once.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("{kind}: {}: cannot read: {err}; check the path and its permissions", path.display())]
    Io {
        /// Format being read.
        kind: &'static str,
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        err: std::io::Error,
    },
    /// A file that must be there is not (MNIST directory).
    #[error("{kind}: {}: found neither {name} nor {name}.gz; {hint}", dir.display())]
    Missing {
        /// Format being read.
        kind: &'static str,
        /// The directory searched.
        dir: PathBuf,
        /// The file name looked for (without `.gz`).
        name: &'static str,
        /// What to do.
        hint: &'static str,
    },
    /// The content of the file is not what the format requires.
    #[error("{kind}: {}: {what}; {fix}", path.display())]
    Malformed {
        /// Format being read.
        kind: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line, row or byte offset where it applies.
        what: String,
        /// What to do about it.
        fix: &'static str,
    },
    /// An option does not fit the file (unknown column, window longer than the data, ...).
    #[error("{kind}: {}: {what}", path.display())]
    Option {
        /// Format being read.
        kind: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong and what to pass instead.
        what: String,
    },
    /// A data specification string (`--data`) could not be parsed.
    #[error("data spec '{spec}': {what}; valid forms: {SPEC_FORMS}")]
    Spec {
        /// The specification as given.
        spec: String,
        /// What is wrong with it.
        what: String,
    },
}

impl DataError {
    /// A [`DataError::Malformed`] from its parts.
    pub(crate) fn malformed(
        kind: &'static str,
        path: &std::path::Path,
        what: impl Into<String>,
        fix: &'static str,
    ) -> Self {
        DataError::Malformed {
            kind,
            path: path.to_path_buf(),
            what: what.into(),
            fix,
        }
    }

    /// A [`DataError::Io`] from its parts.
    pub(crate) fn io(kind: &'static str, path: &std::path::Path, err: std::io::Error) -> Self {
        DataError::Io {
            kind,
            path: path.to_path_buf(),
            err,
        }
    }

    /// A [`DataError::Option`] from its parts.
    pub(crate) fn option(
        kind: &'static str,
        path: &std::path::Path,
        what: impl Into<String>,
    ) -> Self {
        DataError::Option {
            kind,
            path: path.to_path_buf(),
            what: what.into(),
        }
    }
}
