//! Diagnostics: what a provider reports back instead of failing, each optionally tied to an
//! attribute path so OpenTofu can point at the offending line of HCL.

use std::fmt;

/// One step of an attribute path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PathStep {
    /// An object attribute or block name.
    Attribute(String),
    /// A map key.
    Key(String),
    /// A list or tuple index.
    Index(i64),
}

/// A path into a value, such as `names[2]` or `status["DB_PASSWORD"]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct AttributePath(pub Vec<PathStep>);

impl AttributePath {
    /// The empty path (the whole value).
    pub fn root() -> Self {
        AttributePath(Vec::new())
    }

    /// A path of one attribute.
    pub fn attr(name: impl Into<String>) -> Self {
        AttributePath(vec![PathStep::Attribute(name.into())])
    }

    /// This path extended by one step.
    pub fn push(&self, step: PathStep) -> Self {
        let mut steps = self.0.clone();
        steps.push(step);
        AttributePath(steps)
    }

    /// This path extended by an attribute name.
    pub fn child(&self, name: impl Into<String>) -> Self {
        self.push(PathStep::Attribute(name.into()))
    }

    /// This path extended by a list index.
    pub fn index(&self, i: i64) -> Self {
        self.push(PathStep::Index(i))
    }

    /// This path extended by a map key.
    pub fn key(&self, k: impl Into<String>) -> Self {
        self.push(PathStep::Key(k.into()))
    }
}

impl fmt::Display for AttributePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(root)");
        }
        for (i, step) in self.0.iter().enumerate() {
            match step {
                PathStep::Attribute(name) if i == 0 => write!(f, "{name}")?,
                PathStep::Attribute(name) => write!(f, ".{name}")?,
                PathStep::Key(k) => write!(f, "[{k:?}]")?,
                PathStep::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// Stops the operation.
    Error,
    /// Shown, but the operation goes on.
    Warning,
}

/// One problem, told the way OpenTofu shows it: a one-line summary and a detail paragraph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// One line.
    pub summary: String,
    /// What happened and what to do about it.
    pub detail: String,
    /// The attribute at fault, when there is one.
    pub attribute: Option<AttributePath>,
}

/// A list of diagnostics, collected so that one call can report several problems at once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// No diagnostics.
    pub fn new() -> Self {
        Diagnostics(Vec::new())
    }

    /// Adds an error not tied to an attribute.
    pub fn error(&mut self, summary: impl Into<String>, detail: impl Into<String>) {
        self.push(Severity::Error, summary, detail, None);
    }

    /// Adds an error on an attribute.
    pub fn attribute_error(
        &mut self,
        path: AttributePath,
        summary: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.push(Severity::Error, summary, detail, Some(path));
    }

    /// Adds a warning, optionally on an attribute.
    pub fn warning(
        &mut self,
        path: Option<AttributePath>,
        summary: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.push(Severity::Warning, summary, detail, path);
    }

    fn push(
        &mut self,
        severity: Severity,
        summary: impl Into<String>,
        detail: impl Into<String>,
        attribute: Option<AttributePath>,
    ) {
        self.0.push(Diagnostic {
            severity,
            summary: summary.into(),
            detail: detail.into(),
            attribute,
        });
    }

    /// Appends all of `other`.
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }

    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }

    /// Whether there are no diagnostics at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics(vec![d])
    }
}
