//! Splits LightGBM's text model format into its sections — header, trees, trailer —
//! keeping the line number of every entry. It knows the file's layout, not what the
//! values mean: turning entries into trees is `tree.rs`, the header is `model.rs`.

use std::collections::HashMap;

use super::error::ModelError;

/// One `key=value` line.
#[derive(Debug, Clone)]
pub(crate) struct Entry<'a> {
    pub value: &'a str,
    pub line: usize,
}

/// The `key=value` lines of one block (the header or one tree), by key.
#[derive(Debug, Default)]
pub(crate) struct Block<'a> {
    entries: HashMap<&'a str, Entry<'a>>,
}

impl<'a> Block<'a> {
    fn insert(&mut self, key: &'a str, value: &'a str, line: usize) -> Result<(), ModelError> {
        let entry = Entry { value, line };
        if let Some(first) = self.entries.insert(key, entry) {
            return Err(ModelError::new(format!(
                "duplicate key (first given on line {})",
                first.line
            ))
            .with_key(key)
            .at_line(line));
        }
        Ok(())
    }

    pub fn get(&self, key: &str) -> Option<&Entry<'a>> {
        self.entries.get(key)
    }
}

/// One `Tree=N` block.
#[derive(Debug)]
pub(crate) struct TreeBlock<'a> {
    /// Line of the `Tree=N` header.
    pub line: usize,
    /// Byte offset of the `Tree=N` header in the file, for checking `tree_sizes`.
    pub offset: usize,
    pub block: Block<'a>,
}

/// A model file cut into its sections.
#[derive(Debug)]
pub(crate) struct Sections<'a> {
    pub header: Block<'a>,
    /// Line of the first `Tree=` (or of `end of trees`), where the header ends.
    pub header_end_line: usize,
    pub trees: Vec<TreeBlock<'a>>,
    /// Byte offset of the `end of trees` line.
    pub trees_end_offset: usize,
    /// `[key: value]` lines of the `parameters:` section.
    pub parameters: Vec<Entry<'a>>,
    /// The JSON after `pandas_categorical:`, when present.
    pub pandas_categorical: Option<Entry<'a>>,
}

/// A line of the file with its 1-based number and byte offset.
struct Line<'a> {
    text: &'a str,
    number: usize,
    offset: usize,
}

fn lines(text: &str) -> impl Iterator<Item = Line<'_>> {
    let mut offset = 0;
    text.split_inclusive('\n')
        .enumerate()
        .map(move |(index, raw)| {
            let line = Line {
                text: raw.trim_end_matches(['\n', '\r']),
                number: index + 1,
                offset,
            };
            offset += raw.len();
            line
        })
}

fn split_entry(line: &str) -> (&str, &str) {
    match line.split_once('=') {
        Some((key, value)) => (key, value),
        None => (line, ""),
    }
}

