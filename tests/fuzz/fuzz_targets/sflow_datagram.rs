//! Arbitrary bytes as one sFlow datagram, through one long-lived datagram path (state and
//! caps carry over from input to input, as on a listener). See `mirrorflow_fuzz::Harness`
//! for the invariants checked.

#![no_main]

use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;
use mirrorflow::decode::TunnelMode;
use mirrorflow_fuzz::Harness;

static HARNESS: Mutex<Option<Harness>> = Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let mut h = HARNESS.lock().unwrap_or_else(|e| e.into_inner());
    let h = h.get_or_insert_with(|| Harness::new(TunnelMode::Inner, false));
    let _ = h.feed(data);
});
