use invite::in_vivo;

#[in_vivo]
fn bare() {}

#[in_vivo(probability = 0.5)]
fn only_probability() {}

fn main() {
    bare();
    only_probability();
}
