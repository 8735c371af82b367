use invite::in_vivo;

fn after(_: &()) {}

#[in_vivo(post = after)]
fn serve() -> ! {
    loop {}
}

fn main() {}
