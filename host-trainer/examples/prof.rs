fn main() {
    let i: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let t: usize = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let case = &host_trainer::bench::cases()[i];
    let r = host_trainer::bench::run_case(case, t, 4.0).unwrap();
    println!("{:?}", r.samples_per_s);
}
