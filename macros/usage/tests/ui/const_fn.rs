use invite::in_vivo;

fn positive(x: u32) -> bool {
    x > 0
}

#[in_vivo(pre = positive)]
const fn double(x: u32) -> u32 {
    x * 2
}

fn main() {
    double(1);
}
