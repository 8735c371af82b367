use invite::in_vivo;

fn check(n: u64) -> bool {
    n > 0
}

#[in_vivo(outermost = true, pre = check)]
fn a(n: u64) -> u64 {
    n
}

#[in_vivo(outermost, outermost, pre = check)]
fn b(n: u64) -> u64 {
    n
}

#[in_vivo(outermost, pre = check)]
async fn c(n: u64) -> u64 {
    n
}

fn main() {}
