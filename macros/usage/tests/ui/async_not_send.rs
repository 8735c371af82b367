use invite::in_vivo;
use std::rc::Rc;

async fn yield_once() {}

/// Holds an `Rc` across an `.await`: the future cannot move to the pod's test thread.
async fn shares_an_rc(amount: u64) -> bool {
    let shared = Rc::new(amount);
    yield_once().await;
    *shared == amount
}

#[in_vivo(pre = shares_an_rc)]
fn deposit(amount: u64) -> u64 {
    amount
}

fn main() {
    deposit(1);
}
