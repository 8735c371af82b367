use invite::in_vivo;

// Neither shape: the return value by value.
fn by_value(a: &str, r: usize) -> bool {
    a.len() == r
}

// The reference parameters in the wrong order of types.
fn swapped(r: &usize, a: &str) -> bool {
    a.len() == *r
}

#[in_vivo(post = by_value, post = swapped)]
fn count(a: &str, b: &[u8]) -> usize {
    a.len() + b.len()
}

fn main() {
    count("x", b"y");
}
