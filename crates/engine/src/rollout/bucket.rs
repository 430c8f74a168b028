//! The split's bucketing. It is compatible with Unleash's gradual rollout,
//! so a contact lands in the same place here as in any Unleash SDK given the
//! same salt (Unleash calls it the group id). With `h = murmur3_x86_32("<salt>:<contact>", seed 0)`:
//!
//! - Unleash's bucket is `h % 100 + 1`, in `1..=100`; a contact is in a p%
//!   rollout when `bucket <= p` ([`unleash_bucket`]).
//! - Weights here have hundredths of a percent, so a finer position in
//!   `0..10_000` is needed: `x = (h % 100) * 100 + (h / 100) % 100`
//!   ([`position`]). The high part is Unleash's bucket minus one and the low part
//!   comes from other bits of the hash, so for a whole percentage p,
//!   `x < p * 100` exactly when `h % 100 + 1 <= p`: whole-percent splits put
//!   every contact where Unleash would, and fractional ones refine inside a bucket.
//!
//! A split lays its versions out on `0..10_000` as consecutive ranges. Candidates
//! (every version but the first) take ranges from 0 in list order; the first
//! listed version is the baseline and takes the rest, at the END. So with
//! `v1=90, v2=10`: `v2` is `[0, 1000)` and `v1` is `[1000, 10000)`, and raising
//! `v2` to 20% only moves contacts from `v1` to `v2`: nobody who had `v2` loses
//! it. With two or more candidates, growing an earlier candidate shifts the
//! ranges of the later ones, so some of their contacts move; the assignment
//! memory (`memory_days`) is the remedy. The salt defaults to the flow name; a
//! new salt re-randomises everyone.

/// Unleash's bucket of `id` in group `salt`: `murmur3("<salt>:<id>") % 100 + 1`, in `1..=100`.
pub fn unleash_bucket(salt: &str, id: &str) -> u32 {
    salted_hash(salt, id) % 100 + 1
}

/// The contact's position in `0..10_000` (see the module docs): for a whole
/// percentage p, `position < p * 100` exactly when `unleash_bucket <= p`.
pub fn position(salt: &str, contact: &str) -> u32 {
    let h = salted_hash(salt, contact);
    (h % 100) * 100 + (h / 100) % 100
}

/// `murmur3_x86_32("<salt>:<id>", 0)`, streamed so no string is built.
fn salted_hash(salt: &str, id: &str) -> u32 {
    let mut hasher = Murmur3::new(0);
    hasher.write(salt.as_bytes());
    hasher.write(b":");
    hasher.write(id.as_bytes());
    hasher.finish()
}

/// MurmurHash3, x86 32-bit variant, over bytes (UTF-8 for text; Unleash's
/// vectors and our flow names and contacts are ASCII, where every SDK agrees).
pub fn murmur3_x86_32(data: &[u8], seed: u32) -> u32 {
    let mut hasher = Murmur3::new(seed);
    hasher.write(data);
    hasher.finish()
}

const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

/// Streaming MurmurHash3 x86_32: input may arrive in pieces; up to three
/// bytes wait in `tail` for the next piece to complete a 4-byte block.
struct Murmur3 {
    h: u32,
    tail: [u8; 4],
    tail_len: usize,
    len: u32,
}

impl Murmur3 {
    fn new(seed: u32) -> Murmur3 {
        Murmur3 { h: seed, tail: [0; 4], tail_len: 0, len: 0 }
    }

    fn scramble(k: u32) -> u32 {
        k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2)
    }

    fn block(&mut self, k: u32) {
        self.h ^= Murmur3::scramble(k);
        self.h = self.h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }

    fn write(&mut self, mut data: &[u8]) {
        // The reference takes the length mod 2^32.
        self.len = self.len.wrapping_add(data.len() as u32);
        if self.tail_len > 0 {
            while self.tail_len < 4 {
                let Some((&byte, rest)) = data.split_first() else { return };
                self.tail[self.tail_len] = byte;
                self.tail_len += 1;
                data = rest;
            }
            self.block(u32::from_le_bytes(self.tail));
            self.tail_len = 0;
        }
        let mut blocks = data.chunks_exact(4);
        for block in &mut blocks {
            self.block(u32::from_le_bytes([block[0], block[1], block[2], block[3]]));
        }
        let rest = blocks.remainder();
        self.tail[..rest.len()].copy_from_slice(rest);
        self.tail_len = rest.len();
    }

    fn finish(self) -> u32 {
        let mut h = self.h;
        if self.tail_len > 0 {
            let k = self.tail[..self.tail_len].iter().rev().fold(0u32, |k, &byte| (k << 8) | u32::from(byte));
            h ^= Murmur3::scramble(k);
        }
        h ^= self.len;
        h ^= h >> 16;
        h = h.wrapping_mul(0x85eb_ca6b);
        h ^= h >> 13;
        h = h.wrapping_mul(0xc2b2_ae35);
        h ^ (h >> 16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur3_matches_published_vectors() {
        assert_eq!(murmur3_x86_32(b"", 0), 0);
        assert_eq!(murmur3_x86_32(b"", 1), 0x514e_28b7);
        assert_eq!(murmur3_x86_32(b"", 0xffff_ffff), 0x81f1_6f39);
        assert_eq!(murmur3_x86_32(b"hello", 0), 0x248b_fa47);
        assert_eq!(murmur3_x86_32(b"The quick brown fox jumps over the lazy dog", 0), 0x2e4f_f723);
        assert_eq!(murmur3_x86_32(&[0x21, 0x43, 0x65, 0x87], 0), 0xf55b_516b);
        assert_eq!(murmur3_x86_32(&[0x21, 0x43, 0x65], 0), 0x7e4a_8634);
        assert_eq!(murmur3_x86_32(&[0x21, 0x43], 0), 0xa0f7_b07a);
        assert_eq!(murmur3_x86_32(&[0x21], 0), 0x7266_1cf4);
    }

    #[test]
    fn streaming_in_any_pieces_equals_hashing_at_once() {
        let data = b"digital_certificate:5511987654321 and some more bytes";
        let whole = murmur3_x86_32(data, 7);
        for first in 0..data.len() {
            for second in first..data.len() {
                let mut hasher = Murmur3::new(7);
                hasher.write(&data[..first]);
                hasher.write(&data[first..second]);
                hasher.write(&data[second..]);
                assert_eq!(hasher.finish(), whole, "pieces at {first} and {second}");
            }
        }
        assert_eq!(salted_hash("gr1", "123"), murmur3_x86_32(b"gr1:123", 0));
    }
}
