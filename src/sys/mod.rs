//! Code below Rust: `musl_mem.c`, the memcpy and memmove of the static
//! (musl) build, which `build.rs` links there in place of musl's. Every
//! build also compiles it under other names (`logpipe_memcpy`,
//! `logpipe_memmove`), so that the tests below check it on any target.

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    extern "C" {
        fn logpipe_memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8;
        fn logpipe_memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8;
    }

    /// xorshift64: the same cases on every run.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    fn filled(rng: &mut Rng, len: usize) -> Vec<u8> {
        (0..len).map(|_| rng.below(256) as u8).collect()
    }

    #[test]
    fn memcpy_copies_every_size_and_alignment() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for n in 0..1100 {
            for _ in 0..4 {
                let src = filled(&mut rng, n + 64);
                let mut dst = filled(&mut rng, n + 64);
                let mut expected = dst.clone();
                let (s, d) = (rng.below(33), rng.below(33));
                expected[d..d + n].copy_from_slice(&src[s..s + n]);
                // SAFETY: both ranges lie inside their vectors, apart.
                let r = unsafe { logpipe_memcpy(dst.as_mut_ptr().add(d), src.as_ptr().add(s), n) };
                assert_eq!(r, dst[d..].as_mut_ptr());
                assert_eq!(dst, expected, "n={n} s={s} d={d}");
            }
        }
    }

    #[test]
    fn memmove_copies_overlapping_ranges_both_ways() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for _ in 0..40_000 {
            let n = match rng.below(3) {
                0 => rng.below(40),
                1 => rng.below(600),
                _ => rng.below(5000),
            };
            let len = 2 * n + 128;
            let mut buf = filled(&mut rng, len);
            let s = rng.below(len - n + 1);
            let d = rng.below(len - n + 1);
            let mut expected = buf.clone();
            expected.copy_within(s..s + n, d);
            let base = buf.as_mut_ptr();
            // SAFETY: both ranges lie inside `buf`; memmove allows overlap.
            let r = unsafe { logpipe_memmove(base.add(d), base.add(s), n) };
            assert_eq!(r, buf[d..].as_mut_ptr());
            assert_eq!(buf, expected, "n={n} s={s} d={d}");
        }
    }
}
