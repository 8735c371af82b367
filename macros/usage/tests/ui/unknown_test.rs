use invite::in_vivo;

#[in_vivo(pre = checks::no_such_test)]
fn f(x: u32) -> u32 {
    x
}

mod checks {}

fn main() {
    f(1);
}
