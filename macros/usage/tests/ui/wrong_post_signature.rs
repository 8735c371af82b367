use invite::in_vivo;

fn by_value(r: u64) -> bool {
    r > 0
}

fn with_the_arguments(amount: u64, r: &u64) -> bool {
    *r == amount
}

#[in_vivo(post = by_value, post = with_the_arguments)]
fn deposit(amount: u64) -> u64 {
    amount
}

struct Account;

fn no_receiver(r: &u64) -> bool {
    *r > 0
}

impl Account {
    #[in_vivo(post = no_receiver)]
    fn balance(&self) -> u64 {
        0
    }
}

fn main() {
    deposit(1);
    Account.balance();
}
