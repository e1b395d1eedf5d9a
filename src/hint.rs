//! Hints about memory: a cache-line prefetch for the CPU (flow cache, capture file reader) and
//! huge pages from the kernel (flow table).

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

/// Regions smaller than one huge page (2 MiB on x86_64) are left alone.
const HUGE_PAGE: usize = 2 << 20;

/// Asks the kernel to back the memory of `region` with transparent huge pages
/// (`madvise(MADV_HUGEPAGE)`), for tables read at random: one page fault per 2 MiB instead of
/// per 4 KiB, and far fewer TLB misses. Best effort: a no-op for regions under 2 MiB, on
/// systems with transparent huge pages off, and off Linux.
pub fn huge_pages<T>(region: &[T]) {
    let bytes = std::mem::size_of_val(region);
    if bytes < HUGE_PAGE {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let start = region.as_ptr() as usize;
        let first = start.next_multiple_of(PAGE);
        let end = (start + bytes) & !(PAGE - 1);
        if let Some(addr) = std::ptr::NonNull::new(first as *mut std::ffi::c_void) {
            #[allow(unsafe_code)]
            // SAFETY: MADV_HUGEPAGE only marks how the kernel may back these pages; it never
            // changes their contents or their mapping's permissions, so no reference into
            // them (ours or another allocation's sharing a boundary page) can observe it. The
            // range is rounded inward to pages of `region`, which is mapped.
            let _ = unsafe {
                nix::sys::mman::madvise(
                    addr,
                    end - first,
                    nix::sys::mman::MmapAdvise::MADV_HUGEPAGE,
                )
            };
        }
    }
}
