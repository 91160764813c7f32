//! A TCP manager (work in progress).
