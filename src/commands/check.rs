//! `giftrank check DIR`: validates one bundle directory (any directory holding
//! `bundle.toml`) exactly as the service does before serving
//! it, for ops to run before publishing.

use std::io::Write;
use std::path::Path;

use crate::bundle::Bundle;

/// Prints a summary and succeeds when `dir` would serve; otherwise fails with the reason.
pub fn run(dir: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    let bundle =
        Bundle::load(dir).map_err(|e| anyhow::anyhow!("{} cannot serve: {e}", dir.display()))?;
    writeln!(
        out,
        "ok: {} — recall {} ({} trees, {} features), rerank {} ({} trees, {} features), default_m {}, max_m {}, {} canary rows match",
        dir.display(),
        bundle.direct.objective(),
        bundle.direct.num_trees(),
        bundle.direct.num_features(),
        bundle.stage2.objective(),
        bundle.stage2.num_trees(),
        bundle.stage2.num_features(),
        bundle.default_m,
        bundle.max_m,
        bundle.canary_rows
    )?;
    Ok(())
}
