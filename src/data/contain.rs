//! The Parquet decoder can panic on a damaged file (arrow-rs asserts on some corrupt pages
//! instead of returning an error; the fuzz test in `tests/data.rs` finds such files within
//! a few thousand random edits). [`contain`] runs the decoder so that such a panic becomes
//! an error about the file and prints nothing; any other panic is reported as usual.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// Whether this thread is inside [`contain`].
    static CONTAINED: Cell<bool> = const { Cell::new(false) };
}

static QUIET_HOOK: Once = Once::new();

/// Runs `f`; a panic inside it becomes `Err` with the panic's message. The caller must not
/// use whatever `f` was working on after an `Err`.
pub(crate) fn contain<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    QUIET_HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !CONTAINED.with(Cell::get) {
                previous(info);
            }
        }));
    });
    let outer = CONTAINED.with(|c| c.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    CONTAINED.with(|c| c.set(outer));
    result.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "the decoder stopped".to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_inside_becomes_its_message() {
        assert_eq!(contain(|| 7), Ok(7));
        let got: Result<(), String> = contain(|| panic!("page {} is damaged", 3));
        assert_eq!(got, Err("page 3 is damaged".to_owned()));
        assert_eq!(
            contain(|| std::panic::panic_any(5u8)),
            Err::<(), _>("the decoder stopped".to_owned())
        );
        assert!(!CONTAINED.with(Cell::get));
    }
}
