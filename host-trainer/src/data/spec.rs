//! `--data` specifications: which dataset to load, in one string.
//!
//! ```text
//! synthetic                          built-in synthetic data, default options
//! synthetic:KEY=V,KEY=V,...          with options (kept raw for the synthetic generator)
//! mnist:DIR                          the four MNIST IDX files in DIR (plain or .gz)
//! frey:FILE                          frey_rawface.mat
//! csv:FILE                           a wide CSV file (one row per line)
//! csv:FILE?window=64&hop=32&label=is_anomaly&columns=a,b,c&rate=64
//!                                    a long CSV time series cut into windows
//! csv:FILE?window=64&group=subject   ... within each run of lines of one subject
//! csv:FILE?label=activity&normal=Standing,Sitting
//!                                    text labels: these are normal, the others anomalies
//! csv:FILE?split=0.7,0.15,0.15&shuffle=false
//!                                    how to split it (stored for the splitter only)
//! ```
//!
//! The kind is everything before the **first** `:`; the rest is the path verbatim, so paths
//! may contain `:`. For `csv`, options follow the **last** `?` as `KEY=VALUE` pairs joined by
//! `&` (keys `window`, `hop`, `label`, `columns` — comma-separated names or indexes —,
//! `rate` in Hz, `normal` — comma-separated label values —, `group`, a column name or
//! index, `split` — three fractions ≥ 0 adding up to 1 (within 1e-6) — and `shuffle`, `true`,
//! `false`, `1` or `0`; see [`CsvOptions`]). A CSV path that itself contains `?` is written with a
//! trailing `?` (`csv:/odd?name.csv?`). [`DataSpec`]'s `Display` writes this syntax back.

use std::fmt;
use std::path::PathBuf;

use super::DataError;
use super::csv::CsvOptions;

/// A parsed data specification (see the [module docs](self)).
#[derive(Clone, Debug, PartialEq)]
pub enum DataSpec {
    /// Built-in synthetic data; `KEY=V` options in order, unparsed.
    Synthetic {
        /// The options as written, e.g. `[("n", "1000"), ("noise", "0.1")]`.
        options: Vec<(String, String)>,
    },
    /// MNIST from a directory ([`load_mnist_dir`](super::idx::load_mnist_dir)).
    Mnist {
        /// Directory holding the four IDX files.
        dir: PathBuf,
    },
    /// Frey Face ([`load_frey`](super::mat::load_frey)).
    Frey {
        /// Path of `frey_rawface.mat`.
        path: PathBuf,
    },
    /// A CSV file ([`load_csv`](super::csv::load_csv)).
    Csv {
        /// Path of the file.
        path: PathBuf,
        /// How to read it.
        options: CsvOptions,
    },
}

/// Parse a data specification (see the [module docs](self) for the syntax).
///
/// Errors ([`DataError::Spec`], whose message lists the valid forms): an unknown kind, a
/// missing path, a synthetic option without `=` or with an empty key, an unknown, repeated or
/// malformed CSV option (`window` and `hop` whole numbers ≥ 1, `rate` a positive number,
/// `normal` without empty values, `split` three fractions ≥ 0 adding up to 1, `shuffle` a
/// boolean).
pub fn parse_data_spec(s: &str) -> Result<DataSpec, DataError> {
    let fail = |what: String| DataError::Spec {
        spec: s.to_string(),
        what,
    };
    let (kind, rest) = match s.split_once(':') {
        Some((k, r)) => (k, Some(r)),
        None => (s, None),
    };
    let path = |what: &str| -> Result<PathBuf, DataError> {
        match rest {
            Some(r) if !r.is_empty() => Ok(PathBuf::from(r)),
            _ => Err(fail(format!(
                "{kind} needs a {what}: {kind}:{}",
                what.to_uppercase()
            ))),
        }
    };
    match kind {
        "synthetic" => {
            let mut options = Vec::new();
            for item in rest
                .unwrap_or("")
                .split(',')
                .filter(|i| !i.trim().is_empty())
            {
                match item.split_once('=') {
                    Some((k, v)) if !k.trim().is_empty() => {
                        options.push((k.trim().to_string(), v.trim().to_string()))
                    }
                    _ => return Err(fail(format!("synthetic option '{item}' is not KEY=VALUE"))),
                }
            }
            Ok(DataSpec::Synthetic { options })
        }
        "mnist" => Ok(DataSpec::Mnist { dir: path("dir")? }),
        "frey" => Ok(DataSpec::Frey {
            path: path("file")?,
        }),
        "csv" => {
            let rest = rest.unwrap_or("");
            let (file, query) = rest.rsplit_once('?').unwrap_or((rest, ""));
            if file.is_empty() {
                return Err(fail("csv needs a file: csv:FILE".into()));
            }
            Ok(DataSpec::Csv {
                path: PathBuf::from(file),
                options: parse_csv_query(query).map_err(fail)?,
            })
        }
        "" => Err(fail("empty".into())),
        other => Err(fail(format!("unknown kind '{other}'"))),
    }
}

