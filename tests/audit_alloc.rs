//! Length fields are checked against the file's size before anything is
//! allocated for them: a few crafted bytes cannot make the log reader ask
//! for megabytes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use privseg::audit::{
    AuditLog, FileSink, Operation, PendingEntry, SyncPolicy, verify_file_with_key,
};

/// The system allocator, noting the largest single request.
struct Largest;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged.
unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: same layout, same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: as for `alloc` and `dealloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Largest = Largest;

#[test]
fn huge_length_fields_allocate_nothing_large() {
    let dir = std::env::temp_dir().join(format!("privseg-audit-alloc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("a.audit");
    let key = [0x42u8; 32];
    {
        let (sink, _) = FileSink::open(&path, SyncPolicy::Never).unwrap();
        let mut log = AuditLog::open(sink, &key).unwrap();
        log.append(PendingEntry::new(1_767_225_600, "svc", Operation::Counted))
            .unwrap();
    }
    let good = std::fs::read(&path).unwrap();
    // Lengths at the format's limit (16 MiB), just past it, and at 2^32-1,
    // each followed by only a few bytes.
    for len in [16u32 << 20, (16 << 20) + 1, u32::MAX] {
        let mut bytes = good.clone();
        bytes.extend_from_slice(b"PSA1");
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(&[0u8; 4]);
        bytes.extend_from_slice(&[b'{'; 100]);
        // A second crafted header inside, for the search after a bad record.
        bytes.extend_from_slice(b"PSA1");
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(&[0u8; 4]);
        std::fs::write(&path, &bytes).unwrap();
        LARGEST.store(0, Ordering::Relaxed);
        let report = verify_file_with_key(&path, &key).unwrap();
        assert_eq!(report.entries, 1);
        assert!(report.discarded.is_some());
        let (sink, report) = FileSink::open(&path, SyncPolicy::Never).unwrap();
        assert!(report.discarded.is_some());
        drop(sink);
        let largest = LARGEST.load(Ordering::Relaxed);
        assert!(
            largest < 1 << 20,
            "length {len}: allocated {largest} bytes at once"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
