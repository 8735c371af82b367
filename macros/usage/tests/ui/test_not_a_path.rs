use invite::in_vivo;

#[in_vivo(pre = "check")]
fn a_string(_x: u32) {}

#[in_vivo(post = |r: &()| true)]
fn a_closure(_x: u32) {}

#[in_vivo(pre)]
fn no_value(_x: u32) {}

fn main() {}