/// `window=64&hop=32&label=is_anomaly&columns=a,b&rate=64` as [`CsvOptions`].
fn parse_csv_query(q: &str) -> Result<CsvOptions, String> {
    let mut o = CsvOptions::default();
    let mut seen: Vec<&str> = Vec::new();
    for item in q.split('&').filter(|i| !i.is_empty()) {
        let Some((k, v)) = item.split_once('=') else {
            return Err(format!("csv option '{item}' is not KEY=VALUE"));
        };
        if seen.contains(&k) {
            return Err(format!("csv option '{k}' given twice"));
        }
        seen.push(k);
        let count = |v: &str| match v.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(format!("csv option {k}={v}: expected a whole number >= 1")),
        };
        match k {
            "window" => o.window = Some(count(v)?),
            "hop" => o.hop = Some(count(v)?),
            "label" if !v.is_empty() => o.label = Some(v.to_string()),
            "group" if !v.is_empty() => o.group = Some(v.to_string()),
            "normal" if !v.is_empty() => {
                if v.split(',').any(|n| n.trim().is_empty()) {
                    return Err(format!("csv option normal={v}: a label value is empty"));
                }
                o.normal = Some(v.split(',').map(str::to_string).collect())
            }
            "columns" if !v.is_empty() => {
                o.columns = Some(v.split(',').map(str::to_string).collect())
            }
            "rate" => match v.parse::<f32>() {
                Ok(r) if r.is_finite() && r > 0.0 => o.sample_rate_hz = Some(r),
                _ => {
                    return Err(format!(
                        "csv option rate={v}: expected a positive number of Hz"
                    ));
                }
            },
            "split" => {
                let bad = || {
                    format!(
                        "csv option split={v}: expected three fractions TRAIN,VALID,TEST, each a number >= 0, adding up to 1"
                    )
                };
                let f: Vec<f64> = v
                    .split(',')
                    .map(|p| {
                        p.trim()
                            .parse::<f64>()
                            .ok()
                            .filter(|x| x.is_finite() && *x >= 0.0)
                    })
                    .collect::<Option<_>>()
                    .ok_or_else(bad)?;
                let [a, b, c] = f[..] else {
                    return Err(bad());
                };
                let sum = a + b + c;
                if (sum - 1.0).abs() > 1e-6 {
                    return Err(format!(
                        "csv option split={v}: the fractions add up to {}, not 1",
                        (sum * 1e6).round() / 1e6
                    ));
                }
                o.split = Some([a, b, c]);
            }
            "shuffle" => {
                o.shuffle = Some(match v {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => {
                        return Err(format!(
                            "csv option shuffle={v}: expected true, false, 1 or 0"
                        ));
                    }
                })
            }
            "label" | "columns" | "group" | "normal" => {
                return Err(format!("csv option {k}= is empty"));
            }
            _ => {
                return Err(format!(
                    "unknown csv option '{k}' (known: window, hop, label, columns, rate, normal, group, split, shuffle)"
                ));
            }
        }
    }
    Ok(o)
}

