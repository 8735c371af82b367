use invite::in_vivo;

fn check(_: u32) {}
fn after(_: &u32) {}

// rustc's own errors inside the body still point into the body, with or without post tests.
#[in_vivo(pre = check)]
fn pre_only(x: u32) -> u32 {
    let y: u32 = "not a number";
    x + y
}

#[in_vivo(pre = check, post = after)]
fn with_post(x: u32) -> u32 {
    return "not a number";
}

fn main() {
    pre_only(1);
    with_post(1);
}

#[in_vivo(post = after)]
async fn async_with_post(x: u32) -> u32 {
    if x == 0 {
        return "zero";
    }
    x
}
