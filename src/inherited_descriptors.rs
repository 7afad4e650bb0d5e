//! Descriptors this process inherited stay out of every process it starts.
//!
//! Rust opens every file close-on-exec, but a parent may hand us descriptors that are not: a
//! `flock` wrapper's lock, a shell's `exec 7>file`, a CI runner's pipe. A native node or the host
//! Prometheus outlives `apply`, so an inherited descriptor would stay open for the cluster's
//! whole life: the lock stays held, the pipe never reaches end-of-file.

/// Marks every descriptor from 3 up close-on-exec (stdin, stdout and stderr are left alone).
pub fn keep_from_children() {
    close_fds::CloseFdsBuilder::new()
        .threadsafe(true)
        .cloexecfrom(3);
}
