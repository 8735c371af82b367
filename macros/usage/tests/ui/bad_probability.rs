use invite::in_vivo;

fn check(_: u32) {}

#[in_vivo(pre = check, probability = 1.5)]
fn above_one(_x: u32) {}

#[in_vivo(pre = check, probability = "often")]
fn a_string(_x: u32) {}

#[in_vivo(pre = check, probability = 0.1, probability = 0.2)]
fn twice(_x: u32) {}

fn main() {}
