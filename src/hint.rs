//! A cache-line prefetch hint (used by the flow cache and the capture file reader).

/// Asks the CPU to start loading the cache line holding `*p`. No effect on program semantics;
/// a no-op on targets without the instruction.
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    // SAFETY: PREFETCHT0 is a hint: it never faults, whatever the address, and changes no
    // architectural state. SSE, which provides it, is part of the x86_64 baseline.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
