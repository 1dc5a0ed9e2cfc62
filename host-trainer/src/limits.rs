//! Resource limits (issue 12): before a command allocates memory whose size comes from a flag
//! or a file header, it computes the bytes from the core's memory figures
//! ([`vae_nostd::VaeConfig::workspace_len`], parameter counts) and refuses past a limit with
//! one line saying what, how much and which flag — instead of aborting on a failed multi-GB
//! allocation, panicking on "capacity overflow", or swapping the machine to a halt.
//!
//! The limit is half of the machine's memory (`MemTotal` of `/proc/meminfo`; 8 GiB where that
//! cannot be read), or what `--max-memory SIZE` (every command) or the environment variable
//! `VAE_MAX_MEMORY` says: bytes, or a number with `K`, `M`, `G` or `T` (powers of 1024).

use std::sync::OnceLock;

use anyhow::{Result, bail};

/// The limit in bytes and where it came from, set once per process.
static LIMIT: OnceLock<(u64, String)> = OnceLock::new();

/// Parses `8G`, `512M`, `100000`, `1.5G`.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last()? {
        (i, 'K' | 'k') => (&s[..i], 1u64 << 10),
        (i, 'M' | 'm') => (&s[..i], 1 << 20),
        (i, 'G' | 'g') => (&s[..i], 1 << 30),
        (i, 'T' | 't') => (&s[..i], 1 << 40),
        _ => (s, 1),
    };
    let v: f64 = num.trim().parse().ok()?;
    (v.is_finite() && v > 0.0 && v * (mult as f64) < 1.8e19).then_some((v * mult as f64) as u64)
}

/// The machine's memory (`MemTotal`), if it can be read.
fn machine_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Sets the limit from `--max-memory` (or, without it, `VAE_MAX_MEMORY` or the default). Call
/// once at start-up; an unparseable size is an error.
pub fn init(flag: Option<&str>) -> Result<()> {
    let env = std::env::var("VAE_MAX_MEMORY").ok();
    let chosen = match (flag, env.as_deref()) {
        (Some(f), _) => Some((f.to_string(), "--max-memory")),
        (None, Some(e)) => Some((e.to_string(), "VAE_MAX_MEMORY")),
        (None, None) => None,
    };
    let limit = match chosen {
        Some((v, from)) => match parse_size(&v) {
            Some(b) => (b, format!("{from} {v}")),
            None => bail!("{from} {v:?}: expected a size such as 8G, 512M or a number of bytes"),
        },
        None => match machine_memory() {
            Some(m) => (
                m / 2,
                format!(
                    "half of this machine's {}; --max-memory to change it",
                    human(m as u128)
                ),
            ),
            None => (
                8 << 30,
                "8 GiB (this machine's memory is unknown); --max-memory to change it".into(),
            ),
        },
    };
    let _ = LIMIT.set(limit);
    Ok(())
}

fn limit() -> &'static (u64, String) {
    LIMIT.get_or_init(|| match machine_memory() {
        Some(m) => (
            m / 2,
            format!(
                "half of this machine's {}; --max-memory to change it",
                human(m as u128)
            ),
        ),
        None => (8 << 30, "8 GiB; --max-memory to change it".into()),
    })
}

/// `1.2 GB`, `640 KB`: bytes for a message (powers of 1000).
pub fn human(bytes: u128) -> String {
    let b = bytes as f64;
    if b >= 1e12 {
        format!("{:.1} TB", b / 1e12)
    } else if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.0} KB", (b / 1e3).ceil())
    }
}

/// Refuses when `bytes` (what `what` needs) is above the limit, naming `flag`.
pub fn check(what: &str, bytes: u128, flag: &str) -> Result<()> {
    let (max, from) = limit();
    if bytes > *max as u128 {
        bail!(
            "{what} needs {} of memory, above the limit of {} ({from}); lower {flag}",
            human(bytes),
            human(*max as u128)
        );
    }
    Ok(())
}

/// Bytes of the f32 workspace for `rows` datapoints with `samples` draws each: the core's
/// `workspace_len(1, samples)` per row (exact: the layout is linear in the batch), computed
/// without overflow for any flag value (above 2³² draws the per-draw part is extrapolated;
/// saturating at `u128::MAX`).
pub fn workspace_bytes(cfg: &vae_nostd::VaeConfig, rows: u128, samples: u128) -> u128 {
    let per_row = if samples <= 1 << 32 {
        cfg.workspace_len(1, samples as usize) as u128
    } else {
        let (one, two) = (
            cfg.workspace_len(1, 1) as u128,
            cfg.workspace_len(1, 2) as u128,
        );
        one.saturating_add((two - one).saturating_mul(samples - 1))
    };
    per_row.saturating_mul(rows).saturating_mul(4)
}

/// Refuses drawing `n` decoded outputs of `d` values each (f32 outputs and the picture's
/// pixels, 8 bytes per value) past the limit, naming `flag`.
pub fn check_decoded(what: &str, n: u128, d: usize, flag: &str) -> Result<()> {
    check(what, n.saturating_mul(d as u128).saturating_mul(8), flag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("8G"), Some(8 << 30));
        assert_eq!(parse_size("512m"), Some(512 << 20));
        assert_eq!(parse_size("1000"), Some(1000));
        assert_eq!(parse_size("1.5K"), Some(1536));
        for bad in ["", "G", "-1G", "abc", "1e30T", "0"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn workspace_bytes_is_the_cores_figure_and_never_overflows() {
        let cfg = vae_nostd::VaeConfig::new(
            784,
            &[500],
            20,
            vae_nostd::Activation::Tanh,
            vae_nostd::Likelihood::Bernoulli,
        );
        assert_eq!(
            workspace_bytes(&cfg, 100, 3),
            4 * cfg.workspace_len(100, 3) as u128
        );
        let huge = workspace_bytes(&cfg, u64::MAX as u128, u64::MAX as u128);
        assert!(huge > 1u128 << 100);
    }
}
