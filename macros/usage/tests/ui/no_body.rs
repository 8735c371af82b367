use invite::in_vivo;

fn check<T: ?Sized>(_: &T) {}

trait Store {
    #[in_vivo(pre = check)]
    fn flush(&self);
}

fn main() {}
