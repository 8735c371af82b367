use invite::in_vivo;

fn wrong_type(amount: i64) -> bool {
    amount > 0
}

fn wrong_count(amount: u64, fee: u64) -> bool {
    amount > fee
}

fn by_reference(amount: &u64) -> bool {
    *amount > 0
}

#[in_vivo(pre = wrong_type, pre = wrong_count, pre = by_reference)]
fn deposit(amount: u64) -> u64 {
    amount
}

struct Account;

fn no_receiver(amount: u64) -> bool {
    amount > 0
}

impl Account {
    #[in_vivo(pre = no_receiver)]
    fn withdraw(&mut self, _amount: u64) {}
}

fn main() {
    deposit(1);
    Account.withdraw(1);
}
