//! A shared in-memory writer, to capture what a test's code logs.

use std::io::Write;
use std::sync::{Arc, Mutex};

/// Clones append to the same buffer. Give `move || buffer.clone()` to
/// `tracing_subscriber::fmt().with_writer(..)` and read it back with [`SharedBuffer::contents`].
#[derive(Clone, Default)]
pub struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl SharedBuffer {
    /// Everything written so far, as (lossy) UTF-8.
    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
