use invite::in_vivo;

fn check(_: u32) {}

// The body goes through untouched, so rustc reports its own syntax error.
#[in_vivo(pre = check)]
fn f(x: u32) -> u32 {
    let y = x +;
    y
}

fn main() {
    f(1);
}
