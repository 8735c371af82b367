use invite::in_vivo;

fn check(_: u32) {}

#[in_vivo(pre = check, rate = 0.5)]
fn f(x: u32) -> u32 {
    x
}

fn main() {
    f(1);
}
