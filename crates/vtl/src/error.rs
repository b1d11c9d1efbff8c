//! Errors, each with the line and column (1-based, in characters) of the template where
//! it arose, so a user can find the spot in the mapping template they wrote.

/// Why a template could not be parsed or rendered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The template is not valid VTL (or uses a part of VTL this crate leaves out).
    #[error("line {line}, column {column}: {message}")]
    Parse {
        line: usize,
        column: usize,
        message: String,
    },
    /// Directives, expressions or values nest deeper than `Limits::max_depth`.
    #[error("line {line}, column {column}: nesting deeper than {limit} levels")]
    TooDeep {
        line: usize,
        column: usize,
        limit: usize,
    },
    /// The template itself is longer than `Limits::max_template_bytes`.
    #[error("template is {size} bytes, more than the limit of {limit}")]
    TemplateTooLarge { size: usize, limit: usize },
    /// Rendering would produce (or build a string) longer than `Limits::max_output_bytes`.
    #[error("line {line}, column {column}: output exceeds {limit} bytes")]
    OutputTooLarge {
        line: usize,
        column: usize,
        limit: usize,
    },
    /// Rendering took more than `Limits::max_steps` evaluation steps.
    #[error("line {line}, column {column}: rendering exceeded {limit} steps")]
    TooManySteps {
        line: usize,
        column: usize,
        limit: u64,
    },
    /// A list, map or range would hold more than `Limits::max_collection_len` items.
    #[error("line {line}, column {column}: a collection would exceed {limit} items")]
    CollectionTooLarge {
        line: usize,
        column: usize,
        limit: usize,
    },
    /// `$input.json`/`$input.path` on a body that is not JSON; API Gateway answers 400.
    #[error("line {line}, column {column}: Could not parse request body into json: {message}")]
    InvalidJsonBody {
        line: usize,
        column: usize,
        message: String,
    },
    /// A function failed the way its Java original throws (bad base64, bad JSONPath, ...).
    #[error("line {line}, column {column}: {message}")]
    Function {
        line: usize,
        column: usize,
        message: String,
    },
}

impl Error {
    /// Where the error arose, as (line, column); `None` for errors about the whole template.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            Error::Parse { line, column, .. }
            | Error::TooDeep { line, column, .. }
            | Error::OutputTooLarge { line, column, .. }
            | Error::TooManySteps { line, column, .. }
            | Error::CollectionTooLarge { line, column, .. }
            | Error::InvalidJsonBody { line, column, .. }
            | Error::Function { line, column, .. } => Some((*line, *column)),
            Error::TemplateTooLarge { .. } => None,
        }
    }
}

/// An error's kind before the byte offset is turned into a line and column.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Parse(String),
    TooDeep(usize),
    OutputTooLarge(usize),
    TooManySteps(u64),
    CollectionTooLarge(usize),
    InvalidJsonBody(String),
    Function(String),
}

/// An error at a byte offset of the template source.
#[derive(Debug, Clone)]
pub(crate) struct At {
    pub offset: usize,
    pub kind: Kind,
}

impl At {
    pub(crate) fn new(offset: usize, kind: Kind) -> Self {
        At { offset, kind }
    }

    /// Resolves the offset against the source; offsets past the end or inside a character
    /// are tolerated (string literals rewritten before parsing can shift them a little).
    pub(crate) fn resolve(self, source: &str) -> Error {
        let bytes = source.as_bytes();
        let end = self.offset.min(bytes.len());
        let mut line = 1;
        let mut column = 1;
        for &b in &bytes[..end] {
            if b == b'\n' {
                line += 1;
                column = 1;
            } else if b & 0xC0 != 0x80 {
                column += 1;
            }
        }
        match self.kind {
            Kind::Parse(message) => Error::Parse {
                line,
                column,
                message,
            },
            Kind::TooDeep(limit) => Error::TooDeep {
                line,
                column,
                limit,
            },
            Kind::OutputTooLarge(limit) => Error::OutputTooLarge {
                line,
                column,
                limit,
            },
            Kind::TooManySteps(limit) => Error::TooManySteps {
                line,
                column,
                limit,
            },
            Kind::CollectionTooLarge(limit) => Error::CollectionTooLarge {
                line,
                column,
                limit,
            },
            Kind::InvalidJsonBody(message) => Error::InvalidJsonBody {
                line,
                column,
                message,
            },
            Kind::Function(message) => Error::Function {
                line,
                column,
                message,
            },
        }
    }
}
