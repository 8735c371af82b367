use invite::in_vivo;

struct Cache {
    slot: u32,
}

fn after(_: &mut Cache, _: &&mut u32) {}

impl Cache {
    // The return value borrows `self` mutably: a post test cannot get both.
    #[in_vivo(post = after)]
    fn slot(&mut self) -> &mut u32 {
        &mut self.slot
    }
}

fn main() {
    Cache { slot: 0 }.slot();
}
