//! BuildKit client (work in progress: wire definitions first).
