//! The progress display of the long commands (`eval`, `score`): a bar on stderr while the
//! data file is read, then a spinner while the work after it runs; nothing at all when
//! stderr is not a terminal (logs and pipes stay clean).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::data::Extent;

/// A progress bar, or nothing.
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar over the data file (its bytes or its rows), labelled `what`.
    pub fn reading(extent: Extent, what: &str) -> Self {
        let (length, template) = match extent {
            Extent::Bytes(bytes) => (
                bytes,
                "{msg} [{wide_bar}] {binary_bytes}/{binary_total_bytes}, {eta} left",
            ),
            Extent::Rows(rows) => (
                rows,
                "{msg} [{wide_bar}] {human_pos}/{human_len} rows, {eta} left",
            ),
        };
        let bar = Self::visible(ProgressBar::new(length));
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_owned());
        Self { bar }
    }

    /// A spinner saying `what` is being done.
    pub fn working(what: &str) -> Self {
        let bar = Self::visible(ProgressBar::new_spinner());
        bar.set_message(what.to_owned());
        if !bar.is_hidden() {
            bar.enable_steady_tick(Duration::from_millis(120));
        }
        Self { bar }
    }

    /// `bar` drawn on stderr when that is a terminal, else hidden.
    fn visible(bar: ProgressBar) -> ProgressBar {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        bar.set_draw_target(target);
        bar
    }

    /// How far the work has come, in the bar's unit.
    pub fn set(&self, position: u64) {
        self.bar.set_position(position);
    }

    /// Removes the bar (the caller prints its own summary).
    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}
