//! Fast hashing for the maps the scan and the plan key by names and offsets.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A multiply-rotate hash (as rustc's FxHash), eight bytes a step: the scan hashes every
/// top-level identifier of the file against the wanted names, and SipHash's collision
/// resistance buys nothing against names the user wrote. (Nothing iterates these maps, so
/// the hash never shows in the output.)
#[derive(Default)]
pub struct Fx(u64);

impl Hasher for Fx {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut h = self.0;
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let w = u64::from_le_bytes(w.try_into().expect("8 bytes"));
            h = (h.rotate_left(5) ^ w).wrapping_mul(K);
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        self.0 = h;
    }
}

/// A set of names to look for.
pub type Names<'a> = HashSet<&'a [u8], BuildHasherDefault<Fx>>;

/// A map with [`Fx`] hashing.
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

/// A set with [`Fx`] hashing.
pub type FastSet<K> = HashSet<K, BuildHasherDefault<Fx>>;
