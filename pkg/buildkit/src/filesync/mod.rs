//! fsutil DiffCopy: sending a local directory to BuildKit and receiving an export from it.
