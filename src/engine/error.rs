//! Errors raised while loading a LightGBM text model: each names the line, and where
//! it applies the tree and key, at fault.

use std::fmt;

/// A model file that cannot be served, with the place in the file that shows why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ModelError {
    /// 1-based line number in the model text, when the fault sits on one line.
    pub line: Option<usize>,
    /// Index of the tree (`Tree=N`) the fault belongs to.
    pub tree: Option<usize>,
    /// The `key=` of the line at fault.
    pub key: Option<String>,
    /// What is wrong, in words.
    pub message: String,
}

impl ModelError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            line: None,
            tree: None,
            key: None,
            message: message.into(),
        }
    }

    pub(crate) fn at_line(mut self, line: usize) -> Self {
        self.line = Some(line);
        self
    }

    pub(crate) fn in_tree(mut self, tree: usize) -> Self {
        self.tree = Some(tree);
        self
    }

    pub(crate) fn with_key(mut self, key: &str) -> Self {
        self.key = Some(key.to_owned());
        self
    }
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut place = Vec::new();
        if let Some(tree) = self.tree {
            place.push(format!("tree {tree}"));
        }
        if let Some(key) = &self.key {
            place.push(format!("key `{key}`"));
        }
        if let Some(line) = self.line {
            place.push(format!("line {line}"));
        }
        if place.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", place.join(", "), self.message)
        }
    }
}