/// Cuts `text` into sections, refusing files whose structure is broken or cut short.
pub(crate) fn sections(text: &str) -> Result<Sections<'_>, ModelError> {
    let mut lines = lines(text).peekable();
    match lines.next() {
        Some(first) if first.text == "tree" => {}
        Some(first) => {
            return Err(ModelError::new(format!(
                "expected the model type `tree` on the first line, found `{}`",
                shorten(first.text)
            ))
            .at_line(first.number))
        }
        None => return Err(ModelError::new("the model file is empty")),
    }

    let mut header = Block::default();
    let mut header_end_line = 0;
    while let Some(line) = lines.peek() {
        if line.text.starts_with("Tree=") || line.text == "end of trees" {
            header_end_line = line.number;
            break;
        }
        if !line.text.is_empty() {
            let (key, value) = split_entry(line.text);
            header.insert(key, value, line.number)?;
        }
        lines.next();
    }
    if header_end_line == 0 {
        return Err(ModelError::new(
            "the file ends before any tree: truncated or not a LightGBM model",
        ));
    }

    let mut trees = Vec::new();
    let trees_end_offset;
    loop {
        let Some(line) = lines.next() else {
            return Err(ModelError::new(
                "the file ends before `end of trees`: truncated model",
            ));
        };
        if line.text.is_empty() {
            continue;
        }
        if line.text == "end of trees" {
            trees_end_offset = line.offset;
            break;
        }
        let Some(index) = line.text.strip_prefix("Tree=") else {
            return Err(ModelError::new(format!(
                "expected `Tree={}` or `end of trees`, found `{}`",
                trees.len(),
                shorten(line.text)
            ))
            .at_line(line.number));
        };
        if index != trees.len().to_string() {
            return Err(ModelError::new(format!(
                "expected `Tree={}`, found `Tree={}`",
                trees.len(),
                shorten(index)
            ))
            .at_line(line.number));
        }
        let mut block = Block::default();
        while let Some(entry) = lines.next_if(|l| !l.text.is_empty()) {
            let (key, value) = split_entry(entry.text);
            block
                .insert(key, value, entry.number)
                .map_err(|e| e.in_tree(trees.len()))?;
        }
        trees.push(TreeBlock {
            line: line.number,
            offset: line.offset,
            block,
        });
    }

    let mut parameters = Vec::new();
    let mut pandas_categorical = None;
    let mut section = Trailer::Between;
    let mut parameters_closed = false;
    for line in lines {
        match (section, line.text) {
            (Trailer::Parameters, "end of parameters") => {
                parameters_closed = true;
                section = Trailer::Between;
            }
            (Trailer::Parameters, text) => parameters.push(Entry {
                value: text,
                line: line.number,
            }),
            (Trailer::Parser, "end of parser") => section = Trailer::Between,
            (Trailer::Parser, _) => {}
            (_, "") => section = Trailer::Between,
            (_, "feature_importances:") => section = Trailer::Importances,
            (Trailer::Importances, text) if text.contains('=') => {}
            (_, "parameters:") => section = Trailer::Parameters,
            (_, "parser:") => section = Trailer::Parser,
            (_, text) => match text.strip_prefix("pandas_categorical:") {
                Some(json) => {
                    pandas_categorical = Some(Entry {
                        value: json,
                        line: line.number,
                    })
                }
                None => {
                    return Err(ModelError::new(format!(
                        "unexpected line after the trees: `{}`",
                        shorten(text)
                    ))
                    .at_line(line.number))
                }
            },
        }
    }
    if !parameters_closed {
        return Err(ModelError::new(
            "the file ends without `end of parameters` (LightGBM 3 and 4 always write it): truncated model",
        ));
    }

    Ok(Sections {
        header,
        header_end_line,
        trees,
        trees_end_offset,
        parameters,
        pandas_categorical,
    })
}

/// Where the reader is in the sections that follow `end of trees`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Trailer {
    Between,
    Importances,
    Parameters,
    Parser,
}

/// Cuts long text down for an error message.
pub(crate) fn shorten(text: &str) -> String {
    const MAX: usize = 60;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Parses a space-separated list of exactly `expected` values of `key` (`None`: any count).
pub(crate) fn parse_list<T: std::str::FromStr>(
    entry: &Entry<'_>,
    key: &str,
    expected: Option<usize>,
) -> Result<Vec<T>, ModelError> {
    let values = entry
        .value
        .split_ascii_whitespace()
        .map(|word| {
            word.parse::<T>().map_err(|_| {
                ModelError::new(format!("`{}` is not a valid number", shorten(word)))
                    .with_key(key)
                    .at_line(entry.line)
            })
        })
        .collect::<Result<Vec<T>, _>>()?;
    if let Some(expected) = expected {
        if values.len() != expected {
            return Err(ModelError::new(format!(
                "expected {expected} values, found {}",
                values.len()
            ))
            .with_key(key)
            .at_line(entry.line));
        }
    }
    Ok(values)
}

/// Parses one value of `key`.
pub(crate) fn parse_one<T: std::str::FromStr>(
    entry: &Entry<'_>,
    key: &str,
) -> Result<T, ModelError> {
    entry.value.trim().parse::<T>().map_err(|_| {
        ModelError::new(format!("`{}` is not a valid value", shorten(entry.value)))
            .with_key(key)
            .at_line(entry.line)
    })
}