impl fmt::Display for DataSpec {
    /// The specification in the syntax [`parse_data_spec`] reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataSpec::Synthetic { options } if options.is_empty() => f.write_str("synthetic"),
            DataSpec::Synthetic { options } => {
                let o: Vec<String> = options.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "synthetic:{}", o.join(","))
            }
            DataSpec::Mnist { dir } => write!(f, "mnist:{}", dir.display()),
            DataSpec::Frey { path } => write!(f, "frey:{}", path.display()),
            DataSpec::Csv { path, options } => {
                let p = path.display().to_string();
                let q = options.to_query();
                if q.is_empty() && !p.contains('?') {
                    write!(f, "csv:{p}")
                } else {
                    write!(f, "csv:{p}?{q}")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> String {
        parse_data_spec(s).unwrap_err().to_string()
    }

    #[test]
    fn kinds_parse() {
        assert_eq!(
            parse_data_spec("synthetic").unwrap(),
            DataSpec::Synthetic { options: vec![] }
        );
        assert_eq!(
            parse_data_spec("synthetic:n=100, noise=0.5").unwrap(),
            DataSpec::Synthetic {
                options: vec![("n".into(), "100".into()), ("noise".into(), "0.5".into())]
            }
        );
        assert_eq!(
            parse_data_spec("mnist:C:/data/mnist").unwrap(),
            DataSpec::Mnist {
                dir: "C:/data/mnist".into()
            }
        );
        assert_eq!(
            parse_data_spec("frey:/d/frey_rawface.mat").unwrap(),
            DataSpec::Frey {
                path: "/d/frey_rawface.mat".into()
            }
        );
        assert_eq!(
            parse_data_spec("csv:/d/a:b.csv").unwrap(),
            DataSpec::Csv {
                path: "/d/a:b.csv".into(),
                options: CsvOptions::default()
            }
        );
        let s = "csv:/d/x.csv?window=64&hop=32&label=is_anomaly&columns=a,b,3&rate=64";
        let spec = parse_data_spec(s).unwrap();
        assert_eq!(
            spec,
            DataSpec::Csv {
                path: "/d/x.csv".into(),
                options: CsvOptions {
                    window: Some(64),
                    hop: Some(32),
                    label: Some("is_anomaly".into()),
                    columns: Some(vec!["a".into(), "b".into(), "3".into()]),
                    sample_rate_hz: Some(64.0),
                    ..CsvOptions::default()
                }
            }
        );
        assert_eq!(spec.to_string(), s);
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "synthetic",
            "synthetic:a=1,b=x",
            "mnist:/m",
            "frey:f.mat",
            "csv:a.csv",
            "csv:/odd?name.csv?",
            "csv:/odd?name.csv?window=3",
            "csv:a.csv?window=3&group=subject",
            "csv:a.csv?window=3&group=0",
            "csv:a.csv?normal=0",
            "csv:a.csv?window=3&label=activity&normal=Standing,Sitting&group=subject",
            "csv:a.csv?split=0.8,0.1,0.1&shuffle=true",
            "csv:a.csv?split=0.6,0.2,0.2&shuffle=false",
        ] {
            let p = parse_data_spec(s).unwrap();
            assert_eq!(p.to_string(), s);
            assert_eq!(parse_data_spec(&p.to_string()).unwrap(), p);
        }
        match parse_data_spec("csv:/odd?name.csv?").unwrap() {
            DataSpec::Csv { path, .. } => assert_eq!(path, PathBuf::from("/odd?name.csv")),
            _ => unreachable!(),
        }
    }

    #[test]
    fn split_and_shuffle_parse_and_round_trip() {
        let csv = |s: &str| match parse_data_spec(s).unwrap() {
            DataSpec::Csv { options, .. } => options,
            _ => unreachable!(),
        };
        let o = csv("csv:x?split=0.7,0.15,0.15&shuffle=1");
        assert_eq!((o.split, o.shuffle), (Some([0.7, 0.15, 0.15]), Some(true)));
        assert_eq!(csv("csv:x?shuffle=0").shuffle, Some(false));
        assert_eq!(csv("csv:x?shuffle=true").shuffle, Some(true));
        // Within 1e-6 of 1 is enough; spaces around the numbers are fine.
        assert_eq!(
            csv("csv:x?split=1, 0, 0.0000005").split,
            Some([1.0, 0.0, 0.0000005])
        );
        // Any fractions come back bit for bit.
        let third = 1.0 / 3.0;
        let o = CsvOptions {
            split: Some([third, third, 1.0 - 2.0 * third]),
            shuffle: Some(false),
            window: Some(4),
            ..CsvOptions::default()
        };
        let spec = DataSpec::Csv {
            path: "d.csv".into(),
            options: o.clone(),
        };
        let text = spec.to_string();
        assert!(text.ends_with("&shuffle=false"), "{text}");
        assert_eq!(parse_data_spec(&text).unwrap(), spec);
        assert_eq!(
            csv(&text).split.unwrap().map(f64::to_bits),
            o.split.unwrap().map(f64::to_bits)
        );
    }

    #[test]
    fn bad_specs_list_the_valid_forms() {
        let e = err("imagenet:/x");
        assert!(
            e.contains("unknown kind 'imagenet'") && e.contains("mnist:DIR"),
            "{e}"
        );
        assert!(err("mnist").contains("mnist needs a dir: mnist:DIR"));
        assert!(err("frey:").contains("frey needs a file"));
        assert!(err("").contains("empty"));
        assert!(err("synthetic:n").contains("'n' is not KEY=VALUE"));
        assert!(err("csv:?window=2").contains("csv needs a file"));
        assert!(err("csv:x?window=0").contains("window=0"));
        assert!(err("csv:x?hop=-1").contains("hop=-1"));
        assert!(err("csv:x?rate=0").contains("rate=0"));
        assert!(err("csv:x?rate=nan").contains("rate=nan"));
        assert!(err("csv:x?size=3").contains("unknown csv option 'size'"));
        assert!(err("csv:x?window=3&window=4").contains("given twice"));
        assert!(err("csv:x?label=").contains("label= is empty"));
        assert!(err("csv:x?window=2&group=").contains("group= is empty"));
        assert!(err("csv:x?normal=").contains("normal= is empty"));
        assert!(err("csv:x?normal=a,,b").contains("normal=a,,b: a label value is empty"));
        for bad in [
            "0.5,0.5",
            "0.5,0.5,0,0",
            "a,0.5,0.5",
            "-0.1,0.6,0.5",
            "nan,0,1",
            "inf,0,0",
            "",
        ] {
            let e = err(&format!("csv:x?split={bad}"));
            assert!(
                e.contains(&format!("split={bad}: expected three fractions")),
                "{e}"
            );
        }
        let e = err("csv:x?split=0.7,0.2,0.2");
        assert!(
            e.contains("split=0.7,0.2,0.2: the fractions add up to 1.1"),
            "{e}"
        );
        assert!(err("csv:x?shuffle=yes").contains("shuffle=yes: expected true, false, 1 or 0"));
        assert!(err("csv:x?shuffle=").contains("shuffle=: expected"));
    }
}
