use invite::in_vivo;

async fn returns_a_number(amount: u64) -> u64 {
    amount
}

#[in_vivo(pre = returns_a_number)]
fn deposit(amount: u64) -> u64 {
    amount
}

fn main() {
    deposit(1);
}
