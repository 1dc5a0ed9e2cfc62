//! `export`: the firmware model file and generated Rust.

use anyhow::{Context, Result};

use host_trainer::export;

use super::load_ckpt;
use crate::ExportArgs;

/// `export`.
pub fn export(a: &ExportArgs) -> Result<()> {
    let ck = load_ckpt(&a.ckpt)?;
    let s = export::export_model_file(&ck, &a.model)
        .with_context(|| format!("{}", a.model.display()))?;
    println!("{s}");
    if let Some(r) = &a.rust {
        export::export_rust(&ck, r).with_context(|| format!("{}", r.display()))?;
        println!("{}", r.display());
    }
    Ok(())
}
