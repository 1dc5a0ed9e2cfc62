//! `record`: decode a record stream (the firmware's `rec=[…]` log lines) from a file, stdin or
//! a command it runs (QEMU, probe-rs), print what arrived and what was lost, and write the CSV
//! that `train` reads (`host_trainer::record`).

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use host_trainer::io::write_atomic;
use host_trainer::record::{Decoder, Recording};

use crate::RecordArgs;

/// Reads lines from `r` into `d` until the stream ends or `d` is done.
fn read_lines(r: impl Read, d: &mut Decoder) -> Result<()> {
    let mut r = BufReader::new(r);
    let mut line = Vec::new();
    while !d.done() {
        line.clear();
        if r.read_until(b'\n', &mut line).context("read the stream")? == 0 {
            break;
        }
        d.line(&String::from_utf8_lossy(&line));
    }
    Ok(())
}

/// The recording from `--from` or `--spawn`.
fn read(a: &RecordArgs) -> Result<(Recording, String)> {
    let mut d = Decoder::new(a.samples);
    match (&a.from, &a.spawn) {
        (Some(p), None) if p.as_os_str() == "-" => {
            read_lines(std::io::stdin().lock(), &mut d)?;
            Ok((d.finish(), "stdin".into()))
        }
        (Some(p), None) => {
            let f = std::fs::File::open(p).with_context(|| format!("--from {}", p.display()))?;
            read_lines(f, &mut d)?;
            Ok((d.finish(), p.display().to_string()))
        }
        (None, Some(cmd)) => {
            let mut child = Command::new("sh")
                .args(["-c", cmd])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .spawn()
                .with_context(|| format!("--spawn: cannot run `{cmd}`"))?;
            let out = child.stdout.take().context("--spawn: no stdout")?;
            let read = read_lines(out, &mut d);
            // Stopped early (--samples or the end frame): the command may still be streaming.
            if d.done() {
                let _ = child.kill();
            }
            let status = child.wait().context("--spawn: wait for the command")?;
            read?;
            if !d.done() && !status.success() {
                eprintln!("warning: `{cmd}` exited with {status}");
            }
            Ok((d.finish(), format!("`{cmd}`")))
        }
        _ => bail!("give one of --from FILE (- for stdin) or --spawn COMMAND"),
    }
}

/// Runs `record`.
pub(crate) fn record(a: &RecordArgs) -> Result<()> {
    let (rec, source) = read(a)?;
    println!("record    {source}");
    println!("{}", rec.summary());
    if rec.stats.samples == 0 {
        bail!(
            "no samples in {source} ({} corrupt frame lines): is it the record program's log?",
            rec.stats.corrupt
        );
    }
    if rec.gaps() > 0 && !a.allow_gaps {
        bail!(
            "the stream has {} gap(s) (dropped or corrupt frames, sensor overruns or non-finite samples): \
             {} not written, since a plain CSV would splice across them; pass --allow-gaps to write a \
             segment column and train with group=segment so no window spans a gap",
            rec.gaps(),
            a.out.display()
        );
    }
    write_atomic(&a.out, rec.to_csv().as_bytes())
        .with_context(|| format!("write {}", a.out.display()))?;
    let rate = rec.rate_hz.unwrap_or(1);
    let group = if rec.gaps() > 0 { "&group=segment" } else { "" };
    println!(
        "csv       {} ({})\ntrain     host-trainer train --data 'csv:{}?window=64&rate={rate}{group}'",
        a.out.display(),
        if rec.gaps() > 0 {
            "t,segment,x,y,z"
        } else {
            "t,x,y,z"
        },
        a.out.display()
    );
    Ok(())
}
