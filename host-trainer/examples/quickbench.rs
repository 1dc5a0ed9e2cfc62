fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    for case in host_trainer::bench::cases() {
        for t in [1, 2] {
            let r = host_trainer::bench::run_case(&case, t, secs).unwrap();
            println!(
                "{:16} {:18} b={:4} t={} {:10.0} samples/s {:7.1} GFLOP/s {:5.1}% peak",
                r.case, r.arch, r.batch, r.threads, r.samples_per_s, r.gflops, r.peak_percent
            );
        }
    }
}
