use invite::in_vivo;

fn check(_: u32) {}

#[in_vivo(pre = check, timeout_ms = 1.5)]
fn fractional(_x: u32) {}

#[in_vivo(pre = check, timeout_ms = 5000000000)]
fn too_long(_x: u32) {}

#[in_vivo(pre = check, timeout_ms = -1)]
fn negative(_x: u32) {}

fn main() {}
