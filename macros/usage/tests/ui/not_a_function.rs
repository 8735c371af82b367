use invite::in_vivo;

fn check() {}

/// An account.
#[in_vivo(pre = check)]
struct Account {
    balance: u64,
}

fn main() {}
